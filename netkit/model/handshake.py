"""When ``connect()`` to a peer that never answers gives up: the SYN-SENT rule.

From net/ipv4/tcp_timer.c (6.5 and later; the same in 6.12 and 6.18):

* ``tcp_write_timeout``, for a socket in SYN-SENT::

      retry_until = icsk_syn_retries ?: sysctl_tcp_syn_retries   # TCP_SYNCNT, else the namespace's
      max_retransmits = retry_until + sysctl_tcp_syn_linear_timeouts
      expired = icsk_retransmits >= max_retransmits

  checked first in every RTO run; the run that finds it expired sends
  nothing and ends the connect with ``tcp_write_err``: ETIMEDOUT.
* ``tcp_retransmit_timer`` then retransmits the SYN (``tcp_update_rto_stats``:
  ``icsk_retransmits++``, ``total_rto++``) and re-arms: the RTO stays at its
  initial value while ``total_rto <= sysctl_tcp_syn_linear_timeouts``
  (linear), and doubles after that (``min(icsk_rto << 1, TCP_RTO_MAX)``).
  The initial RTO is ``TCP_TIMEOUT_INIT`` = 1 s (no RTT sample yet).

So, with ``L`` linear timeouts and ``R`` SYN retries, the SYN leaves at 0,
is retransmitted at 1, 2, ..., L + 1 s, then at gaps of 2, 4, 8 ... s, and
the run after retransmission ``R + L`` kills.  Kernels before 6.5 have no
linear timeouts (``L`` = 0: 1, 3, 7, 15 ... s).  Every run re-arms from
"now", so the wheel's lateness of each arming adds up (:mod:`.wheel`).
"""

from __future__ import annotations

from ..enums import Clock, CountSource
from ..kernel import KernelInfo
from .prediction import DeathPrediction
from .wheel import wheel_granularity_s, window

TCP_TIMEOUT_INIT_S = 1.0
TCP_RTO_MAX_S = 120.0


def syn_schedule(syn_retries: int, linear_timeouts: int) -> tuple[float, ...]:
    """The arm delays of the RTO timer from the SYN to the run that kills (one per run)."""
    delays, rto = [], TCP_TIMEOUT_INIT_S
    for retransmission in range(1, syn_retries + linear_timeouts + 1):
        delays.append(rto)  # the run this arming leads to retransmits: number ``retransmission``
        if retransmission > linear_timeouts:
            rto = min(rto * 2, TCP_RTO_MAX_S)
    delays.append(rto)  # the run after the last retransmission: expired
    return tuple(delays)


def syn_sent_death(syn_retries: int, linear_timeouts: int, kernel: KernelInfo) -> DeathPrediction:
    """``connect()`` into a blackhole: ETIMEDOUT after ``syn_retries + linear_timeouts`` retransmitted SYNs."""
    delays = syn_schedule(syn_retries, linear_timeouts)
    expected = sum(delays)
    retransmissions = len(delays) - 1
    late = sum(wheel_granularity_s(d, kernel.hz) for d in delays)
    shown = ", ".join(f"{sum(delays[:k]):g}" for k in range(1, len(delays)))
    rule = (f"tcp_write_timeout (SYN-SENT): icsk_retransmits >= syn_retries {syn_retries} + tcp_syn_linear_timeouts "
            f"{linear_timeouts}; SYN retransmitted at {shown} s (RTO 1 s, doubling after {linear_timeouts} "
            f"retransmissions); the next run, {expected:g} s after the SYN, ends connect() with ETIMEDOUT")
    return DeathPrediction(
        rule=rule,
        expected_s=float(expected),
        window_s=window(expected, expected - kernel.jiffy_s, late, kernel),
        expected_count=retransmissions,
        expected_error="ETIMEDOUT",
        count_source=CountSource.RETRANSMITS,
        measured_from=Clock.SEND,
        timer_runs_s=delays,
    )
