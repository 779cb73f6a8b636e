"""Fetch a Debian kernel into the cache: resolve the spec, ``apt-get download`` its packages, ``dpkg-deb -x`` them.

A kernel is downloaded and unpacked in a temporary directory inside the cache
and renamed into place only when complete: an interrupted or failed fetch
leaves nothing (and a cache directory the fetch created is removed again).

From 7.x on Debian's ``linux-image-<release>`` is an empty meta package: the
image is in ``linux-binary-<release>`` (``/usr/lib/modules/<release>/vmlinuz``),
the modules in ``linux-modules-<release>`` and the configuration in
``linux-base-<release>``.  Every ``linux-*-<release>`` package the image
package depends on is fetched (:func:`netkit.kernels.candidates.packages_for`),
and the pieces are moved to the cache's layout (:mod:`.cache`).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import EnvironmentUnusable
from .apt import PrivateApt
from .cache import MARKER, CachedKernel, cache_dir, find_cached, image_kernel, read_cached, unusable_cache
from .candidates import choose, packages_for
from .spec import KernelSpecError, Spec, parse_spec
from .tools import depmod_path


@dataclass
class FetchResult:
    kernel: CachedKernel
    fetched: bool  # False: it was already in the cache
    packages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def get(spec_text: str, *, refresh: bool = False, cache: str | None = None, prefer_cached: bool = False,
        say: Any = None) -> FetchResult:
    """Make the kernel a spec names present in the cache (fetching it if needed) and return it.

    ``prefer_cached``: a series spec that some cached kernel matches is answered from the cache without
    network (what ``gate --kernel`` does); otherwise the apt lists decide which build is newest.
    Leaves nothing behind on failure: a cache directory this call created is removed again.
    """
    spec = parse_spec(spec_text)
    if spec.kind == "host":
        raise KernelSpecError("'host' is the running kernel: there is nothing to fetch")
    if spec.kind == "image":
        return FetchResult(image_kernel(spec.release or spec.text), False)
    cache = cache or cache_dir()
    cached = find_cached(spec, cache)
    if cached is not None and (spec.kind in ("release", "build") or prefer_cached):
        return FetchResult(cached, False)
    if spec.kind == "build":
        raise KernelSpecError(f"{spec.text}: no such kernel in {cache}; build it with "
                              f"scripts/build-kernel --hz {spec.text.rsplit('hz', 1)[1]}")
    created = not os.path.exists(cache)
    try:
        return _fetch(spec, cache, refresh, say)
    except BaseException:
        if created:
            shutil.rmtree(cache, ignore_errors=True)
        raise


def _fetch(spec: Spec, cache: str, refresh: bool, say: Any) -> FetchResult:
    started = time.monotonic()
    try:
        os.makedirs(cache, exist_ok=True)
    except OSError as exc:  # e.g. HOME=/nonexistent (nobody's): the default cache cannot be created
        raise unusable_cache(cache, exc, "create") from None
    apt = PrivateApt(cache)
    apt.ensure_lists(refresh)
    candidates, records = apt.candidates()
    try:
        chosen = choose(spec, candidates)
    except KernelSpecError:
        age = apt.lists_age_s()
        if refresh or (age is not None and age < 60):
            raise
        apt.update()  # lists a day old may not know a new build yet
        candidates, records = apt.candidates()
        chosen = choose(spec, candidates)
    existing = read_cached(os.path.join(cache, chosen.release))
    if existing is not None:
        return FetchResult(existing, False, seconds=time.monotonic() - started)
    packages = packages_for(chosen, records)
    if say:
        say(f"fetching {chosen.release} ({', '.join(packages)}; {chosen.version})")
    tmp = tempfile.mkdtemp(prefix=".tmp-fetch-", dir=cache)
    try:
        debs = os.path.join(tmp, "debs")
        root = os.path.join(tmp, chosen.release)
        os.makedirs(debs)
        os.makedirs(root)
        apt.download(packages, debs)
        for deb in sorted(os.listdir(debs)):
            _run_checked(["dpkg-deb", "-x", os.path.join(debs, deb), root], "dpkg-deb -x")
        _normalise(root, chosen.release, packages)
        _depmod(root, chosen.release)
        meta = {"release": chosen.release, "spec": spec.text, "source": "debian",
                "packages": [f"{p}={records[p].get('Version', '')}" for p in packages],
                "fetched": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        with open(os.path.join(root, MARKER), "w") as f:
            json.dump(meta, f, indent=1)
        dest = os.path.join(cache, chosen.release)
        try:
            os.rename(root, dest)
        except OSError:  # another netkit fetched it meanwhile
            if read_cached(dest) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    kernel = read_cached(dest)
    assert kernel is not None
    return FetchResult(kernel, True, packages, time.monotonic() - started)


def _run_checked(argv: list[str], what: str) -> None:
    if shutil.which(argv[0]) is None:
        raise EnvironmentUnusable(f"{argv[0]} is missing (apt-get install {'dpkg' if argv[0] == 'dpkg-deb' else 'kmod'})")
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise EnvironmentUnusable(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")


def _normalise(root: str, release: str, packages: list[str]) -> None:
    """Whatever the Debian release's layout, end with boot/{vmlinuz,config,System.map}-R and lib/modules/R."""
    usr_mods = os.path.join(root, "usr", "lib", "modules", release)
    mods = os.path.join(root, "lib", "modules", release)
    if os.path.isdir(usr_mods) and not os.path.isdir(mods):
        os.makedirs(os.path.dirname(mods), exist_ok=True)
        os.rename(usr_mods, mods)
    boot = os.path.join(root, "boot")
    os.makedirs(boot, exist_ok=True)
    for name, inside in (("vmlinuz", "vmlinuz"), ("config", "config"), ("System.map", "System.map")):
        target = os.path.join(boot, f"{name}-{release}")
        source = os.path.join(mods, inside)
        if not os.path.exists(target) and os.path.isfile(source):
            os.rename(source, target)
    shutil.rmtree(os.path.join(root, "usr"), ignore_errors=True)
    if not os.path.isfile(os.path.join(boot, f"vmlinuz-{release}")):
        raise EnvironmentUnusable(f"{', '.join(packages)} contained no kernel image for {release} "
                                  "(neither boot/vmlinuz-* nor usr/lib/modules/*/vmlinuz)")
    os.makedirs(mods, exist_ok=True)


def _depmod(root: str, release: str) -> None:
    """modules.dep for the guest's modprobe (Debian's packages leave it to their postinst)."""
    depmod = depmod_path()
    if depmod is None:
        return  # virtme-ng runs depmod itself when it can
    _run_checked([depmod, "-a", "-b", root, release], "depmod")
