"""The timer wheel: how late a kernel timer may run, and the death window built from it.

Every timer run lands late on the timer wheel (kernel/time/timer.c, since
v4.8): a timer armed ``d`` jiffies ahead goes into wheel level ``n`` and is
rounded *up* to the level's granularity ``8**n`` jiffies (``calc_index``:
``(expires >> shift) + 1``).  Lateness accumulates because each run re-arms
relative to "now", except a re-arm computed as ``idle - elapsed``, which
absorbs the lateness before it.  So::

    high = expected + sum(granularity(run) for each counted run) + 2 jiffies
    low  = expected - 1 jiffy

The two jiffies cover the measurement: ``tcpi_last_ack_recv`` is read after
the death, possibly one tick later.  The one jiffy early covers the reply
arriving one tick after the probe it answers (the interval timer counts from
the probe).  The model's ``high`` is capped by packetdrill's bound, late by at
most ``max(4 ms, 12.5 %)``; nothing is ever allowed earlier than ``low``.
"""

from __future__ import annotations

import math

from ..kernel import KernelInfo

LVL_CLK_SHIFT = 3
LVL_BITS = 6
LVL_SIZE = 1 << LVL_BITS
MEASUREMENT_JIFFIES = 2
PACKETDRILL_MIN_S = 0.004
PACKETDRILL_FRACTION = 0.125


def wheel_depth(hz: int) -> int:
    """LVL_DEPTH: the wheel has 9 levels, 8 at HZ <= 100 (``#if HZ > 100`` in kernel/time/timer.c)."""
    return 9 if hz > 100 else 8


def wheel_level(delay_jiffies: int, hz: int) -> int:
    """Timer-wheel level a timer armed ``delay_jiffies`` ahead is queued on (``calc_wheel_index``).

    Level n holds delays from LVL_START(n) = (LVL_SIZE - 1) << ((n - 1) *
    LVL_CLK_SHIFT); longer ones go on the last level (and beyond
    WHEEL_TIMEOUT_CUTOFF are cut short -- days of jiffies, longer than any
    timer TCP arms).
    """
    level = 0
    while level < wheel_depth(hz) - 1 and delay_jiffies >= (LVL_SIZE - 1) << (level * LVL_CLK_SHIFT):
        level += 1
    return level


def wheel_granularity_s(delay_s: float, hz: int) -> float:
    """Worst-case lateness (s) of one timer armed ``delay_s`` ahead: LVL_GRAN of its level, in seconds."""
    delay_jiffies = max(0, math.ceil(delay_s * hz))
    return (1 << (wheel_level(delay_jiffies, hz) * LVL_CLK_SHIFT)) / hz


def packetdrill_bound_s(expected_s: float) -> float:
    """packetdrill's tolerance: late by at most max(4 ms, 12.5 %)."""
    return max(PACKETDRILL_MIN_S, PACKETDRILL_FRACTION * expected_s)


def latest_death_s(expected: float, late_s: float, kernel: KernelInfo) -> float:
    """expected + accumulated timer lateness + the measurement's jiffies, the lateness capped by packetdrill's bound."""
    late = min(late_s + MEASUREMENT_JIFFIES * kernel.jiffy_s, packetdrill_bound_s(expected))
    return round(expected + late, 6)


def window(expected: float, low: float, late_s: float, kernel: KernelInfo) -> tuple[float, float]:
    """[low, latest_death_s(...)]."""
    return round(low, 6), latest_death_s(expected, late_s, kernel)


def runs_at_jiffy(now: int, delay_jiffies: int, hz: int) -> int:
    """The jiffy a timer armed at jiffy ``now`` for ``delay_jiffies`` runs (``calc_index``'s bucket expiry).

    ``expires = (expires >> LVL_SHIFT(lvl)) + 1; *bucket_expiry = expires <<
    LVL_SHIFT(lvl)``: the expiry rounded up to the *next* multiple of the
    level's granularity (so a level-0 timer runs one jiffy late, a level-1
    timer 1..8 jiffies late).  A timer re-armed from a run that itself landed
    on that level's grid therefore lands exactly ``gran * (delay // gran + 1)``
    later: a 1 s timer re-armed from its own run at HZ=250 runs every 256
    jiffies (1.024 s), with no spread.  Assumes the timer softirq runs at the
    bucket's jiffy (base->clk == jiffies); a late softirq only adds lateness.
    """
    return bucket_at_level(now + delay_jiffies, wheel_level(delay_jiffies, hz))


def bucket_at_level(expires: int, level: int) -> int:
    """``calc_index``'s bucket expiry: ``expires`` rounded up past the next multiple of level ``level``'s granularity."""
    shift = level * LVL_CLK_SHIFT
    return ((expires >> shift) + 1) << shift
