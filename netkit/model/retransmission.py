"""When the kernel kills a connection with data outstanding: the retransmission timer (RTO).

Keepalive never runs while data is unacknowledged or queued
(``tcp_keepalive_timer``: ``if (tp->packets_out || !tcp_write_queue_empty(sk))
goto resched``).  Two other timers decide instead (net/ipv4/tcp_timer.c); the
rules, with the measurements behind them, are in docs/rules.md
("Keepalive waits for data", "The RTO clamp", "tcp_retries2 without a user
timeout", "Link down with data in flight").

Retransmission (``tcp_retransmit_timer`` -> ``tcp_write_timeout`` ->
``retransmits_timed_out``), data sent into a dead path:

* each RTO run first checks the deadline, then retransmits, doubles
  ``icsk_rto`` (``min(icsk_rto << 1, TCP_RTO_MAX)``) and re-arms; the run
  that kills sends nothing.  ``tcp_write_err``: ``sk_err_soft ?: ETIMEDOUT``,
  no RST.
* the clock starts at ``retrans_stamp`` = the first (attempted)
  retransmission (``tcp_retransmit_skb``: ``if (!tp->retrans_stamp)
  tp->retrans_stamp = tcp_skb_timestamp(skb)``).  In a **blackhole** the tail
  loss probe (``tcp_schedule_loss_probe``: ``srtt/4 + rto_min``, capped at the
  RTO) goes first and restarts the RTO, so the first retransmission -- and the
  clock -- is ``2 x rto`` after the send.  With the **link down** the original
  segment still sits in the neighbour queue: every retransmission fails with
  ``-EBUSY`` (``skb_still_in_host_queue``) and the skb keeps its send time, so
  the clock starts at the send.
* with TCP_USER_TIMEOUT the deadline is ``retrans_stamp + UT`` and the RTO
  timer is clamped to it (``tcp_clamp_rto_to_user_timeout``: ``min(icsk_rto,
  remaining)``), so the death lands at the deadline plus the rounding of that
  last, short arming;
* without it the deadline is ``tcp_model_timeout(tcp_retries2, TCP_RTO_MIN)``
  (:func:`netkit.model.rto.tcp_model_timeout_s`) = ``((2 << retries2) - 1) x
  200 ms`` up to ``tcp_retries2`` 9, plus 120 s for each one beyond (15:
  924.6 s), checked at RTO runs whose offsets from the first retransmission are
  ``rto x (2^k - 2)``; their lateness accumulates and can make an earlier run
  qualify (two outcomes, as with keepalive + user timeout).

Zero window and no route: the persist timer instead, :mod:`.persist`.

Link-down (the tested end has no carrier) with data in flight: the segment
waits in the neighbour queue, so every retransmission fails locally
(``-EBUSY``) and the clock is the send -- until the neighbour entry fails,
(MCAST_PROBES + APP_PROBES) x RETRANS_TIME = 3 x 1 s after the send.  A
TCP_USER_TIMEOUT that kills before that follows the clamp above.  Anything later -- tcp_retries2 without UT, or
a UT past the failure -- is replayed timer by timer in
:mod:`netkit.model.neighbour`: IPv4's ICMP host-unreachable runs
``tcp_ld_RTO_revert`` (death at the failure, ETIMEDOUT, when the deadline has
passed), IPv6's skb free retransmits through TSQ and re-arms the unclamped
RTO (EHOSTUNREACH one backed-off RTO later).
"""

from __future__ import annotations

import math

from ..enums import Clock, CountSource
from ..errors import NotModelled
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .fault_rule import DataPath, FaultRule
from .neighbour import link_down_deaths, link_down_prediction
from .persist import persist_death
from .prediction import DeathPrediction
from .rto import (
    TCP_RTO_MIN_S,
    clamped_runs,
    clamped_windows,
    linear_backoff_thresh,
    socket_rto_max_s,
    tcp_model_timeout_jiffies,
    tcp_model_timeout_s,
)
from .wheel import MEASUREMENT_JIFFIES, latest_death_s, wheel_granularity_s

RTO_NEEDS_RETRIES2 = ("data in flight without TCP_USER_TIMEOUT needs tcp_retries2 set low (the default 15 "
                      "takes ~15 minutes)")


def unacked_death(
    settings: KeepaliveSettings,
    kernel: KernelInfo,
    fault: FaultRule,
    family: str,
    rto_s: float,
    retries2: int | None,
    rto_max_ms: int | None = None,
) -> DeathPrediction:
    """Data sent after the fault, never acknowledged: when the RTO timer gives up (times from the send).

    ``rto_max_ms``: the socket's maximum RTO (TCP_RTO_MAX_MS or the
    namespace's ``tcp_rto_max_ms``; None: TCP_RTO_MAX), the cap of every
    backoff and of ``tcp_model_timeout``'s linear part.
    """
    ut = settings.user_timeout_ms
    if fault.data_path is DataPath.RESET:
        return DeathPrediction(
            rule="the data segment reaches the peer, which has no socket for it and answers with a RST: "
                 "tcp_reset() kills the connection with ECONNRESET at once",
            expected_s=0.0, window_s=(0.0, round(MEASUREMENT_JIFFIES * kernel.jiffy_s, 6)),
            expected_count=0, expected_error="ECONNRESET", count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        )
    if fault.data_path is DataPath.LOCAL:
        return _failing_locally(ut, retries2, kernel, rto_s, family, rto_max_ms)
    if fault.data_path is DataPath.NO_ROUTE:
        # No route: the segment is never sent, packets_out stays 0, and tcp_check_probe_timer hands the
        # connection to the persist timer; its probes fail locally but count (tcp_write_wakeup <= 0).
        return persist_death(kernel, rto_s, ut, retries2, fault.timeout_error(family),
                              CountSource.PROBES, Clock.SEND,
                              "the peer's namespace is gone, so the data never leaves (no route) and, with nothing "
                              "in flight, the persist timer probes instead of the RTO", rto_max_ms)
    if ut:
        return _lost_until_user_timeout(ut, kernel, rto_s, rto_max_ms)
    if retries2 is None:
        raise NotModelled(RTO_NEEDS_RETRIES2)
    return _lost_until_retries2(retries2, kernel, rto_s, rto_max_ms)


def _failing_locally(ut: int | None, retries2: int | None, kernel: KernelInfo, rto_s: float,
                     family: str, rto_max_ms: int | None) -> DeathPrediction:
    """Link down: every retransmission fails in the neighbour queue; the clock is the send.

    Until the neighbour entry fails this is the plain clamp (with UT); the
    replay of :mod:`.neighbour` decides whether the failure comes first.
    """
    if not ut and retries2 is None:
        raise NotModelled(RTO_NEEDS_RETRIES2)
    hz = kernel.hz
    rto_max_s = socket_rto_max_s(rto_max_ms, hz)
    deadline_j = math.ceil(ut * hz / 1000) if ut else tcp_model_timeout_jiffies(retries2 or 0, hz, rto_max_s)
    deaths = link_down_deaths(family, hz, round(rto_s * hz), deadline_j, user_timeout=bool(ut), rto_max_ms=rto_max_ms)
    if ut and not any(d.neighbour_failures for d in deaths):
        return _clamped_locally(ut, kernel, rto_s, rto_max_s)
    what = (f"link down, data in flight, TCP_USER_TIMEOUT {ut} ms" if ut else
            f"link down, data in flight, tcp_retries2 = {retries2} (tcp_model_timeout "
            f"{deadline_j / hz:g} s after the send)")
    return link_down_prediction(deaths, kernel, what)


def _clamped_locally(ut: int, kernel: KernelInfo, rto_s: float, rto_max_s: float) -> DeathPrediction:
    """UT kills before the neighbour entry fails: the RTO clamped to the send + UT."""
    jiffy = kernel.jiffy_s
    deadline = ut / 1000
    clamped = clamped_runs(rto_s, deadline, rto_s, kernel.hz, rto_max_s)  # attempts at rto, 3 rto, 7 rto...
    runs = clamped.runs
    window, alternative = clamped_windows(deadline, jiffy, clamped, kernel)
    return DeathPrediction(
        rule=(f"tcp_retransmit_timer with TCP_USER_TIMEOUT {ut} ms: every retransmission fails locally (-EBUSY, "
              "the segment still waits in the neighbour queue), so retrans_stamp is the send; the RTO is clamped "
              f"to retrans_stamp + UT: death {deadline:g} s after the send, {runs} attempted retransmissions"),
        expected_s=deadline, window_s=window,
        expected_count=runs, expected_error="ETIMEDOUT", count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        alternative_window_s=alternative, alternative_count=runs - 1 if alternative else None,
    )


def _start_late(rto_s: float, kernel: KernelInfo) -> float:
    """The TLP and the first RTO run are short timers (level 0): one granularity late each."""
    return 2 * wheel_granularity_s(rto_s, kernel.hz)


def _lost_until_user_timeout(ut: int, kernel: KernelInfo, rto_s: float, rto_max_ms: int | None) -> DeathPrediction:
    """Segments vanish; the first retransmission (after the TLP) starts the clock; UT clamps the RTO."""
    first_retransmission = 2 * rto_s  # the tail loss probe at rto, then the RTO restarted from it
    deadline = ut / 1000
    clamped = clamped_runs(rto_s, deadline, 0.0, kernel.hz, socket_rto_max_s(rto_max_ms, kernel.hz))
    runs = clamped.runs
    expected = first_retransmission + deadline
    window, alternative = clamped_windows(expected, _start_late(rto_s, kernel), clamped, kernel)
    return DeathPrediction(
        rule=(f"tcp_retransmit_timer with TCP_USER_TIMEOUT {ut} ms: the tail loss probe at rto and the first "
              f"retransmission at 2 x rto = {first_retransmission:.3f} s start the clock (retrans_stamp); the RTO "
              f"is clamped to retrans_stamp + UT: death {expected:.3f} s after the send, {runs} retransmissions"),
        expected_s=round(expected, 6), window_s=window,
        expected_count=runs, expected_error="ETIMEDOUT", count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        alternative_window_s=alternative, alternative_count=runs - 1 if alternative else None,
    )


def _lost_until_retries2(retries2: int, kernel: KernelInfo, rto_s: float, rto_max_ms: int | None) -> DeathPrediction:
    """Segments vanish; no UT: tcp_model_timeout(tcp_retries2) after the first retransmission."""
    jiffy = kernel.jiffy_s
    first_retransmission = 2 * rto_s
    start_late = _start_late(rto_s, kernel)
    rto_max_s = socket_rto_max_s(rto_max_ms, kernel.hz)
    timeout = tcp_model_timeout_s(retries2, TCP_RTO_MIN_S, rto_max_s)
    offsets, late, rto = [0.0], [start_late], rto_s  # run k (1-based): offset from the first retransmission
    while offsets[-1] < timeout:
        rto = min(rto * 2, rto_max_s)
        offsets.append(offsets[-1] + rto)
        late.append(late[-1] + wheel_granularity_s(rto, kernel.hz))
    nominal = len(offsets)  # first run whose nominal offset reaches the deadline
    early = nominal - 1
    early_qualifies = early >= 2 and offsets[early - 1] + late[early - 1] - start_late >= timeout

    def at(run: int) -> float:
        return round(first_retransmission + offsets[run - 1], 6)

    thresh = linear_backoff_thresh(rto_max_s)
    formula = (f"((2 << {retries2}) - 1) x 200 ms" if retries2 <= thresh
               else f"((2 << {thresh}) - 1) x 200 ms + ({retries2} - {thresh}) x {rto_max_s:g} s")
    capped = (f"; backoff capped at the socket's maximum RTO {rto_max_s:g} s (tcp_rto_max(sk))"
              if rto_max_ms is not None else "")
    rule = (f"tcp_retransmit_timer with tcp_retries2 = {retries2}: deadline tcp_model_timeout = "
            f"{formula} = {timeout:g} s after the first retransmission (at 2 x rto = "
            f"{first_retransmission:.3f} s, after the tail loss probe); RTO runs every rto x 2^k: death on run "
            f"{nominal} at {at(nominal):.3f} s after the send, {nominal - 1} retransmissions"
            + (f"; timer lateness can make run {early} qualify ({early - 1} retransmissions)" if early_qualifies else "")
            + capped)
    return DeathPrediction(
        rule=rule,
        expected_s=at(nominal),
        window_s=(round(at(nominal) - jiffy, 6), latest_death_s(at(nominal), late[nominal - 1], kernel)),
        expected_count=nominal - 1, expected_error="ETIMEDOUT", count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        alternative_window_s=(round(max(at(early), first_retransmission + timeout) - jiffy, 6),
                              latest_death_s(at(early), late[early - 1], kernel)) if early_qualifies else None,
        alternative_count=early - 1 if early_qualifies else None,
    )


