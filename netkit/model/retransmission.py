"""When the kernel kills a connection with data outstanding: retransmission and zero-window probes.

Keepalive never runs while data is unacknowledged or queued
(``tcp_keepalive_timer``: ``if (tp->packets_out || !tcp_write_queue_empty(sk))
goto resched``).  Two other timers decide instead (net/ipv4/tcp_timer.c):

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
  (:func:`tcp_model_timeout_s`) = ``((2 << retries2) - 1) x 200 ms`` up to
  ``tcp_retries2`` 9, plus 120 s for each one beyond (15: 924.6 s),
  checked at RTO runs whose offsets from the first retransmission are
  ``rto x (2^k - 2)``; their lateness accumulates and can make an earlier run
  qualify (two outcomes, as with keepalive + user timeout).

Zero window (``tcp_probe_timer``): the persist timer's first run stamps
``icsk_probes_tstamp``; with TCP_USER_TIMEOUT every later run aborts once
``now - icsk_probes_tstamp >= UT``, and ``tcp_send_probe0`` clamps the next
probe to that moment (``tcp_clamp_probe0_to_user_timeout``).  The first probe
leaves ``rto`` after the zero-window ACK (``tcp_probe0_when``: ``rto <<
backoff``), so counted from that last received segment the death comes at
``rto + UT``.

Link-down (the tested end has no carrier) with data in flight: the segment
waits in the neighbour queue, so every retransmission fails locally
(``-EBUSY``) and the clock is the send -- until the neighbour entry fails,
(MCAST_PROBES + APP_PROBES) x RETRANS_TIME = 3 x 1 s after the send
(3.052-3.080 s on the HZ=250 wheel).  A TCP_USER_TIMEOUT that kills before
that follows the clamp above.  Anything later -- tcp_retries2 without UT, or
a UT past the failure -- is replayed timer by timer in
:mod:`netkit.model.neighbour`: IPv4's ICMP host-unreachable runs
``tcp_ld_RTO_revert`` (death at the failure, ETIMEDOUT, when the deadline has
passed), IPv6's skb free retransmits through TSQ and re-arms the unclamped
RTO (EHOSTUNREACH one backed-off RTO later).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..enums import Clock, CountSource
from ..errors import NotModelled
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .fault_rule import DataPath, FaultRule
from .neighbour import link_down_deaths, link_down_prediction
from .prediction import DeathPrediction
from .wheel import MEASUREMENT_JIFFIES, latest_death_s, wheel_granularity_s

TCP_RTO_MIN_S = 0.2
TCP_RTO_MAX_S = 120.0

RTO_NEEDS_RETRIES2 = ("data in flight without TCP_USER_TIMEOUT needs tcp_retries2 set low (the default 15 "
                      "takes ~15 minutes)")
PERSIST_NEEDS_RETRIES2 = ("zero-window probing without TCP_USER_TIMEOUT needs tcp_retries2 set low "
                          "(the default 15 backs off for ~15 minutes)")


def default_rto_s(kernel: KernelInfo) -> float:
    """The RTO of a fresh connection on a veth: TCP_RTO_MIN plus one jiffy of RTT rounding."""
    return round(TCP_RTO_MIN_S + kernel.jiffy_s, 6)


TCP_TIMEOUT_MIN_JIFFIES = 2  # include/net/tcp.h: the clamp never arms a timer shorter than this


def tcp_model_timeout_s(boundary: int, rto_base_s: float = TCP_RTO_MIN_S) -> float:
    """``tcp_model_timeout(sk, boundary, rto_base)`` (net/ipv4/tcp_timer.c), in seconds.

    How long after ``retrans_stamp`` ``retransmits_timed_out`` gives up without
    TCP_USER_TIMEOUT: the time ``boundary`` retransmissions take when the RTO
    starts at ``rto_base`` and doubles, up to ``linear_backoff_thresh =
    ilog2(TCP_RTO_MAX / rto_base)`` doublings; beyond that each one adds
    TCP_RTO_MAX::

        boundary <= thresh:  ((2 << boundary) - 1) x rto_base
        else:                ((2 << thresh) - 1) x rto_base + (boundary - thresh) x TCP_RTO_MAX

    ``tcp_retries2`` 15 with TCP_RTO_MIN (200 ms, thresh 9): 204.6 + 6 x 120 = 924.6 s;
    a SYN's budget uses ``rto_base`` = TCP_TIMEOUT_INIT (1 s, thresh 6).
    """
    thresh = int(TCP_RTO_MAX_S / rto_base_s + 1e-9).bit_length() - 1  # ilog2
    if boundary <= thresh:
        return round(((2 << boundary) - 1) * rto_base_s, 6)
    return round(((2 << thresh) - 1) * rto_base_s + (boundary - thresh) * TCP_RTO_MAX_S, 6)


class ClampedRuns(NamedTuple):
    """The timer runs from the clock's start to the one clamped to the deadline (TCP_USER_TIMEOUT)."""

    runs: int  # runs that (re)transmit, when none is pushed past the deadline
    last_s: float  # delay of the final, clamped arming after the last of them
    one_less: bool  # lateness can push the last of them past the deadline: it aborts instead of sending
    last_if_one_less_s: float  # then the clamped arming starts one run earlier: this long, rounded as such


def _clamped_runs(rto_s: float, deadline_s: float, first_offset_s: float, hz: int) -> ClampedRuns:
    """Timer runs from the clock start until the one clamped to the deadline.

    ``first_offset_s``: when the first counted run is, after the clock start.
    The clamp (``tcp_clamp_rto_to_user_timeout``,
    ``tcp_clamp_probe0_to_user_timeout``) arms ``min(rto, remaining)``.  When
    accumulated lateness pushes the last nominal run past the deadline, the
    run before it is the one whose arming gets clamped: a timer of nearly a
    whole ``rto``, rounded up on a coarser wheel level (at HZ=100 a 1.7 s
    timer is 80 ms late at most, not the 30 ms of the short final arming).
    """
    offset, rto, runs, late, previous = first_offset_s, rto_s, 0, 0.0, first_offset_s
    while True:
        runs += 1  # this run (re)transmits
        rto = min(rto * 2, TCP_RTO_MAX_S)
        if offset + rto >= deadline_s:
            return ClampedRuns(runs, deadline_s - offset, runs > 1 and offset + late >= deadline_s,
                               deadline_s - previous)
        previous = offset
        offset += rto
        late += wheel_granularity_s(rto, hz)


def _last_arming_late(last_s: float, kernel: KernelInfo, in_ms: bool) -> float:
    """Lateness of the final, clamped arming: its wheel rounding, or -- when a
    late run landed just short of the deadline -- the clamp's floor plus a jiffy.

    ``in_ms``: the RTO's clamp (``tcp_clamp_rto_to_user_timeout``) arms
    ``msecs_to_jiffies(UT - elapsed)`` with ``elapsed`` in milliseconds of
    ``tcp_time_stamp_ts`` (the TCP clock, not jiffies): rounded up into
    jiffies, the arming can end up to one jiffy past ``retrans_stamp + UT``.
    Measured twice for 100 bytes into a blackhole with UT 1500: 1.959 and
    1.956 s, past 1.956 s, each with its last retransmission on time.  The
    persist timer's clamp counts in jiffies throughout (``tcp_jiffies32 -
    icsk_probes_tstamp`` against ``msecs_to_jiffies(UT)``): no such jiffy.
    """
    rounding = kernel.jiffy_s if in_ms else 0.0
    return max(wheel_granularity_s(last_s, kernel.hz) + rounding, (TCP_TIMEOUT_MIN_JIFFIES + 1) * kernel.jiffy_s)


def _clamped_windows(expected: float, fixed_late: float, clamped: ClampedRuns, kernel: KernelInfo,
                     in_ms: bool = True) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """The death window with every nominal run, and (if lateness can drop the last) the one-run-less window.

    ``in_ms``: the clamp computes the remaining time in milliseconds (the RTO's, not the persist timer's).
    """
    low = round(expected - kernel.jiffy_s, 6)
    window = (low, latest_death_s(expected, fixed_late + _last_arming_late(clamped.last_s, kernel, in_ms), kernel))
    if not clamped.one_less:
        return window, None
    late = fixed_late + _last_arming_late(clamped.last_if_one_less_s, kernel, in_ms)
    return window, (low, latest_death_s(expected, late, kernel))


def unacked_death(
    settings: KeepaliveSettings,
    kernel: KernelInfo,
    fault: FaultRule,
    family: str,
    rto_s: float,
    retries2: int | None,
) -> DeathPrediction:
    """Data sent after the fault, never acknowledged: when the RTO timer gives up (times from the send)."""
    ut = settings.user_timeout_ms
    if fault.data_path is DataPath.RESET:
        return DeathPrediction(
            rule="the data segment reaches the peer, which has no socket for it and answers with a RST: "
                 "tcp_reset() kills the connection with ECONNRESET at once",
            expected_s=0.0, window_s=(0.0, round(MEASUREMENT_JIFFIES * kernel.jiffy_s, 6)),
            expected_count=0, expected_error="ECONNRESET", count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        )
    if fault.data_path is DataPath.LOCAL:
        return _failing_locally(ut, retries2, kernel, rto_s, family)
    if fault.data_path is DataPath.NO_ROUTE:
        # No route: the segment is never sent, packets_out stays 0, and tcp_check_probe_timer hands the
        # connection to the persist timer; its probes fail locally but count (tcp_write_wakeup <= 0).
        return _persist_death(kernel, rto_s, ut, retries2, fault.timeout_error(family),
                              CountSource.PROBES, Clock.SEND,
                              "the peer's namespace is gone, so the data never leaves (no route) and, with nothing "
                              "in flight, the persist timer probes instead of the RTO")
    if ut:
        return _lost_until_user_timeout(ut, kernel, rto_s)
    if retries2 is None:
        raise NotModelled(RTO_NEEDS_RETRIES2)
    return _lost_until_retries2(retries2, kernel, rto_s)


def tcp_model_timeout_jiffies(retries2: int, hz: int) -> int:
    """:func:`tcp_model_timeout_s` for ``tcp_retries2`` in jiffies (its ``rto_base``, TCP_RTO_MIN, is HZ / 5 jiffies)."""
    return round(tcp_model_timeout_s(retries2) * hz)


def _failing_locally(ut: int | None, retries2: int | None, kernel: KernelInfo, rto_s: float,
                     family: str) -> DeathPrediction:
    """Link down: every retransmission fails in the neighbour queue; the clock is the send.

    Until the neighbour entry fails this is the plain clamp (with UT); the
    replay of :mod:`.neighbour` decides whether the failure comes first.
    """
    if not ut and retries2 is None:
        raise NotModelled(RTO_NEEDS_RETRIES2)
    hz = kernel.hz
    deadline_j = math.ceil(ut * hz / 1000) if ut else tcp_model_timeout_jiffies(retries2 or 0, hz)
    deaths = link_down_deaths(family, hz, round(rto_s * hz), deadline_j, user_timeout=bool(ut))
    if ut and not any(d.neighbour_failures for d in deaths):
        return _clamped_locally(ut, kernel, rto_s)
    what = (f"link down, data in flight, TCP_USER_TIMEOUT {ut} ms" if ut else
            f"link down, data in flight, tcp_retries2 = {retries2} (tcp_model_timeout "
            f"{deadline_j / hz:g} s after the send)")
    return link_down_prediction(deaths, kernel, what)


def _clamped_locally(ut: int, kernel: KernelInfo, rto_s: float) -> DeathPrediction:
    """UT kills before the neighbour entry fails: the RTO clamped to the send + UT."""
    jiffy = kernel.jiffy_s
    deadline = ut / 1000
    clamped = _clamped_runs(rto_s, deadline, rto_s, kernel.hz)  # attempts at rto, 3 rto, 7 rto...
    runs = clamped.runs
    window, alternative = _clamped_windows(deadline, jiffy, clamped, kernel)
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


def _lost_until_user_timeout(ut: int, kernel: KernelInfo, rto_s: float) -> DeathPrediction:
    """Segments vanish; the first retransmission (after the TLP) starts the clock; UT clamps the RTO."""
    first_retransmission = 2 * rto_s  # the tail loss probe at rto, then the RTO restarted from it
    deadline = ut / 1000
    clamped = _clamped_runs(rto_s, deadline, 0.0, kernel.hz)
    runs = clamped.runs
    expected = first_retransmission + deadline
    window, alternative = _clamped_windows(expected, _start_late(rto_s, kernel), clamped, kernel)
    return DeathPrediction(
        rule=(f"tcp_retransmit_timer with TCP_USER_TIMEOUT {ut} ms: the tail loss probe at rto and the first "
              f"retransmission at 2 x rto = {first_retransmission:.3f} s start the clock (retrans_stamp); the RTO "
              f"is clamped to retrans_stamp + UT: death {expected:.3f} s after the send, {runs} retransmissions"),
        expected_s=round(expected, 6), window_s=window,
        expected_count=runs, expected_error="ETIMEDOUT", count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        alternative_window_s=alternative, alternative_count=runs - 1 if alternative else None,
    )


def _lost_until_retries2(retries2: int, kernel: KernelInfo, rto_s: float) -> DeathPrediction:
    """Segments vanish; no UT: tcp_model_timeout(tcp_retries2) after the first retransmission."""
    jiffy = kernel.jiffy_s
    first_retransmission = 2 * rto_s
    start_late = _start_late(rto_s, kernel)
    timeout = tcp_model_timeout_s(retries2)
    offsets, late, rto = [0.0], [start_late], rto_s  # run k (1-based): offset from the first retransmission
    while offsets[-1] < timeout:
        rto = min(rto * 2, TCP_RTO_MAX_S)
        offsets.append(offsets[-1] + rto)
        late.append(late[-1] + wheel_granularity_s(rto, kernel.hz))
    nominal = len(offsets)  # first run whose nominal offset reaches the deadline
    early = nominal - 1
    early_qualifies = early >= 2 and offsets[early - 1] + late[early - 1] - start_late >= timeout

    def at(run: int) -> float:
        return round(first_retransmission + offsets[run - 1], 6)

    formula = (f"((2 << {retries2}) - 1) x 200 ms" if timeout == round(((2 << retries2) - 1) * TCP_RTO_MIN_S, 6)
               else "((2 << 9) - 1) x 200 ms + " + f"({retries2} - 9) x 120 s")
    rule = (f"tcp_retransmit_timer with tcp_retries2 = {retries2}: deadline tcp_model_timeout = "
            f"{formula} = {timeout:g} s after the first retransmission (at 2 x rto = "
            f"{first_retransmission:.3f} s, after the tail loss probe); RTO runs every rto x 2^k: death on run "
            f"{nominal} at {at(nominal):.3f} s after the send, {nominal - 1} retransmissions"
            + (f"; timer lateness can make run {early} qualify ({early - 1} retransmissions)" if early_qualifies else ""))
    return DeathPrediction(
        rule=rule,
        expected_s=at(nominal),
        window_s=(round(at(nominal) - jiffy, 6), latest_death_s(at(nominal), late[nominal - 1], kernel)),
        expected_count=nominal - 1, expected_error="ETIMEDOUT", count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        alternative_window_s=(round(max(at(early), first_retransmission + timeout) - jiffy, 6),
                              latest_death_s(at(early), late[early - 1], kernel)) if early_qualifies else None,
        alternative_count=early - 1 if early_qualifies else None,
    )


def _persist_death(
    kernel: KernelInfo, rto_s: float, ut_ms: int | None, retries2: int | None, error: str,
    count_source: CountSource, measured_from: Clock, why: str,
) -> DeathPrediction:
    """The persist (probe0) timer, its first run ``rto`` after the clock's start (see the module docstring).

    With a user timeout: death at first probe + UT.  Without: ``tcp_probe_timer``
    aborts on the run where ``icsk_probes_out >= tcp_retries2``, i.e. after
    ``retries2`` probes at ``rto x (2^k - 1)``.
    """
    jiffy = kernel.jiffy_s
    first_late = wheel_granularity_s(rto_s, kernel.hz)
    since = measured_from.since
    if ut_ms:
        deadline = ut_ms / 1000
        clamped = _clamped_runs(rto_s, deadline, 0.0, kernel.hz)  # at 0, 2 rto, 6 rto... after the first
        probes = clamped.runs
        expected = rto_s + deadline
        window, alternative = _clamped_windows(expected, first_late, clamped, kernel, in_ms=False)
        return DeathPrediction(
            rule=(f"tcp_probe_timer with TCP_USER_TIMEOUT {ut_ms} ms: {why}; the first probe leaves rto = "
                  f"{rto_s:.3f} s after {since} and stamps icsk_probes_tstamp; probes back off (rto << backoff), "
                  f"clamped to that stamp + UT, where the timer aborts: death {expected:.3f} s after {since}, "
                  f"{probes} probes"),
            expected_s=round(expected, 6), window_s=window,
            expected_count=probes, expected_error=error, count_source=count_source, measured_from=measured_from,
            alternative_window_s=alternative, alternative_count=probes - 1 if alternative else None,
        )
    if retries2 is None:
        raise NotModelled(PERSIST_NEEDS_RETRIES2)
    delays = [rto_s * (1 << k) for k in range(retries2 + 1)]  # before probe 1, 2, ... and before the aborting run
    expected = sum(delays)
    late = sum(wheel_granularity_s(d, kernel.hz) for d in delays)
    return DeathPrediction(
        rule=(f"tcp_probe_timer with tcp_retries2 = {retries2}: {why}; probes every rto << backoff from rto = "
              f"{rto_s:.3f} s after {since}; the run after the {retries2}th unanswered probe aborts "
              f"(icsk_probes_out >= tcp_retries2): death at rto x (2^{retries2 + 1} - 1) = {expected:.3f} s"),
        expected_s=round(expected, 6), window_s=(round(expected - jiffy, 6), latest_death_s(expected, late, kernel)),
        expected_count=retries2, expected_error=error, count_source=count_source, measured_from=measured_from,
    )


def zero_window_death(
    settings: KeepaliveSettings, kernel: KernelInfo, fault: FaultRule, family: str, rto_s: float,
    retries2: int | None = None,
) -> DeathPrediction:
    """The peer's window is closed and it goes away: when the persist timer gives up (from the zero-window ACK).

    Every fault but a reset leaves the persist timer probing into the void.
    """
    if fault.data_path is DataPath.RESET:
        jiffy = kernel.jiffy_s
        return DeathPrediction(
            rule=(f"tcp_probe_timer: the first zero-window probe leaves rto = {rto_s:.3f} s after the zero-window ACK; "
                  "the peer has no socket for it and answers with a RST: tcp_reset(), ECONNRESET"),
            expected_s=rto_s,
            window_s=(round(rto_s - jiffy, 6), latest_death_s(rto_s, wheel_granularity_s(rto_s, kernel.hz), kernel)),
            expected_count=1, expected_error="ECONNRESET", count_source=CountSource.WIN_PROBES,
        )
    return _persist_death(kernel, rto_s, settings.user_timeout_ms, retries2, fault.timeout_error(family),
                          CountSource.WIN_PROBES, Clock.LAST_RECEIVED, "the peer's receive window is closed")
