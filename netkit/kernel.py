"""Facts about the running kernel that the timing model depends on.

The keepalive timer is a jiffies timer on the kernel's timer wheel, so the
exact lateness of every timer run depends on CONFIG_HZ.  We read CONFIG_HZ from
the kernel's own config (``/proc/config.gz`` or ``/boot/config-$release``).
Without one, HZ is *measured*: the jiffies counter in ``/proc/timer_list``
(root only) read twice, half a second apart.  Only where neither works is
HZ=100 assumed -- the coarsest common value, which gives the widest model
window -- and ``hz_source`` says so.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import time
from dataclasses import dataclass

KNOWN_HZ = (100, 250, 300, 1000)
FALLBACK_HZ = 100
TIMER_LIST = "/proc/timer_list"
MEASURE_S = 0.5  # 50..500 jiffies: one jiffy and the file's read time are well under the 5 % that tells HZ values apart
KNOWN_HZ_TOLERANCE = 0.05


@dataclass(frozen=True)
class KernelInfo:
    release: str
    hz: int
    hz_source: str  # "/proc/config.gz", "/boot/config-...", "measured: ...", or "assumed: ..."

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


def _jiffies(path: str) -> tuple[int, float]:
    """The kernel's jiffies counter (the first ``jiffies:`` line of timer_list) and the monotonic time it was read at."""
    before = time.monotonic()
    with open(path) as f:
        for line in f:
            if line.startswith("jiffies:"):
                return int(line.split()[1]), (before + time.monotonic()) / 2
    raise OSError(f"{path} shows no jiffies")


def measure_hz() -> int:
    """HZ as the jiffies counter advances against CLOCK_MONOTONIC: the nearest of KNOWN_HZ within 5 %, else the rate.

    Raises OSError where TIMER_LIST cannot be read (it is root's only).
    """
    j0, t0 = _jiffies(TIMER_LIST)
    time.sleep(MEASURE_S)
    j1, t1 = _jiffies(TIMER_LIST)
    rate = (j1 - j0) / (t1 - t0)
    nearest = min(KNOWN_HZ, key=lambda hz: abs(hz - rate))
    return nearest if abs(nearest - rate) <= KNOWN_HZ_TOLERANCE * nearest else round(rate)


@functools.lru_cache(maxsize=1)
def kernel_info() -> KernelInfo:
    release = os.uname().release
    found = _config_text()
    if found is not None:
        m = re.search(r"^CONFIG_HZ=(\d+)$", found[0], re.MULTILINE)
        if m:
            return KernelInfo(release, int(m.group(1)), found[1])
    try:
        return KernelInfo(release, measure_hz(), f"measured: {TIMER_LIST}'s jiffies over {MEASURE_S:g} s")
    except (OSError, ValueError, ZeroDivisionError) as exc:
        return KernelInfo(release, FALLBACK_HZ, f"assumed: no kernel config, and {TIMER_LIST} unreadable ({exc})")
