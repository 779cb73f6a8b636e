"""When the neighbour entry of a link without carrier fails: the moment connect() learns EHOSTUNREACH.

From net/core/neighbour.c (the same state machine for ARP and IPv6 ND):

* ``__neigh_event_send``: the first packet to an unresolved address makes
  the entry INCOMPLETE with ``probes = ucast_solicit``, sends the first
  solicitation at once and arms the timer ``max(retrans_time, HZ/100)``
  ahead; packets wait in the entry's queue meanwhile.
* ``neigh_timer_handler``, INCOMPLETE: once ``probes >=
  neigh_max_probes()`` = ``ucast_solicit + app_solicit + mcast_solicit``
  the entry is FAILED (``neigh_invalidate``: every queued packet goes to the
  protocol's error report); otherwise another solicitation, and the timer
  again ``retrans_time`` ahead.

So the entry fails ``(mcast_solicit + app_solicit) x retrans_time`` after
the first packet (defaults 3 x 1 s), each of those armings rounded up on the
timer wheel.  With the carrier gone every solicitation is dropped by the
qdisc, so nothing can answer them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..kernel import KernelInfo
from .prediction import DeathPrediction
from .wheel import wheel_granularity_s, window


@dataclass(frozen=True)
class NeighbourTimers:
    """The tested interface's neighbour settings (``net.ipv4.neigh.<if>.*`` / ``net.ipv6.neigh.<if>.*``)."""

    mcast_solicit: int = 3
    app_solicit: int = 0
    retrans_time_ms: int = 1000

    @property
    def solicitations(self) -> int:
        return self.mcast_solicit + self.app_solicit


def neighbour_failure(timers: NeighbourTimers, kernel: KernelInfo) -> DeathPrediction:
    """The entry's failure after the first packet, as a prediction of the moment (count: solicitations sent)."""
    retrans_s = max(timers.retrans_time_ms / 1000, 0.01)  # HZ/100 jiffies: 10 ms
    delays = (retrans_s,) * timers.solicitations
    expected = sum(delays)
    late = sum(wheel_granularity_s(d, kernel.hz) for d in delays)
    rule = (f"the neighbour entry fails after mcast_solicit {timers.mcast_solicit} + app_solicit "
            f"{timers.app_solicit} solicitations every retrans_time {timers.retrans_time_ms} ms, all dropped "
            f"with the carrier: {expected:g} s after the first packet")
    return DeathPrediction(rule=rule, expected_s=round(expected, 6),
                           window_s=window(expected, expected - kernel.jiffy_s, late, kernel),
                           expected_count=timers.solicitations, expected_error="EHOSTUNREACH", timer_runs_s=delays)
