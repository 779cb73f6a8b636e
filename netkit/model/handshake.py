"""When ``connect()`` to a peer that never answers gives up: the SYN-SENT rule.

From net/ipv4/tcp_timer.c (6.5 and later; the same in 6.12 and 6.18):

* ``tcp_write_timeout``, for a socket in SYN-SENT::

      retry_until = icsk_syn_retries ?: sysctl_tcp_syn_retries   # TCP_SYNCNT, else the namespace's
      max_retransmits = retry_until + sysctl_tcp_syn_linear_timeouts
      expired = icsk_retransmits >= max_retransmits

  and, when that is not yet so, ``retransmits_timed_out(sk, retry_until, 0)``:
  expired too once ``retrans_stamp`` (the first SYN's send) is
  ``tcp_model_timeout(retry_until, rto_base = tcp_timeout_init = 1 s)`` =
  ``(2^(retry_until + 1) - 1)`` s behind (linear at 120 s beyond 6 retries),
  provided one retransmission went out.  Both are checked first in every
  RTO run; the run that finds the connect expired sends nothing and ends it
  with ``tcp_write_err``: ETIMEDOUT.
* ``tcp_retransmit_timer`` then retransmits the SYN (``tcp_update_rto_stats``:
  ``icsk_retransmits++``, ``total_rto++``) and re-arms: the RTO stays at its
  initial value while ``total_rto <= sysctl_tcp_syn_linear_timeouts``
  (linear), and doubles after that (``min(icsk_rto << 1, TCP_RTO_MAX)``).
  The initial RTO is ``TCP_TIMEOUT_INIT`` = 1 s (no RTT sample yet).

So, with ``L`` linear timeouts and ``R`` SYN retries, the SYN leaves at 0,
is retransmitted at 1, 2, ..., L + 1 s, then at gaps of 2, 4, 8 ... s, and
the first run that has sent ``R + L`` retransmissions, or that comes
``2^(R+1) - 1`` s after the SYN, kills: the linear timeouts add SYNs within
the same time budget (measured here with TCP_SYNCNT 1: death at 3.06 s after
2 retransmissions, not at 7 s after 5, which counting alone would give).
Kernels before 6.5 have no linear timeouts (``L`` = 0: 1, 3, 7, 15 ... s).
Every run re-arms from "now", so the wheel's lateness of each arming adds up
(:mod:`.wheel`); a run that lateness alone would push past the time budget
is not modelled (none of the small settings here comes within a second).
"""

from __future__ import annotations

from ..enums import Clock, CountSource
from ..kernel import KernelInfo
from .prediction import DeathPrediction
from .wheel import wheel_granularity_s, window

TCP_TIMEOUT_INIT_S = 1.0
TCP_RTO_MAX_S = 120.0


LINEAR_BACKOFF_THRESH = 6  # tcp_model_timeout: ilog2(TCP_RTO_MAX / rto_base) with rto_base 1 s


def syn_time_budget_s(syn_retries: int) -> float:
    """``tcp_model_timeout(syn_retries, 1 s)``: how long after the SYN ``retransmits_timed_out`` expires the connect."""
    if syn_retries <= LINEAR_BACKOFF_THRESH:
        return float((2 << syn_retries) - 1)
    return float((2 << LINEAR_BACKOFF_THRESH) - 1 + (syn_retries - LINEAR_BACKOFF_THRESH) * TCP_RTO_MAX_S)


def syn_schedule(syn_retries: int, linear_timeouts: int) -> tuple[float, ...]:
    """The arm delays of the RTO timer from the SYN to the run that kills (one per run)."""
    delays: list[float] = []
    rto, offset, retransmissions = TCP_TIMEOUT_INIT_S, 0.0, 0
    budget = syn_time_budget_s(syn_retries)
    while True:
        delays.append(rto)
        offset += rto
        if retransmissions >= syn_retries + linear_timeouts or (retransmissions and offset >= budget):
            return tuple(delays)  # this run finds the connect expired
        retransmissions += 1
        if retransmissions > linear_timeouts:
            rto = min(rto * 2, TCP_RTO_MAX_S)


def syn_sent_death(syn_retries: int, linear_timeouts: int, kernel: KernelInfo) -> DeathPrediction:
    """``connect()`` into a blackhole: ETIMEDOUT by the retransmission count or the time budget, whichever is first."""
    delays = syn_schedule(syn_retries, linear_timeouts)
    expected = sum(delays)
    retransmissions = len(delays) - 1
    late = sum(wheel_granularity_s(d, kernel.hz) for d in delays)
    shown = ", ".join(f"{sum(delays[:k]):g}" for k in range(1, len(delays)))
    rule = (f"tcp_write_timeout (SYN-SENT): icsk_retransmits >= syn_retries {syn_retries} + tcp_syn_linear_timeouts "
            f"{linear_timeouts}, or {syn_time_budget_s(syn_retries):g} s since the SYN (tcp_model_timeout); SYN "
            f"retransmitted at {shown} s (RTO 1 s, doubling after {linear_timeouts} retransmissions); the next run, "
            f"{expected:g} s after the SYN, ends connect() with ETIMEDOUT")
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
