"""When the tested side's own qdisc refuses every packet (local-drop): TCP's resource-probe path.

A refused transmit is not a lost one.  ``pfifo_enqueue`` drops the packet and
``dev_queue_xmit`` returns NET_XMIT_DROP; ``__tcp_transmit_skb`` passes it up
as a positive error (``net_xmit_eval``), and TCP reads a positive error as
*local congestion*: it retries every ``TCP_RESOURCE_PROBE_INTERVAL`` (HZ/2,
500 ms; include/net/tcp.h) and never backs off.  Which timer retries, and
what it counts, depends on the state (lines of Debian's 6.12.118 source,
6.1.192's in brackets; docs/rules.md cites them all):

* **Data that never left** (unacked: the write after the fault;
  ``tcp_write_xmit`` stops at the refused segment, ``packets_out`` stays 0)
  and **a closed window**: the probe timer.  ``tcp_check_probe_timer``
  (tcp.h:1457 [1395]) arms it at ``tcp_probe0_base = max(rto, TCP_RTO_MIN)``.
  ``tcp_probe_timer`` (tcp_timer.c:380 [356]) stamps ``icsk_probes_tstamp`` on its
  first run and, from the second on, aborts once ``now - icsk_probes_tstamp
  >= UT``; then aborts once ``icsk_probes_out >= tcp_retries2``; else
  ``tcp_send_probe0`` (tcp_output.c:4393 [4163]) tries the segment (or a window
  probe), ``icsk_probes_out++``, and -- the attempt refused, ``err > 0`` --
  re-arms ``TCP_RESOURCE_PROBE_INTERVAL`` with ``icsk_backoff`` untouched,
  clamped to the user timeout (``tcp_clamp_probe0_to_user_timeout``).  So:
  with UT, death ``UT`` after the first run, ``ceil(UT / 500 ms)`` probes,
  backoff 0 -- the kernel's own test
  tools/testing/selftests/net/packetdrill/tcp_user_timeout_user-timeout-probe.pkt
  asserts 6 probes and backoff 0 for 3000 ms; without, the default
  ``tcp_retries2`` of 15 ends it after 15 probes, about 7.7 s, where a lost
  segment takes about 15 minutes.
* **An idle connection**: ``tcp_keepalive_timer`` (tcp_timer.c:826 [774]) counts a
  probe in ``icsk_probes_out`` only when ``tcp_write_wakeup`` returns ``<=
  0``; a refused one re-arms HZ/2 "to try harder" and counts nothing.  Both
  ways to die need ``icsk_probes_out`` (``>= keepalive_probes``, or ``> 0``
  with a user timeout), so keepalive never ends the connection while the
  qdisc refuses: it survives, ``tcpi_probes`` stays 0, and TcpExt
  TCPKeepAlive counts every attempt (``tcp_xmit_probe_skb`` counts before it
  transmits).
* **SYN-SENT**: ``tcp_connect`` ignores the refused SYN and arms the RTO
  (1 s).  Each run of ``tcp_retransmit_timer`` (tcp_timer.c:624 [579]) checks
  ``tcp_write_timeout`` first, counts the retransmission (``icsk_retransmits++``
  in ``tcp_update_rto_stats``) and, refused, re-arms HZ/2 without doubling:
  death on the first run where the count reaches ``syn_retries +
  tcp_syn_linear_timeouts`` or, one retransmission out, the time since the
  SYN reaches the budget (``tcp_model_timeout(syn_retries, 1 s)``) or the
  user timeout.  The count is ``tcpi_retransmits`` (``icsk_retransmits``, what
  the rule compares); TcpExt TCPSynRetrans counts the same attempts
  (``__tcp_retransmit_skb`` counts before it transmits), and nothing reaches
  the wire.

Every arming lands on the timer wheel; the runs are replayed here jiffy by
jiffy for every phase of the wheel (:func:`netkit.model.wheel.runs_at_jiffy`),
so a window is the earliest and latest death the wheel allows, and a count
that lateness can change is a second outcome.  docs/rules.md, "A local
drop: the resource probes".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..enums import Clock, CountSource, State
from ..errors import NotModelled
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .handshake import TCP_TIMEOUT_INIT_S
from .keepalive import keepalive_death
from .prediction import DeathPrediction, Window
from .rto import DEFAULT_RETRIES2, TCP_RTO_MIN_S, TCP_TIMEOUT_MIN_JIFFIES, msecs_to_jiffies, tcp_model_timeout_s
from .schedule import keepalive_schedule
from .wheel import MEASUREMENT_JIFFIES, latest_death_s, runs_at_jiffy, wheel_granularity_s

WHEEL_PHASES = 64  # level 2's granularity: every phase a timer of up to 4095 jiffies can meet
SURVIVAL_MARGIN_S = 2  # an idle connection is watched this long past the keepalive rule's latest death (whole s)
PACKETDRILL_TEST = "tools/testing/selftests/net/packetdrill/tcp_user_timeout_user-timeout-probe.pkt"
LOCAL_DROP_STATES = (State.IDLE, State.UNACKED, State.ZERO_WINDOW, State.SYN_SENT)
NOT_MODELLED = ("a local drop is modelled for the idle, unacked, zero-window and syn-sent states (the kernel's "
                "resource-probe path); in {state} ")
RETRACTED_REASON = ("the data is already in flight, so tcp_retransmit_timer's zero-window branch retries it, and "
                    "netkit has not measured what that branch makes of a refused retransmission: use zero-window")
SYN_RECV_REASON = ("the listener's refused SYN-ACKs are retried by the request socket's timer (reqsk_timer_handler), "
                   "which netkit has not measured: use syn-sent")


def resource_probe_jiffies(hz: int) -> int:
    """``TCP_RESOURCE_PROBE_INTERVAL`` (include/net/tcp.h: ``(unsigned)(HZ/2U)``): the wait after a refused transmit."""
    return hz // 2


def local_drop_not_modelled_reason(state: str) -> str | None:
    """Why a local drop has no rule in ``state`` (None: it has one)."""
    if state in LOCAL_DROP_STATES:
        return None
    return NOT_MODELLED.format(state=state) + (SYN_RECV_REASON if state == State.SYN_RECV else RETRACTED_REASON)


@dataclass(frozen=True)
class _Run:
    """One replay's end: the aborting run's jiffy after t = 0, and what was counted before it."""

    death_j: int
    count: int
    by: str = ""  # what ended it: "user timeout", "count" or "budget"


Arm = Callable[[int, int], int]  # (now, delay) -> the jiffy the timer runs


def _exact(now: int, delay: int) -> int:
    return now + delay


def _phases(replay: Callable[[Arm, int], _Run], hz: int) -> tuple[_Run, list[_Run]]:
    """The nominal replay (every timer on time) and one for each phase of the wheel t = 0 can fall on."""
    return replay(_exact, 0), [replay(lambda now, delay: runs_at_jiffy(now, delay, hz), p) for p in range(WHEEL_PHASES)]


def _outcomes(nominal: _Run, wheel: list[_Run], kernel: KernelInfo) -> tuple[float, Window, int, Window | None, int | None]:
    """The expected death, its window and count, and a second (window, count) where the wheel changes the count.

    A window spans the deaths the wheel allows for that count, one jiffy
    earlier (t = 0 falls anywhere inside its jiffy) and the measurement's
    jiffies later, capped at packetdrill's bound like every window.
    """
    jiffy = kernel.jiffy_s
    expected = nominal.death_j * jiffy
    counts = sorted({r.count for r in wheel} | {nominal.count}, reverse=True)
    if len(counts) > 2:
        raise NotModelled(f"the timer wheel's rounding allows {len(counts)} different counts here ({counts}): "
                          "netkit's windows hold two outcomes at most; choose a user timeout further from a probe")

    def window_for(count: int) -> Window:
        deaths = [r.death_j for r in wheel if r.count == count] + ([nominal.death_j] if nominal.count == count else [])
        low = min(deaths) * jiffy - jiffy
        return round(low, 6), latest_death_s(expected, max(deaths) * jiffy - expected, kernel)

    other = [c for c in counts if c != nominal.count]
    alternative = other[0] if other else None
    return (round(expected, 6), window_for(nominal.count), nominal.count,
            window_for(alternative) if alternative is not None else None, alternative)


def probe_timer_local_drop(kernel: KernelInfo, rto_s: float, ut_ms: int | None, retries2: int | None,
                           error: str, count_source: CountSource, measured_from: Clock, why: str) -> DeathPrediction:
    """The probe timer retrying a refused segment or window probe every HZ/2 (module docstring)."""
    hz = kernel.hz
    base_j = math.ceil(round(max(rto_s, TCP_RTO_MIN_S) * hz, 6))  # tcp_probe0_base: icsk_rto is whole jiffies
    interval_j = resource_probe_jiffies(hz)
    ut_j = msecs_to_jiffies(ut_ms, hz) if ut_ms else 0
    max_probes = DEFAULT_RETRIES2 if retries2 is None else retries2

    def replay(arm: Arm, phase: int) -> _Run:
        run = arm(phase, base_j)
        stamp, probes = run, 0  # the first run stamps icsk_probes_tstamp
        while True:
            if ut_j and run != stamp and run - stamp >= ut_j:
                return _Run(run - phase, probes, "user timeout")
            if probes >= max_probes:
                return _Run(run - phase, probes, "count")
            probes += 1  # refused: icsk_probes_out++, icsk_backoff untouched
            delay = interval_j
            if ut_j:  # tcp_clamp_probe0_to_user_timeout
                delay = min(delay, max(ut_j - (run - stamp), TCP_TIMEOUT_MIN_JIFFIES))
            run = arm(run, delay)

    nominal, wheel = _phases(replay, hz)
    expected, window_s, count, alternative_s, alternative = _outcomes(nominal, wheel, kernel)
    since = measured_from.since
    ends = (f"TCP_USER_TIMEOUT {ut_ms} ms after that first run (icsk_probes_tstamp), the last wait clamped to it"
            if nominal.by == "user timeout" else
            f"the run after the {max_probes}th probe (icsk_probes_out >= tcp_retries2 = {max_probes}"
            + (", the namespace's default" if retries2 is None else "") + ")")
    upstream = (f"; the kernel's own test {PACKETDRILL_TEST} asserts this path: 6 probes and backoff 0 for 3000 ms"
                if ut_ms else "")
    rule = (f"tcp_probe_timer, resource probes: {why}; the local qdisc refuses every transmit (NET_XMIT_DROP), so "
            f"the probe timer first runs at tcp_probe0_base = max(rto, 200 ms) = {base_j / hz:.3f} s after {since}, "
            f"then tcp_send_probe0 counts each refused probe and re-arms TCP_RESOURCE_PROBE_INTERVAL (500 ms) with "
            f"no backoff; death at {ends}: {expected:.3f} s after {since}, {count} probes, tcpi_backoff 0{upstream}")
    return DeathPrediction(
        rule=rule, expected_s=expected, window_s=window_s, expected_count=count, expected_error=error,
        count_source=count_source, measured_from=measured_from, alternative_window_s=alternative_s,
        alternative_count=alternative, expected_backoff=0)


def syn_sent_local_drop(syn_retries: int, linear_timeouts: int, user_timeout_ms: int | None,
                        kernel: KernelInfo) -> DeathPrediction:
    """connect() whose SYNs the local qdisc refuses: a retransmission counted every HZ/2 (module docstring)."""
    hz = kernel.hz
    first_j, interval_j = round(TCP_TIMEOUT_INIT_S * hz), resource_probe_jiffies(hz)
    budget_s = user_timeout_ms / 1000 if user_timeout_ms else tcp_model_timeout_s(syn_retries, TCP_TIMEOUT_INIT_S)
    max_retransmits = syn_retries + linear_timeouts

    def replay(arm: Arm, phase: int) -> _Run:
        run, retransmits = arm(phase, first_j), 0
        while True:
            if retransmits >= max_retransmits:  # tcp_write_timeout: ETIMEDOUT, nothing sent
                return _Run(run - phase, retransmits, "count")
            if retransmits > 0 and (run - phase) / hz >= budget_s - 1e-9:  # retransmits_timed_out
                return _Run(run - phase, retransmits, "budget")
            retransmits += 1  # tcp_update_rto_stats, then the refused retransmission: HZ/2, no doubling
            run = arm(run, interval_j)

    nominal, wheel = _phases(replay, hz)
    expected, window_s, count, alternative_s, alternative = _outcomes(nominal, wheel, kernel)
    budget = (f"TCP_USER_TIMEOUT {user_timeout_ms} ms" if user_timeout_ms else
              f"the time budget tcp_model_timeout({syn_retries}, 1 s) = {budget_s:g} s")
    by = (f"by the count, {nominal.count} retransmissions" if nominal.by == "count"
          else f"by the time ({budget}), {nominal.count} retransmissions")
    rule = (f"tcp_retransmit_timer (SYN-SENT), resource retries: the local qdisc refuses the SYN, tcp_connect arms "
            f"the RTO (1 s) anyway; every run counts a retransmission (icsk_retransmits) and the refused one re-arms "
            f"TCP_RESOURCE_PROBE_INTERVAL (500 ms) with no doubling; tcp_write_timeout ends connect() on the first run "
            f"where icsk_retransmits >= syn_retries {syn_retries} + tcp_syn_linear_timeouts {linear_timeouts}, or "
            f"{budget} has passed since the SYN: ended {by}, {expected:.3f} s after the SYN, none on the wire: "
            "ETIMEDOUT")
    return DeathPrediction(
        rule=rule, expected_s=expected, window_s=window_s, expected_count=count, expected_error="ETIMEDOUT",
        count_source=CountSource.RETRANSMITS, measured_from=Clock.SYN, alternative_window_s=alternative_s,
        alternative_count=alternative)


def idle_survives_local_drop(settings: KeepaliveSettings, kernel: KernelInfo,
                             last_segment: str = "probe-reply") -> DeathPrediction:
    """An idle connection outlives its keepalive: every refused probe is retried and none is counted.

    Watched ``SURVIVAL_MARGIN_S`` past the latest death the keepalive rule
    gives when the probes leave, rounded up to whole seconds; ``expected_count`` is the
    fewest attempts TcpExt TCPKeepAlive can show by then: the first at
    ``max(idle, intvl)`` (or idle), then one every 500 ms, each as late as
    the wheel allows.
    """
    would_die = keepalive_death(settings, kernel, last_segment).window_s[1]
    watched = float(math.ceil(would_die) + SURVIVAL_MARGIN_S)
    schedule = keepalive_schedule(settings, last_segment)
    first = schedule.first_probe + wheel_granularity_s(schedule.first_delay, kernel.hz)
    interval_s = resource_probe_jiffies(kernel.hz) * kernel.jiffy_s
    step = interval_s + wheel_granularity_s(interval_s, kernel.hz)
    attempts = math.floor((watched - first - MEASUREMENT_JIFFIES * kernel.jiffy_s) / step) + 1
    rule = (f"tcp_keepalive_timer: {schedule.how}, and the local qdisc refuses it (NET_XMIT_DROP): a refused probe is "
            "not counted (icsk_probes_out stays 0) and the timer re-arms TCP_RESOURCE_PROBE_INTERVAL (500 ms) to try "
            f"harder; death needs icsk_probes_out >= {settings.cnt} (or > 0 with TCP_USER_TIMEOUT), so the connection "
            f"outlives the {would_die:.3f} s the keepalive rule gives: alive through {watched:g} s, tcpi_probes 0, "
            f"at least {attempts} refused attempts in TcpExt TCPKeepAlive")
    return DeathPrediction(rule=rule, expected_s=watched, window_s=(watched, watched), expected_count=attempts,
                           expected_error="none", count_source=CountSource.KEEPALIVES, alive_until_s=watched,
                           last_segment=last_segment, schedule=schedule)


__all__ = ["LOCAL_DROP_STATES", "PACKETDRILL_TEST", "idle_survives_local_drop", "local_drop_not_modelled_reason",
           "probe_timer_local_drop", "resource_probe_jiffies", "syn_sent_local_drop"]
