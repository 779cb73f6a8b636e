"""When the kernel will kill an idle connection: the rule and its timing window.

The rule (``tcp_keepalive_timer`` in net/ipv4/tcp_timer.c)::

    elapsed = now - rcv_tstamp            # since the last segment RECEIVED
    if elapsed >= idle:
        if probes_out >= cnt:  reset + ETIMEDOUT      # death
        send probe; probes_out += 1; re-arm(intvl)
    else:
        re-arm(idle - elapsed)

A reply to a probe is a received segment: it resets ``rcv_tstamp`` (and
``probes_out``).  So the death time, counted from the last segment received,
is ``first_probe + intvl * cnt`` where ``first_probe`` is the first timer run
at or after ``idle``:

* fault while the connection was merely idle (no probe answered yet): the
  timer was armed for ``idle`` -> ``idle + intvl * cnt``, the classic formula;
* fault right after an *answered probe*: the timer was re-armed for ``intvl``
  when that probe went out, so the first unanswered probe leaves at
  ``max(idle, intvl)`` -> ``max(idle, intvl) + intvl * cnt``.  With
  ``intvl > idle`` this is one ``intvl - idle`` later than the classic formula
  (e.g. 1/2/2: 6 s, not 5 s).

Timing window.  Every timer run lands late on the timer wheel
(kernel/time/timer.c, since v4.8): a timer armed ``d`` jiffies ahead goes into
wheel level ``n`` and is rounded *up* to the level's granularity ``8**n``
jiffies (``calc_index``: ``(expires >> shift) + 1``).  Lateness accumulates
because each run re-arms relative to "now", except a re-arm computed as
``idle - elapsed``, which absorbs the lateness before it.  So::

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
from dataclasses import dataclass

from .kernel import KernelInfo
from .keepalive import KeepaliveSettings

LVL_CLK_SHIFT = 3
LVL_BITS = 6
LVL_SIZE = 1 << LVL_BITS
MEASUREMENT_JIFFIES = 2
PACKETDRILL_MIN_S = 0.004
PACKETDRILL_FRACTION = 0.125

LAST_SEGMENT_KINDS = ("probe-reply", "idle")


def wheel_level(delay_jiffies: int) -> int:
    """Timer-wheel level a timer armed ``delay_jiffies`` ahead is queued on."""
    level = 0
    # LVL_START(n) = (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)
    while delay_jiffies >= (LVL_SIZE - 1) << (level * LVL_CLK_SHIFT):
        level += 1
    return level


def wheel_granularity_s(delay_s: float, hz: int) -> float:
    """Worst-case lateness (s) of one timer armed ``delay_s`` ahead."""
    delay_jiffies = max(0, math.ceil(delay_s * hz))
    return (1 << (wheel_level(delay_jiffies) * LVL_CLK_SHIFT)) / hz


@dataclass(frozen=True)
class DeathPrediction:
    """What the kernel should do, as data: serialisable, comparable, printable."""

    rule: str
    expected_s: float
    window_s: tuple[float, float]
    expected_probes: int
    expected_error: str
    timer_runs_s: tuple[float, ...]  # delays of the timer runs whose lateness adds up

    def contains(self, measured_s: float) -> bool:
        low, high = self.window_s
        return low <= measured_s <= high


def packetdrill_bound_s(expected_s: float) -> float:
    """packetdrill's tolerance: late by at most max(4 ms, 12.5 %)."""
    return max(PACKETDRILL_MIN_S, PACKETDRILL_FRACTION * expected_s)


def keepalive_death(
    settings: KeepaliveSettings, kernel: KernelInfo, last_segment: str = "probe-reply"
) -> DeathPrediction:
    """Predict the death of an idle connection whose peer vanished.

    ``last_segment`` is what the socket last received before the fault:
    ``"probe-reply"`` (a keepalive probe had just been answered) or ``"idle"``
    (nothing since the handshake or the last data, keepalive armed then).
    """
    if last_segment not in LAST_SEGMENT_KINDS:
        raise ValueError(f"last_segment must be one of {LAST_SEGMENT_KINDS}, not {last_segment!r}")
    if settings.user_timeout_ms:
        raise NotImplementedError("TCP_USER_TIMEOUT timing is not modelled yet")
    idle, intvl, cnt = settings.idle, settings.intvl, settings.cnt
    if last_segment == "probe-reply" and intvl >= idle:
        first_probe = intvl
        first_run = intvl  # armed when the answered probe left
        how = f"the answered probe re-armed the timer for intvl, so the first probe left at max(idle, intvl) = {intvl} s"
    else:
        first_probe = idle
        first_run = idle if last_segment == "idle" else idle - intvl  # idle - elapsed re-arm
        how = f"the first probe left at idle = {idle} s"
    expected = first_probe + intvl * cnt
    runs = (first_run,) + (intvl,) * cnt
    jiffy = kernel.jiffy_s
    late = sum(wheel_granularity_s(d, kernel.hz) for d in runs) + MEASUREMENT_JIFFIES * jiffy
    late = min(late, packetdrill_bound_s(expected))
    rule = (
        f"tcp_keepalive_timer: {how}, then {cnt} unanswered probes every {intvl} s; "
        f"death on the next run: {first_probe} + {intvl} x {cnt} = {expected} s after the last segment received"
    )
    return DeathPrediction(
        rule=rule,
        expected_s=float(expected),
        window_s=(round(expected - jiffy, 6), round(expected + late, 6)),
        expected_probes=cnt,
        expected_error="ETIMEDOUT",
        timer_runs_s=tuple(float(r) for r in runs),
    )
