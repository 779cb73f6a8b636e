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
the same time budget (with TCP_SYNCNT 1: death at 3 s after 2
retransmissions, not at 7 s after 5, which counting alone would give;
docs/rules.md, "Handshake timers").
Kernels before 6.5 have no linear timeouts (``L`` = 0: 1, 3, 7, 15 ... s).
Every run re-arms from "now", so the wheel's lateness of each arming adds up
(:mod:`.wheel`); a run that lateness alone would push past the time budget
is not modelled (none of the small settings here comes within a second).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import NamedTuple

from ..enums import Clock, CountSource, State
from ..errors import NotModelled
from ..kernel import KernelInfo
from .fault_rule import DataPath, FaultRule
from .neighbour import MCAST_SOLICIT, RETRANS_TIME_MS, neighbour_failure_jiffies
from .prediction import DeathPrediction
from .rto import TCP_RTO_MAX_S, tcp_model_timeout_s
from .wheel import MEASUREMENT_JIFFIES, latest_death_s, wheel_granularity_s, window

TCP_TIMEOUT_INIT_S = 1.0


def syn_time_budget_s(syn_retries: int) -> float:
    """``tcp_model_timeout(syn_retries, 1 s)``: how long after the SYN ``retransmits_timed_out`` expires the connect."""
    return tcp_model_timeout_s(syn_retries, TCP_TIMEOUT_INIT_S)


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


class UserTimeoutSchedule(NamedTuple):
    """The RTO timer's arm delays in SYN-SENT with TCP_USER_TIMEOUT, and what ends it."""

    delays: tuple[float, ...]
    by_user_timeout: bool  # the user timeout kills (else the retransmission count)
    last_clamped: bool  # the last arming was UT - elapsed: it absorbed every earlier run's lateness


def syn_user_timeout_schedule(syn_retries: int, linear_timeouts: int, user_timeout_ms: int,
                              hz: int) -> UserTimeoutSchedule:
    """The arm delays with TCP_USER_TIMEOUT, and whether the user timeout (not the count) kills.

    With a user timeout, ``retransmits_timed_out`` compares the time since
    the SYN with it instead of ``tcp_model_timeout``'s budget (so a user
    timeout longer than the budget *lengthens* connect()), still only once
    one retransmission went out; the count rule stays.  Every re-arm is
    ``tcp_clamp_rto_to_user_timeout``: ``min(rto, UT - elapsed)``, one jiffy
    once the time is up.  The first arming (``tcp_connect``) is not clamped.
    """
    deadline = user_timeout_ms / 1000
    delays: list[float] = []
    rto, offset, retransmissions = TCP_TIMEOUT_INIT_S, 0.0, 0
    arm, clamped = rto, False
    while True:
        delays.append(arm)
        offset += arm
        if retransmissions >= syn_retries + linear_timeouts:
            return UserTimeoutSchedule(tuple(delays), False, clamped)
        if retransmissions and offset >= deadline - 1e-9:
            return UserTimeoutSchedule(tuple(delays), True, clamped)
        retransmissions += 1
        if retransmissions > linear_timeouts:
            rto = min(rto * 2, TCP_RTO_MAX_S)
        remaining = deadline - offset
        clamped = 0 < remaining < rto
        arm = rto if remaining >= rto else (remaining if remaining > 0 else 1 / hz)


def syn_sent_death(syn_retries: int, linear_timeouts: int, kernel: KernelInfo,
                   user_timeout_ms: int | None = None) -> DeathPrediction:
    """``connect()`` into a blackhole: ETIMEDOUT by the count, or the time budget (the user timeout), whichever is first."""
    if user_timeout_ms:
        return _syn_sent_user_timeout(syn_retries, linear_timeouts, user_timeout_ms, kernel)
    delays = syn_schedule(syn_retries, linear_timeouts)
    expected = sum(delays)
    late = sum(wheel_granularity_s(d, kernel.hz) for d in delays)
    rule = (f"tcp_write_timeout (SYN-SENT): icsk_retransmits >= syn_retries {syn_retries} + tcp_syn_linear_timeouts "
            f"{linear_timeouts}, or {syn_time_budget_s(syn_retries):g} s since the SYN (tcp_model_timeout); SYN "
            f"retransmitted at {_offsets(delays)} s (RTO 1 s, doubling after {linear_timeouts} retransmissions); "
            f"the next run, {expected:g} s after the SYN, ends connect() with ETIMEDOUT")
    return _timed_out(rule, delays, late, kernel)


def _timed_out(rule: str, delays: tuple[float, ...], late: float, kernel: KernelInfo) -> DeathPrediction:
    """ETIMEDOUT on the last of the timer runs ``delays`` (each one a retransmission but the last), ``late`` at most."""
    expected = sum(delays)
    return _syn_prediction(rule, expected, window(expected, expected - kernel.jiffy_s, late, kernel),
                           len(delays) - 1, "ETIMEDOUT", delays)


def _offsets(delays: tuple[float, ...]) -> str:
    """The retransmissions' times after the SYN: every run but the last, which kills."""
    return ", ".join(f"{round(sum(delays[:k]), 3):g}" for k in range(1, len(delays))) or "(none)"


def _syn_prediction(rule: str, expected: float, window_s: tuple[float, float], count: int, error: str,
                    delays: tuple[float, ...] = (), **more: object) -> DeathPrediction:
    return DeathPrediction(rule=rule, expected_s=round(float(expected), 6), window_s=window_s, expected_count=count,
                           expected_error=error, count_source=CountSource.SYN_RETRANS, measured_from=Clock.SYN,
                           timer_runs_s=delays, **more)  # type: ignore[arg-type]


def _syn_sent_user_timeout(syn_retries: int, linear_timeouts: int, user_timeout_ms: int,
                           kernel: KernelInfo) -> DeathPrediction:
    schedule = syn_user_timeout_schedule(syn_retries, linear_timeouts, user_timeout_ms, kernel.hz)
    delays = schedule.delays
    expected = sum(delays)
    retransmissions = len(delays) - 1
    # A clamped re-arm is computed as UT - elapsed: it absorbs every earlier run's lateness (as keepalive's
    # idle - elapsed does), so only its own is late: its wheel rounding, and one jiffy more, since
    # tcp_clamp_rto_to_user_timeout arms msecs_to_jiffies(remaining), rounded up from milliseconds measured on
    # another clock than the jiffy the timer counts from (measured once: 1.542 s for UT 1500 over a dead link).
    # Without one (UT below the first 1 s run: the runs after the time is up are one jiffy each) every arming's
    # lateness adds up.
    late = (wheel_granularity_s(delays[-1], kernel.hz) + kernel.jiffy_s if schedule.last_clamped
            else sum(wheel_granularity_s(d, kernel.hz) for d in delays))
    if schedule.by_user_timeout:
        how = f"the user timeout: {user_timeout_ms} ms since the SYN, {retransmissions} retransmission(s) out"
    else:
        how = f"the count: {retransmissions} = syn_retries {syn_retries} + tcp_syn_linear_timeouts {linear_timeouts}"
    rule = (f"tcp_write_timeout (SYN-SENT) with TCP_USER_TIMEOUT {user_timeout_ms} ms: retransmits_timed_out compares "
            f"the time since the SYN with the user timeout instead of tcp_model_timeout's budget (\"tcp: better handle "
            f"TCP_USER_TIMEOUT in SYN_SENT state\", 2019); SYN retransmitted at {_offsets(delays)} s; ended by {how}, "
            f"{expected:.3f} s after the SYN: ETIMEDOUT")
    return _timed_out(rule, delays, late, kernel)


def syn_sent_refused(kernel: KernelInfo) -> DeathPrediction:
    """No listener at the address: the peer answers the SYN with a RST (``tcp_rcv_synsent_state_process``: ECONNREFUSED)."""
    return _syn_prediction(
        "the peer has no listener: tcp_v4_send_reset/tcp_v6_send_reset answer the SYN with a RST|ACK, and "
        "tcp_rcv_synsent_state_process -> tcp_reset() ends connect() with ECONNREFUSED at once",
        0.0, (0.0, round(MEASUREMENT_JIFFIES * kernel.jiffy_s, 6)), 0, "ECONNREFUSED")


def syn_sent_no_route(kernel: KernelInfo, family: str) -> DeathPrediction:
    """The peer's namespace, and with it the tested veth and its route, are gone: connect() fails at once."""
    lookup = "ip6_dst_lookup_flow" if family == "ipv6" else "ip_route_connect"
    return _syn_prediction(
        f"the peer's namespace is gone and the tested veth with it: {lookup} finds no route, so connect() "
        "fails before any SYN leaves, with ENETUNREACH",
        0.0, (0.0, round(MEASUREMENT_JIFFIES * kernel.jiffy_s, 6)), 0, "ENETUNREACH")


LOCAL_RETRANSMISSION = ("the SYN still waits in the neighbour queue: skb_still_in_host_queue, -EBUSY, "
                        "TcpExt.TCPSpuriousRtxHostQueues; nothing reaches TCPSynRetrans")


def neighbour_failure(kernel: KernelInfo) -> DeathPrediction:
    """When the entry the first SYN creates fails: :func:`.neighbour.neighbour_failure_jiffies`, every send phase.

    The lab pins the tested interface's neighbour timers (link-down's
    ``prepare``): ``mcast_solicit`` solicitations ``retrans_time_ms`` apart,
    each dropped with the carrier.
    """
    earliest, latest = neighbour_failure_jiffies(kernel.hz)
    expected = earliest / kernel.hz
    return DeathPrediction(
        rule=(f"the neighbour entry fails after {MCAST_SOLICIT} solicitations {RETRANS_TIME_MS} ms apart, all "
              f"dropped with the carrier: {expected:.3f}-{latest / kernel.hz:.3f} s after the first packet"),
        expected_s=round(expected, 6),
        window_s=(round(expected - kernel.jiffy_s, 6), latest_death_s(expected, (latest - earliest) / kernel.hz, kernel)),
        expected_count=MCAST_SOLICIT, expected_error="EHOSTUNREACH")


def syn_sent_link_down(syn_retries: int, linear_timeouts: int, kernel: KernelInfo,
                       user_timeout_ms: int | None = None) -> DeathPrediction:
    """No carrier: the SYNs wait in the neighbour queue, and the failed resolution ends connect() (EHOSTUNREACH).

    The carrier loss flushed the tested side's neighbour entries
    (``neigh_carrier_down``); the SYN creates an INCOMPLETE entry whose
    solicitations the qdisc drops (:mod:`.neighbour`).  When it fails,
    ``neigh_invalidate`` hands each queued SYN to the error report
    (``arp_error_report`` -> ``ipv4_link_failure``, ``ndisc_error_report`` ->
    ``ip6_link_failure``), which sends the socket's own host an ICMP host /
    address unreachable; ``tcp_v4_err`` / ``tcp_v6_err`` end a SYN-SENT
    socket on it at once (``tcp_done``, sk_err EHOSTUNREACH) -- unlike an
    established one, which only keeps it as a soft error.  The SYN's own
    timer goes on meanwhile: its retransmissions are attempted and counted,
    and if its end comes first the death is the plain ETIMEDOUT.
    """
    failure = neighbour_failure(kernel)
    syn = syn_sent_death(syn_retries, linear_timeouts, kernel, user_timeout_ms)
    if syn.window_s[1] < failure.window_s[0]:
        return replace(syn, count_source=CountSource.RETRANSMITS, rule=syn.rule + (
            f"; it comes before the neighbour entry fails ({failure.expected_s:.3f} s), each retransmission failing "
            f"locally but counted in icsk_retransmits ({LOCAL_RETRANSMISSION})"))
    if failure.window_s[1] >= syn.window_s[0]:
        raise NotModelled(
            f"connect() over a link without carrier: the SYN timer's end ({syn.window_s[0]:.3f}..{syn.window_s[1]:.3f} s"
            f") and the neighbour failure ({failure.window_s[0]:.3f}..{failure.window_s[1]:.3f} s) overlap; "
            "give more syn_retries")
    offsets = [sum(syn.timer_runs_s[:k]) for k in range(1, len(syn.timer_runs_s))]  # the retransmissions
    late = [sum(wheel_granularity_s(d, kernel.hz) for d in syn.timer_runs_s[:k]) for k in range(1, len(syn.timer_runs_s))]
    surely = sum(1 for o, lt in zip(offsets, late, strict=True) if o + lt < failure.window_s[0])
    maybe = sum(1 for o in offsets if o - kernel.jiffy_s <= failure.window_s[1])
    rule = (f"neigh_timer_handler: {failure.rule}; the queued SYNs' error report (arp_error_report/ndisc_error_report"
            f" -> ICMP unreachable to ourselves) reaches tcp_v4_err/tcp_v6_err, which ends a SYN-SENT socket at once: "
            f"EHOSTUNREACH; until then the SYN timer runs at {_offsets(syn.timer_runs_s)} s, "
            f"each retransmission failing locally but counted in icsk_retransmits ({LOCAL_RETRANSMISSION})")
    extra: dict[str, object] = {}
    if maybe != surely:
        # The SYN timer and the neighbour timer are both armed at the first SYN, 1 s ahead, and re-armed 1 s from
        # each run: the same wheel buckets, so either runs first (measured: the SYN timer's, 3 retransmissions).
        rule += (f"; its run at {offsets[surely]:g} s and the neighbour failure are due in the same jiffies: either "
                 f"runs first ({surely} or {maybe} retransmissions)")
        extra = {"alternative_window_s": failure.window_s, "alternative_count": maybe}
    return replace(_syn_prediction(rule, failure.expected_s, failure.window_s, surely, "EHOSTUNREACH", (), **extra),
                   count_source=CountSource.RETRANSMITS)


def synack_schedule(synack_retries: int) -> tuple[float, ...]:
    """The request socket's timer delays from the first SYN-ACK to the run that drops it."""
    return tuple(TCP_TIMEOUT_INIT_S * (1 << k) for k in range(synack_retries + 1))


def syn_recv_death(synack_retries: int, kernel: KernelInfo) -> DeathPrediction:
    """A client that sent its SYN and vanished: when the listener drops the request socket.

    ``reqsk_timer_handler`` (net/ipv4/inet_connection_sock.c): the timer runs
    ``req->timeout << num_timeout`` after the previous run (``reqsk_timeout``;
    ``req->timeout`` = ``tcp_timeout_init`` = 1 s), first 1 s after the
    SYN-ACK.  ``syn_ack_recalc``: ``expire = num_timeout >=
    max_syn_ack_retries`` (the listener's TCP_SYNCNT, else the namespace's
    ``tcp_synack_retries``); otherwise it retransmits the SYN-ACK
    (``tcp_rtx_synack``: TcpExt.TCPSynRetrans) and re-arms.  Expired, the
    request is unlinked (``__inet_csk_reqsk_queue_drop``) and nothing is sent:
    no application ever hears of it.  (The halving of the retries for an
    old, half-full queue does not apply to one request.)
    """
    delays = synack_schedule(synack_retries)
    expected = sum(delays)
    late = sum(wheel_granularity_s(d, kernel.hz) for d in delays)
    rule = (f"reqsk_timer_handler: SYN-ACK retransmitted at {_offsets(delays)} s (1 s << num_timeout), and the run "
            f"where num_timeout >= tcp_synack_retries {synack_retries}, {expected:g} s after the first SYN-ACK, "
            "drops the request socket (no error reaches any application)")
    return replace(_syn_prediction(rule, expected, window(expected, expected - kernel.jiffy_s, late, kernel),
                                   synack_retries, "none", delays), measured_from=Clock.SYN_ACK)


def _syn_recv_modelled(fault: FaultRule) -> bool:
    """The client must vanish silently before the first SYN-ACK reaches it (else it ACKs it): its input dropped."""
    return fault.data_path is DataPath.LOST and not fault.peer_dies_too  # one-way: the peer still receives


LINEAR_TIMEOUTS_SINCE = (6, 5)  # net.ipv4.tcp_syn_linear_timeouts appeared in 6.5, default 4
DEFAULT_LINEAR_TIMEOUTS = 4


@dataclass(frozen=True)
class HandshakeFacts:
    """What the handshake rules read from the tested namespace (a run reads them; these are a new namespace's)."""

    linear_timeouts: int = DEFAULT_LINEAR_TIMEOUTS  # net.ipv4.tcp_syn_linear_timeouts (absent before 6.5: 0)

    @classmethod
    def defaults(cls, kernel: KernelInfo) -> HandshakeFacts:
        """A new namespace's values on this kernel, for a prediction made before any lab exists."""
        match = re.match(r"(\d+)\.(\d+)", kernel.release)
        old = match is not None and (int(match.group(1)), int(match.group(2))) < LINEAR_TIMEOUTS_SINCE
        return cls(linear_timeouts=0 if old else DEFAULT_LINEAR_TIMEOUTS)


def handshake_death(state: str, fault: FaultRule, family: str, syn_retries: int, user_timeout_ms: int | None,
                    kernel: KernelInfo, facts: HandshakeFacts) -> DeathPrediction:
    """The handshake states' dispatch over what the fault does to a segment (the fault's :class:`FaultRule`)."""
    linear_timeouts = facts.linear_timeouts
    if state == State.SYN_RECV:
        if not _syn_recv_modelled(fault):
            raise NotModelled(handshake_not_modelled_reason(state, fault) or "")
        return syn_recv_death(syn_retries, kernel)
    if fault.data_path is DataPath.RESET:
        return syn_sent_refused(kernel)
    if fault.data_path is DataPath.NO_ROUTE:
        return syn_sent_no_route(kernel, family)
    if fault.data_path is DataPath.LOCAL:
        return syn_sent_link_down(syn_retries, linear_timeouts, kernel, user_timeout_ms)
    return syn_sent_death(syn_retries, linear_timeouts, kernel, user_timeout_ms)


def handshake_not_modelled_reason(state: str, fault: FaultRule) -> str | None:
    """Why a handshake state has no rule with this fault (None: it has one)."""
    if state == State.SYN_RECV and not _syn_recv_modelled(fault):
        return ("a half-open handshake needs a client that vanishes without answering the first SYN-ACK (blackhole: "
                "everything it receives is dropped); with this fault the client still receives and completes the "
                "handshake, or the listener's SYN-ACKs fail locally or meet a RST")
    return None
