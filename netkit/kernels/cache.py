"""netkit's kernel cache on disk: one directory per kernel release, listed, found by spec, removed.

The cache (``NETKIT_KERNEL_CACHE``, default ``~/.cache/netkit/kernels``) holds
one directory per kernel release, laid out like a root file system so that
virtme-ng finds the modules next to the image::

    <cache>/<release>/boot/vmlinuz-<release>      the image
    <cache>/<release>/boot/config-<release>       its configuration (CONFIG_HZ is read from it)
    <cache>/<release>/lib/modules/<release>/      its modules, depmod'ed (netem is a module on Debian)
    <cache>/<release>/netkit-kernel.json          where it came from (spec, packages, time)
    <cache>/apt/                                  netkit's private apt state (:mod:`.apt`)

A directory is a kernel only when its image is there: :mod:`.fetch` unpacks
into a temporary directory and renames it into place when complete, so an
interrupted fetch is never listed.  Releases are ordered as dpkg orders
versions (:mod:`.debian_version`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .debian_version import DebianVersion
from .spec import KernelSpecError, Spec

CACHE_ENV = "NETKIT_KERNEL_CACHE"
MARKER = "netkit-kernel.json"


def hz_of_config(text: str) -> int | None:
    m = re.search(r"^CONFIG_HZ=(\d+)$", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def cache_dir() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get(CACHE_ENV) or "~/.cache/netkit/kernels"))


@dataclass(frozen=True)
class CachedKernel:
    release: str
    root: str  # the directory holding boot/ and lib/modules/ (None-like "" for a bare image)
    image: str
    config: str | None
    hz: int | None
    spec: str | None = None  # the spec it was fetched or built for
    source: str = ""
    packages: tuple[str, ...] = ()
    fetched: str | None = None

    @property
    def boot_dir(self) -> str | None:
        return os.path.dirname(self.config) if self.config else None

    def size_bytes(self) -> int:
        total = 0
        for top, _, files in os.walk(self.root or os.path.dirname(self.image)):
            for f in files:
                try:
                    total += os.lstat(os.path.join(top, f)).st_size
                except OSError:
                    pass
        return total


def read_cached(root: str) -> CachedKernel | None:
    release = os.path.basename(root)
    image = os.path.join(root, "boot", f"vmlinuz-{release}")
    if not os.path.isfile(image):
        return None
    config_path = os.path.join(root, "boot", f"config-{release}")
    config: str | None = None
    hz = None
    if os.path.isfile(config_path):
        config = config_path
        with open(config, errors="replace") as f:
            hz = hz_of_config(f.read())
    meta: dict[str, Any] = {}
    try:
        with open(os.path.join(root, MARKER)) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        pass
    return CachedKernel(release, root, image, config, hz, meta.get("spec"), meta.get("source", ""),
                        tuple(meta.get("packages", ())), meta.get("fetched"))


def unusable_cache(cache: str, exc: OSError, doing: str) -> InputError:
    """The cache's directory and the way out (exit 2): its default follows HOME, which ``su`` without ``-`` keeps."""
    why = (exc.strerror or str(exc)).lower()
    return InputError(f"kernel cache {cache}: cannot {doing} it ({why}): set {CACHE_ENV} to a directory you can "
                      f"read and write (unset, the cache is ~/.cache/netkit/kernels, under HOME)")


def _entries(cache: str) -> list[str]:
    """The names in the cache directory; none when it does not exist yet."""
    try:
        return os.listdir(cache)
    except FileNotFoundError:
        return []
    except OSError as exc:  # a file, or HOME still root's (su without -, setpriv): a message, not a traceback
        raise unusable_cache(cache, exc, "read") from None


def list_cached(cache: str | None = None) -> list[CachedKernel]:
    """Every complete kernel in the cache, oldest series first."""
    cache = cache or cache_dir()
    found = [k for n in _entries(cache) if not n.startswith(".") and n not in ("apt", "build")
             and (k := read_cached(os.path.join(cache, n))) is not None]
    return sorted(found, key=lambda k: (DebianVersion.parse(k.release), k.release))


def find_cached(spec: Spec, cache: str | None = None) -> CachedKernel | None:
    """The newest cached kernel the spec names, without network."""
    kernels = list_cached(cache)
    if spec.kind == "release":
        found = [k for k in kernels if k.release == spec.release]
    elif spec.kind == "build":
        found = [k for k in kernels if k.spec == spec.text]
    elif spec.kind == "series":
        found = [k for k in kernels if k.source == "debian"
                 and spec.matches_series(k.release, _deb_of_release(k.release))]
    else:
        return None
    return max(found, key=lambda k: DebianVersion.parse(k.release), default=None)


def _deb_of_release(release: str) -> int | None:
    m = re.search(r"\+deb(\d+)", release)
    return int(m.group(1)) if m else (12 if re.match(r"6\.1\.0-\d+-amd64$", release) else None)


def image_kernel(path: str) -> CachedKernel:
    """A kernel image named by its path, with its configuration when one is next to it."""
    image = os.path.abspath(path)
    if not os.path.isfile(image):
        raise KernelSpecError(f"kernel image {path}: no such file")
    base = os.path.basename(image)
    release = base[len("vmlinuz-"):] if base.startswith("vmlinuz-") else base
    here = os.path.dirname(image)
    config = None
    for candidate in (os.path.join(here, f"config-{release}"), os.path.join(here, "..", "..", "..", ".config")):
        if os.path.isfile(candidate):
            config = os.path.abspath(candidate)
            break
    hz = None
    if config:
        with open(config, errors="replace") as f:
            hz = hz_of_config(f.read())
    return CachedKernel(release, "", image, config, hz, path, "image")


def remove(release: str, cache: str | None = None) -> bool:
    if not release or os.sep in release or release in (".", ".."):  # a release names an entry of the cache, no path
        return False
    cache = cache or cache_dir()
    if release not in _entries(cache):
        return False
    path = os.path.join(cache, release)
    if read_cached(path) is None:
        return False
    shutil.rmtree(path)
    return True
