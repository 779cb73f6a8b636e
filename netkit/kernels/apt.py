"""apt-get and apt-cache with netkit's own state under ``<cache>/apt``: the host's apt is never read or changed.

apt runs with a private configuration (``-c <cache>/apt/apt.conf``): its own
sources list (Debian's suites of :data:`netkit.kernels.spec.SUITES`, main
only), lists, package cache and an empty dpkg status, so the host's apt
sources, lists and installed packages are never read or changed, and the
host's apt hooks never run on netkit's lists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from ..errors import EnvironmentUnusable
from .candidates import Candidate, parse_candidates
from .spec import SUITES

MIRROR_ENV = "NETKIT_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org"
LISTS_MAX_AGE_S = 24 * 3600  # apt lists older than this are refreshed before resolving a series
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


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
            f.write("# netkit's private apt sources: Debian kernels only (see netkit/kernels/apt.py)\n")
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
