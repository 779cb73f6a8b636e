"""Debian's kernels in netkit's cache: resolve a spec, fetch it (apt-get download + dpkg-deb -x), list what is there.

The cache (``NETKIT_KERNEL_CACHE``, default ``~/.cache/netkit/kernels``) holds
one directory per kernel release, laid out like a root file system so that
virtme-ng finds the modules next to the image::

    <cache>/<release>/boot/vmlinuz-<release>      the image
    <cache>/<release>/boot/config-<release>       its configuration (CONFIG_HZ is read from it)
    <cache>/<release>/lib/modules/<release>/      its modules, depmod'ed (netem is a module on Debian)
    <cache>/<release>/netkit-kernel.json          where it came from (spec, packages, time)
    <cache>/apt/                                  netkit's private apt state (sources, lists)

apt runs with a private configuration (``-c <cache>/apt/apt.conf``): its own
sources list, lists, package cache and an empty dpkg status, so the host's apt
sources, lists and installed packages are never read or changed.  A kernel is
downloaded and unpacked in a temporary directory inside the cache and renamed
into place only when complete: an interrupted or failed fetch leaves nothing.

From 7.x on Debian's ``linux-image-<release>`` is an empty meta package: the
image is in ``linux-binary-<release>`` (``/usr/lib/modules/<release>/vmlinuz``),
the modules in ``linux-modules-<release>`` and the configuration in
``linux-base-<release>``.  Every ``linux-*-<release>`` package the image
package depends on is fetched, and the pieces are moved to the layout above.

The pure parts (:func:`parse_spec`, :func:`parse_candidates`, :func:`choose`,
:func:`hz_of_config`) do no I/O and are tested without network.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import EnvironmentUnusable, InputError

CACHE_ENV = "NETKIT_KERNEL_CACHE"
MIRROR_ENV = "NETKIT_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org"
MARKER = "netkit-kernel.json"
LISTS_MAX_AGE_S = 24 * 3600  # apt lists older than this are refreshed before resolving a series
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# (suite, archive path under the mirror, Debian major version)
SUITES = (
    ("bookworm", "debian", 12),
    ("bookworm-security", "debian-security", 12),
    ("bookworm-backports", "debian", 12),
    ("trixie", "debian", 13),
    ("trixie-security", "debian-security", 13),
    ("trixie-backports", "debian", 13),
)
DEBIAN_RELEASES = {"bookworm": 12, "trixie": 13}

SPEC_HELP = ("debian:SERIES (debian:6.1, debian:6.12, debian:7.x), bookworm-SERIES / trixie-SERIES, "
             "linux-image-RELEASE, RELEASE (6.1.0-56-amd64), build:SERIES-hzHZ, a kernel image path, or host")

_SERIES = r"(?P<series>\d+(?:\.(?:\d+|x))?)"
_RELEASE = re.compile(r"^\d+\.\d+\.\d+(?:-\d+)?(?:\+deb\d+(?:\.\d+)?)?-amd64$")
# A generic amd64 build's image package (not -unsigned, -dbg, cloud or rt; not a meta package).
_IMAGE_PACKAGE = re.compile(
    r"^linux-image-(?P<release>(?P<upstream>\d+\.\d+\.\d+)(?:-(?P<abi>\d+))?(?:\+deb(?P<deb>\d+)(?:\.\d+)?)?-amd64)$")


class KernelSpecError(InputError):
    """A kernel spec netkit cannot read or find (exit status 2)."""


@dataclass(frozen=True)
class Spec:
    """A parsed kernel spec; see the package docstring for the syntax."""

    text: str
    kind: str  # "series" | "release" | "build" | "image" | "host"
    series: str | None = None  # "6.1", "6.12", "7" (for 7.x)
    debian: int | None = None  # 12 or 13: only builds for this Debian release
    release: str | None = None  # kind "release": the exact release; "image": the path

    def matches_series(self, release: str, deb: int | None) -> bool:
        assert self.series is not None
        if self.debian is not None and deb is not None and deb != self.debian:
            return False
        return release == self.series or release.startswith(self.series + ".")


def parse_spec(text: str) -> Spec:
    """Read a spec, without I/O except to tell a path from a name; KernelSpecError names the accepted forms."""
    t = text.strip()
    if not t:
        raise KernelSpecError(f"empty kernel spec; use one of: {SPEC_HELP}")
    if t == "host":
        return Spec(t, "host")
    if "/" in t or os.path.isfile(t):
        return Spec(t, "image", release=t)
    m = re.fullmatch(rf"debian:{_SERIES}", t)
    if m:
        return Spec(t, "series", series=_series(m["series"]))
    m = re.fullmatch(rf"(?P<dist>[a-z]+)(?:-(?:security|backports))?-{_SERIES}", t)
    if m and m["dist"] in DEBIAN_RELEASES:
        return Spec(t, "series", series=_series(m["series"]), debian=DEBIAN_RELEASES[m["dist"]])
    m = re.fullmatch(r"build:(?P<series>\d+\.\d+)-hz(?P<hz>\d+)", t)
    if m:
        return Spec(t, "build", series=m["series"])
    name = t[len("linux-image-"):] if t.startswith("linux-image-") else t
    if _RELEASE.fullmatch(name):
        return Spec(t, "release", release=name)
    raise KernelSpecError(f"unknown kernel spec {text!r}; use one of: {SPEC_HELP}")


def _series(text: str) -> str:
    return text[:-2] if text.endswith(".x") else text


@dataclass(frozen=True)
class Candidate:
    """A generic amd64 kernel build offered by the private apt lists."""

    release: str
    package: str
    version: str  # the package version, e.g. 6.1.192-2
    deb: int | None  # Debian major version it was built for, when the name or version says
    depends: tuple[str, ...] = ()

    def key(self) -> tuple[Any, ...]:
        """Newest first by upstream version, then ABI; among equals the older Debian's build."""
        upstream = tuple(int(x) for x in re.findall(r"\d+", self.version.split("-")[0])[:3])
        abi = re.search(r"-(\d+)(?:\+|-amd64)", self.release)
        return upstream, int(abi.group(1)) if abi else 0, -(self.deb or 0)


def _records(text: str) -> Iterable[dict[str, str]]:
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        last = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and last:
                fields[last] += "\n" + line.strip()
            elif ":" in line:
                last, _, value = line.partition(":")
                fields[last] = value.strip()
        if "Package" in fields:
            yield fields


def parse_candidates(dumpavail: str) -> tuple[list[Candidate], dict[str, dict[str, str]]]:
    """Kernel builds from ``apt-cache dumpavail`` output, and every record by package name."""
    records: dict[str, dict[str, str]] = {}
    for r in _records(dumpavail):
        old = records.get(r["Package"])
        if old is None or _version_key(r.get("Version", "")) > _version_key(old.get("Version", "")):
            records[r["Package"]] = r
    found = []
    for name, r in records.items():
        m = _IMAGE_PACKAGE.match(name)
        if not m:
            continue
        version = r.get("Version", "")
        deb = m["deb"] or _deb_of_version(version)
        found.append(Candidate(m["release"], name, version, int(deb) if deb else None, _depends(r)))
    return found, records


def _deb_of_version(version: str) -> str | None:
    m = re.search(r"(?:deb|bpo)(\d+)", version)
    return m.group(1) if m else None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def _depends(record: dict[str, str]) -> tuple[str, ...]:
    names = []
    for part in record.get("Depends", "").split(","):
        for alternative in part.split("|"):
            name = alternative.strip().split(" ")[0].split(":")[0]
            if name:
                names.append(name)
    return tuple(names)


def choose(spec: Spec, candidates: list[Candidate]) -> Candidate:
    """The build a spec names among the candidates; KernelSpecError lists what there is."""
    if spec.kind == "release":
        found = [c for c in candidates if c.release == spec.release]
    elif spec.kind == "series":
        found = [c for c in candidates if spec.matches_series(c.release, c.deb)]
    else:
        raise KernelSpecError(f"{spec.text}: not a Debian kernel spec")
    if not found:
        series = sorted({".".join(c.release.split(".")[:2]) for c in candidates}, key=_version_key)
        raise KernelSpecError(f"no Debian amd64 kernel matches {spec.text!r}; the series offered are "
                              f"{', '.join(series) or 'none (no apt lists?)'} "
                              f"(suites {', '.join(s for s, _, _ in SUITES)})")
    return max(found, key=Candidate.key)


def packages_for(candidate: Candidate, records: dict[str, dict[str, str]]) -> list[str]:
    """The image package and every ``linux-*-<release>`` package it depends on (7.x: binary, modules, base)."""
    wanted = [candidate.package]
    todo = list(candidate.depends)
    while todo:
        name = todo.pop()
        if name in wanted or not name.startswith("linux-") or not name.endswith("-" + candidate.release):
            continue
        if name not in records:
            raise EnvironmentUnusable(f"{candidate.package} needs {name}, which the apt lists do not offer")
        wanted.append(name)
        todo.extend(_depends(records[name]))
    return wanted


def hz_of_config(text: str) -> int | None:
    m = re.search(r"^CONFIG_HZ=(\d+)$", text, re.MULTILINE)
    return int(m.group(1)) if m else None


# --- the cache on disk --------------------------------------------------------------------------------------


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


def _read_cached(root: str) -> CachedKernel | None:
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


def list_cached(cache: str | None = None) -> list[CachedKernel]:
    """Every complete kernel in the cache, oldest series first."""
    cache = cache or cache_dir()
    try:
        names = os.listdir(cache)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise InputError(f"kernel cache {cache}: not a directory: set {CACHE_ENV} to a directory, or unset it") from None
    found = [k for n in names if not n.startswith(".") and n not in ("apt", "build")
             and (k := _read_cached(os.path.join(cache, n))) is not None]
    return sorted(found, key=lambda k: (_version_key(k.release), k.release))


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
    return max(found, key=lambda k: _version_key(k.release), default=None)


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


# --- apt, privately ------------------------------------------------------------------------------------------


class PrivateApt:
    """apt-get / apt-cache with netkit's own sources, lists and status under ``<cache>/apt``."""

    def __init__(self, cache: str) -> None:
        self.dir = os.path.join(cache, "apt")
        self.conf = os.path.join(self.dir, "apt.conf")

    def _write_config(self) -> None:
        mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR).rstrip("/")
        for sub in ("state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        open(os.path.join(self.dir, "state", "status"), "a").close()
        signed = f" [signed-by={KEYRING}]" if os.path.isfile(KEYRING) else ""
        with open(os.path.join(self.dir, "sources.list"), "w") as f:
            f.write("# netkit's private apt sources: Debian kernels only (see netkit/kernels/cache.py)\n")
            for suite, archive, _ in SUITES:
                f.write(f"deb{signed} {mirror}/{archive} {suite} main\n")
        d = self.dir
        with open(self.conf, "w") as f:
            f.write(f"""// netkit's private apt configuration: nothing of the host's apt state is read or written.
#clear APT::Update::Post-Invoke-Success;
#clear APT::Update::Post-Invoke;
#clear DPkg::Post-Invoke;
#clear DPkg::Pre-Invoke;
Dir::State "{d}/state";
Dir::State::status "{d}/state/status";
Dir::Cache "{d}/cache";
Dir::Etc::SourceList "{d}/sources.list";
Dir::Etc::SourceParts "{d}/sources.list.d";
Dir::Etc::Preferences "{d}/preferences";
Dir::Etc::PreferencesParts "{d}/preferences.d";
APT::Architecture "amd64";
APT::Architectures {{ "amd64"; }};
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
APT::Sandbox::User "root";
""")

    def _run(self, tool: str, *args: str, cwd: str | None = None) -> str:
        path = shutil.which(tool)
        if path is None:
            raise EnvironmentUnusable(f"{tool} is missing: netkit fetches Debian's kernels with apt-get and dpkg-deb "
                                      "(a Debian or Ubuntu machine; apt-get install apt dpkg)")
        done = subprocess.run([path, "-c", self.conf, "-q", *args], cwd=cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
            raise EnvironmentUnusable(f"{tool} {' '.join(args[:1])} failed (exit {done.returncode}) with netkit's "
                                      f"private apt state in {self.dir}; is the Debian mirror reachable "
                                      f"({os.environ.get(MIRROR_ENV, DEFAULT_MIRROR)}; {MIRROR_ENV} overrides)?\n{tail}")
        return done.stdout

    def lists_age_s(self) -> float | None:
        try:
            return time.time() - os.stat(os.path.join(self.dir, "updated")).st_mtime
        except OSError:
            return None

    def update(self) -> None:
        self._write_config()
        self._run("apt-get", "update")
        open(os.path.join(self.dir, "updated"), "w").close()

    def ensure_lists(self, refresh: bool = False) -> None:
        age = self.lists_age_s()
        if refresh or age is None or age > LISTS_MAX_AGE_S:
            self.update()

    def candidates(self) -> tuple[list[Candidate], dict[str, dict[str, str]]]:
        return parse_candidates(self._run("apt-cache", "dumpavail"))

    def download(self, packages: list[str], into: str) -> None:
        self._run("apt-get", "download", *packages, cwd=into)


# --- fetching ------------------------------------------------------------------------------------------------


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
    os.makedirs(cache, exist_ok=True)
    apt = PrivateApt(cache)
    apt.ensure_lists(refresh)
    candidates, records = apt.candidates()
    try:
        chosen = choose(spec, candidates)
    except KernelSpecError:
        if refresh or apt.lists_age_s() is not None and apt.lists_age_s() < 60:  # type: ignore[operator]
            raise
        apt.update()  # lists a day old may not know a new build yet
        candidates, records = apt.candidates()
        chosen = choose(spec, candidates)
    existing = _read_cached(os.path.join(cache, chosen.release))
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
                "fetched": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        with open(os.path.join(root, MARKER), "w") as f:
            json.dump(meta, f, indent=1)
        dest = os.path.join(cache, chosen.release)
        try:
            os.rename(root, dest)
        except OSError:  # another netkit fetched it meanwhile
            if _read_cached(dest) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    kernel = _read_cached(dest)
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
    if shutil.which("depmod") is None and not os.path.exists("/sbin/depmod"):
        return  # virtme-ng runs depmod itself when it can
    _run_checked([shutil.which("depmod") or "/sbin/depmod", "-a", "-b", root, release], "depmod")


def remove(release: str, cache: str | None = None) -> bool:
    if not release or os.sep in release or release in (".", ".."):  # a release names an entry of the cache, no path
        return False
    path = os.path.join(cache or cache_dir(), release)
    if _read_cached(path) is None:
        return False
    shutil.rmtree(path)
    return True
