"""When the keepalive timer runs once the peer has gone silent: the schedule an idle prediction is made from.

A value of its own so that a :class:`netkit.model.prediction.DeathPrediction`
can carry the schedule it was made from, and the wire's probes are judged
against the very runs the window was built on (the verdict never asks the
model again).  The rule itself is :mod:`netkit.model.keepalive`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..enums import LastSegment
from ..keepalive import KeepaliveSettings
from .wheel import wheel_granularity_s

LAST_SEGMENT_KINDS = LastSegment.values()


@dataclass(frozen=True)
class KeepaliveSchedule:
    """The keepalive timer runs after the last received segment, nominally.

    Run 1 sends the first unanswered probe at ``first_probe``; run ``k`` is
    at ``first_probe + (k - 1) * intvl``.  ``delays`` are the arm delays of
    runs 1, 2, ... whose lateness accumulates (the first one is ``idle -
    intvl`` when an earlier run, too early to probe, re-armed the timer).
    """

    first_probe: float
    first_delay: float
    intvl: float
    how: str

    def time(self, run: int) -> float:
        return self.first_probe + (run - 1) * self.intvl

    def delays(self, runs: int) -> tuple[float, ...]:
        return (self.first_delay,) + (self.intvl,) * (runs - 1)

    def max_lateness(self, runs: int, hz: int) -> float:
        return sum(wheel_granularity_s(d, hz) for d in self.delays(runs))


def keepalive_schedule(settings: KeepaliveSettings, last_segment: str = "probe-reply") -> KeepaliveSchedule:
    """When the keepalive timer runs once the peer has gone silent.

    ``last_segment`` is what the socket last received before the fault:
    ``"probe-reply"`` (a keepalive probe had just been answered) or ``"idle"``
    (nothing since the handshake or the last data, keepalive armed then).
    """
    if last_segment not in LAST_SEGMENT_KINDS:
        raise ValueError(f"last_segment must be one of {LAST_SEGMENT_KINDS}, not {last_segment!r}")
    idle, intvl = settings.idle, settings.intvl
    if last_segment == "probe-reply" and intvl >= idle:
        return KeepaliveSchedule(intvl, intvl, intvl, (
            f"the answered probe re-armed the timer for intvl, so the first probe left at max(idle, intvl) = {intvl} s"))
    first_delay = idle if last_segment == "idle" else idle - intvl  # the re-arm "idle - elapsed"
    return KeepaliveSchedule(idle, first_delay, intvl, f"the first probe left at idle = {idle} s")
