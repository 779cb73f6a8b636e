"""Facts about the running kernel that the timing model depends on.

The keepalive timer is a jiffies timer on the kernel's timer wheel, so the
exact lateness of every timer run depends on CONFIG_HZ.  We read CONFIG_HZ from
the kernel's own config (``/proc/config.gz`` or ``/boot/config-$release``) and
fall back to HZ=100 -- the coarsest common value, which gives the widest (most
forgiving) model window -- saying so in ``hz_source``.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
from dataclasses import dataclass

KNOWN_HZ = (100, 250, 300, 1000)
FALLBACK_HZ = 100


@dataclass(frozen=True)
class KernelInfo:
    release: str
    hz: int
    hz_source: str  # "/proc/config.gz", "/boot/config-...", or "assumed"

    @property
    def jiffy_s(self) -> float:
        return 1.0 / self.hz


def _config_text() -> tuple[str, str] | None:
    release = os.uname().release
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            return f.read(), "/proc/config.gz"
    except OSError:
        pass
    path = f"/boot/config-{release}"
    try:
        with open(path) as f:
            return f.read(), path
    except OSError:
        return None


def read_config_option(name: str) -> str | None:
    """Value of ``CONFIG_<name>`` ("y", "m", a number...), or None if unknown/unset."""
    found = _config_text()
    if found is None:
        return None
    m = re.search(rf"^CONFIG_{name}=(.*)$", found[0], re.MULTILINE)
    return m.group(1).strip('"') if m else None


@functools.lru_cache(maxsize=1)
def kernel_info() -> KernelInfo:
    release = os.uname().release
    found = _config_text()
    if found is not None:
        m = re.search(r"^CONFIG_HZ=(\d+)$", found[0], re.MULTILINE)
        if m:
            return KernelInfo(release, int(m.group(1)), found[1])
    return KernelInfo(release, FALLBACK_HZ, "assumed")
