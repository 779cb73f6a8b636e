"""Judging the timer ledger: the rule checked to the jiffy, and the machine's lateness taken out of the times.

Three questions, kept apart (docs/rules.md, "The timer ledger"):

- **The rule, exact** (:func:`rule_failures`): every bucket the kernel queued
  an arming in is the timer wheel's rounding of its expiry (``calc_index``:
  ``((expires >> shift) + 1) << shift``) at a level the base's clock allows
  (:func:`possible_buckets`), and every keepalive re-arm that followed a
  probe asked for ``intvl * HZ`` jiffies (``keepalive_intvl_when``): as many
  of them as probes went unanswered; every write-timer re-arm after t = 0
  asked for the retransmission or persist timer's delay
  (:func:`write_timer_failures`: backoff and user-timeout clamp, computed
  by :mod:`netkit.model.rto`'s jiffy rules).  No other tolerance.
- **The machine** (:func:`on_time`): each run's lateness is measured
  (:mod:`.ledger`); the measured times -- the probes and the RST on the wire,
  the kernel's death, the observer's reading -- moved back by the lateness
  their run carried give what an idle machine would have shown.
- **The verdict** (``ScenarioResult``): a run that fails only as measured and
  passes once the lateness is taken out is *machine late*, not the kernel's
  failure; an early death or a rule mismatch fails however loaded the
  machine was.

``RULE_SHIFT_JIFFIES`` is a test-only hook: it moves the model's keepalive
and write-timer re-arms by that many jiffies, so a test proves the ledger
catches a rule error of one jiffy that the death window hides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..enums import State
from ..model.fault_rule import DataPath
from ..model.local_drop import resource_probe_jiffies
from ..model.rto import (
    DEFAULT_RETRIES2,
    backed_off_rto_jiffies,
    clamp_probe0_to_user_timeout_jiffies,
    clamp_rto_to_user_timeout_jiffies,
    probe0_when_jiffies,
)
from ..model.wheel import bucket_at_level, runs_at_jiffy, wheel_level
from .ledger import KEEPALIVE_TIMER, WRITE_TIMER, Arming, Ledger, TimerRun
from .timecheck import Failure
from .wire import WireEvidence

RULE_SHIFT_JIFFIES = 0  # test-only: a planted rule error (see the module docstring)
# A moment the trace printed, read back from the run's axis: the instance prints microseconds (truncated: the
# moment is up to 1 us later) and the axis rounds to the microsecond (0.5 us either way).
TRACE_EARLY_NS, TRACE_LATE_NS = 500, 1500


def possible_buckets(a: Arming, hz: int) -> list[int]:
    """Every bucket the wheel can give this arming: one per level its base's clock allows.

    The level comes from ``expires - base->clk``, and the base's clock is
    not ``jiffies`` exactly.  While a run's handlers execute it is one ahead
    (``__run_timers``: "base->clk is set 1 offset ahead of jiffies"), and a
    system call made just after a run finds it so too: the level may be the
    one of ``delay - 1``.  A base forwarded to its next expiry
    (``__forward_timer_base``) trails ``jiffies``: by up to the run's own
    lateness less one for a handler's re-arm, and by an unknown amount for a
    system call's arming (one level up is allowed).
    """
    low = wheel_level(max(a.delay - 1, 0), hz)
    if a.by_run:
        high = wheel_level(a.delay + max(0, (a.run_late or 0) - 1), hz)
    else:
        high = wheel_level(a.delay, hz) + 1
    return [bucket_at_level(a.expires, level) for level in range(low, high + 1)]


def _bucket_failure(a: Arming, hz: int) -> Failure | None:
    allowed = possible_buckets(a, hz)
    if a.bucket in allowed:
        return None
    shown = " or ".join(str(b) for b in sorted(set(allowed)))
    return Failure("ledger: wheel bucket", f"jiffy {shown}", f"jiffy {a.bucket}", message=(
        f"ledger: {a.function} armed at {a.t_s:.3f} s for {a.delay} jiffies (expires {a.expires}) was queued in "
        f"the bucket of jiffy {a.bucket}; the wheel's rounding (calc_index) gives {shown}"))


def rule_failures(ledger: Ledger, intvl_s: float | None, probes: int | None,
                  idle_s: float | None = None, refused: bool = False) -> list[Failure]:
    """Every way the ledger's armings disagree with the rule, to the jiffy (empty: they agree).

    ``intvl_s``/``idle_s`` are the keepalive settings the schedule was made
    from (``intvl_s`` None: no keepalive rule is judged); ``probes`` the
    unanswered probes the kernel counted (``tcpi_probes``).  Which runs sent
    a probe is read from the ledger's own jiffies: a run ``idle`` or more
    after t = 0 probes (or kills), one before re-arms for ``idle - elapsed``
    (``tcp_keepalive_timer``); within a jiffy of ``idle``, its re-arm's delay
    says which it was.  ``refused``: the local qdisc refuses every probe
    (local-drop), so each probing run re-arms ``TCP_RESOURCE_PROBE_INTERVAL``
    (HZ/2) and counts nothing: there must be such re-arms, each of HZ/2.
    """
    hz = ledger.hz
    found = [f for a in ledger.armings if (f := _bucket_failure(a, hz)) is not None]
    if intvl_s is None or probes is None:
        return found
    wanted = (resource_probe_jiffies(hz) if refused else round(intvl_s * hz)) + RULE_SHIFT_JIFFIES
    rearms = [a for a in ledger.armings if a.by_run and a.function == KEEPALIVE_TIMER and a.t_s > 0]

    def after_a_probe(a: Arming) -> bool:
        if ledger.zero_jiffy is None or idle_s is None:
            return a.delay == wanted
        since = a.now - ledger.zero_jiffy
        idle = round(idle_s * hz)
        return since > idle or (since >= idle - 1 and a.delay == wanted)

    probe_rearms = [a for a in rearms if after_a_probe(a)]
    delays = ", ".join(str(a.delay) for a in rearms) or "none"
    if refused:
        if not probe_rearms or any(a.delay != wanted for a in probe_rearms):
            found.append(Failure("ledger: keepalive re-arm", f"each refused probe: {wanted} jiffies",
                                 f"{len(probe_rearms)} (re-arms: {delays})", message=(
                f"ledger: after each refused probe the keepalive timer should re-arm for TCP_RESOURCE_PROBE_INTERVAL "
                f"= HZ/2 = {wanted} jiffies; of its re-arms after t = 0 ({delays} jiffies), the {len(probe_rearms)} "
                "after probes did not")))
        return found
    if len(probe_rearms) != probes or any(a.delay != wanted for a in probe_rearms):
        found.append(Failure("ledger: keepalive re-arm", f"{probes} x {wanted} jiffies",
                             f"{len(probe_rearms)} (re-arms: {delays})", message=(
            f"ledger: after each of the {probes} unanswered probes the keepalive timer should re-arm for "
            f"intvl * HZ = {wanted} jiffies (keepalive_intvl_when); the kernel's {len(probe_rearms)} re-arms after probes, "
            f"of its re-arms after t = 0 ({delays} jiffies), did not")))
    return found


@dataclass(frozen=True)
class WriteTimerRule:
    """What the tested socket's write timer (``tcp_write_timer``) must do once the run broke the path.

    ``persist``: the zero-window probe timer (``ICSK_TIME_PROBE0``: a closed
    window, or data that never left because the route is gone), otherwise
    the retransmission timer (``ICSK_TIME_RETRANS``).  ``held``: the link is
    down, so the data waits in the neighbour queue (``skb_still_in_host_queue``)
    and every retransmission fails locally.  ``rto``: the connection's
    ``icsk_rto`` in jiffies as ``tcp_info`` reported it before the fault (None:
    not read), the kernel's own word for the base the series backs off from
    (:func:`base_candidates`).  ``rto_max_ms``: the socket's maximum RTO
    (``TCP_RTO_MAX_MS`` or ``tcp_rto_max_ms``; None: TCP_RTO_MAX), the cap
    of both timers' backoff.  ``refused``: the local qdisc refuses every
    transmit (local-drop), so the persist timer re-arms
    ``TCP_RESOURCE_PROBE_INTERVAL`` (HZ/2) without backing off
    (:mod:`netkit.model.local_drop`).
    """

    persist: bool
    held: bool
    user_timeout_ms: int | None
    retries2: int
    rto: int | None = None
    rto_max_ms: int | None = None
    refused: bool = False

    @property
    def name(self) -> str:
        return ("the persist timer (tcp_probe_timer, tcp_send_probe0)" if self.persist
                else "the retransmission timer (tcp_retransmit_timer)")


def write_timer_rule(state: str, data_path: DataPath, user_timeout_ms: int | None,
                     retries2: int | None, rto_jiffies: int | None = None,
                     rto_max_ms: int | None = None) -> WriteTimerRule | None:
    """The write timer's rule for a scenario (None: the state arms none after t = 0 that netkit judges)."""
    retries = DEFAULT_RETRIES2 if retries2 is None else retries2
    refused = data_path is DataPath.REFUSED
    if state == State.ZERO_WINDOW:
        return WriteTimerRule(True, False, user_timeout_ms, retries, rto_jiffies, rto_max_ms, refused)
    if state == State.UNACKED:
        # No route, or a refusing qdisc: the send's segment never leaves, packets_out stays 0, and
        # tcp_check_probe_timer arms ICSK_TIME_PROBE0 for tcp_probe0_base(sk) (netkit.model.persist, .local_drop).
        return WriteTimerRule(data_path in (DataPath.NO_ROUTE, DataPath.REFUSED), data_path is DataPath.LOCAL,
                              user_timeout_ms, retries, rto_jiffies, rto_max_ms, refused)
    return None


def base_candidates(start: Arming, rule: WriteTimerRule) -> list[int]:
    """The delays the series' first arming may have asked for: what the trace shows, or one more where tcp_info says so.

    ``inet_csk_reset_xmit_timer`` reads ``jiffies`` to set the expiry, and
    ``timer:timer_start`` reads it again to print ``now``: a tick between the
    two (the timer softirq runs on the way out of its interrupt, in the
    middle of a ``send()``) prints a delay one jiffy short of the one asked
    for.  Seen twice in about 1,400 runs, both a send's arming of the
    persist timer 17-20 us from a jiffy's start (50 jiffies printed, the
    runs then backing off from 51).  That arming is the series' base
    (``icsk_rto``, ``tcp_probe0_base``), so the base one more is allowed
    exactly when the kernel's ``icsk_rto`` (``rule.rto``) is that one more;
    the whole series must then follow it.
    """
    shown = start.delay
    return [shown, shown + 1] if rule.rto == shown + 1 else [shown]


def _ms(ns: int) -> int:
    return ns // 10**6


def _rto_elapsed_ms(ledger: Ledger, run_from: float, run_to: float, stamp_from: float,
                    stamp_to: float) -> range | None:
    """``tcp_time_stamp_ts(tp) - tp->retrans_stamp`` in ms: every value the trace's moments allow.

    The TCP clock (``tcp_mstamp``, refreshed when the handler starts) is read
    between the run's entry and its re-arm; ``retrans_stamp`` is the skb
    timestamp of the first (attempted) retransmission, taken between two
    moments too.  Both are CLOCK_MONOTONIC, the trace's clock, cut to whole
    milliseconds: where a millisecond ends between two moments both counts
    are possible, and nothing else is.
    """
    bounds = [ledger.mono_ns(t) for t in (run_from, run_to, stamp_from, stamp_to)]
    if any(b is None for b in bounds):
        return None
    n_lo, n_hi, s_lo, s_hi = (b for b in bounds if b is not None)
    low = _ms(n_lo - TRACE_EARLY_NS) - _ms(s_hi + TRACE_LATE_NS)
    high = _ms(n_hi + TRACE_LATE_NS) - _ms(s_lo - TRACE_EARLY_NS)
    return range(low, high + 1)


def _run_of(ledger: Ledger, arming: Arming) -> TimerRun | None:
    """The run a handler's re-arm was made in: the last run of its timer that began before it."""
    found = None
    for run in ledger.runs:
        if run.function == arming.function and run.t_s <= arming.t_s:
            found = run
    return found


def asked_for(ledger: Ledger, a: Arming) -> set[int]:
    """Every delay a run's re-arm may have asked for: the traced one, or more where a tick fell inside the handler.

    The kernel sets the expiry from ``jiffies`` when it re-arms
    (``inet_csk_reset_xmit_timer``: ``jiffies + when``), and ``timer_start``
    prints ``jiffies`` again: a tick between the run's start and that print
    shows a delay short by the jiffies that passed (seen on Debian's 6.1
    under emulation: a tail loss probe's run at jiffy J re-armed the full 14
    jiffies to J + 14, printed at J + 1 as 13).  So the delay asked for is
    ``expires - now`` for some ``now`` between the run's jiffy and the print's.
    """
    run = _run_of(ledger, a)
    if run is None or not a.by_run or run.now >= a.now:
        return {a.delay}
    return set(range(a.delay, a.expires - run.now + 1))


def expected_write_rearms(ledger: Ledger, rule: WriteTimerRule) -> tuple[Arming | None, list[Arming], list[set[int]]]:
    """The write timer's series after t = 0 and, for each re-arm its runs made, every delay the rule allows.

    The series starts at the arming just before the first re-arm after
    t = 0: the system call's, the closing ACK's, or the re-arm that a probe's
    answer made just before t = 0.  On a veth the answer is processed inside
    the probe's own run, so that re-arm reads as the run's: on Debian's 6.1
    under emulation a zero-window probe left before the fault, its answer
    (window still 0) was t = 0, and it re-armed for the RTO again (backoff
    reset); the series backs off from there.  The series runs while each
    arming is its own run's: an arming by another path (IPv6's neighbour
    failure retransmitting through TSQ, :mod:`netkit.model.neighbour`) ends it.
    """
    writes = [a for a in ledger.armings if a.function == WRITE_TIMER]
    first = next((i for i, a in enumerate(writes) if a.by_run and a.t_s > 0), None)
    if not first:  # none, or no arming before it
        return None, [], []
    start_index = first - 1
    start = writes[start_index]
    series: list[Arming] = []
    for a in writes[start_index + 1:]:
        if not a.by_run:
            break
        series.append(a)
    each = [_allowed_rearms(ledger, rule, start, base, series) for base in base_candidates(start, rule)]
    kept = next((allowed for allowed in each
                 if all(not ok or asked_for(ledger, a) & ok for a, ok in zip(series, allowed, strict=True))),
                each[0])  # none agrees: the one from the delay the trace shows is what a failure names
    return start, series, kept


def _allowed_rearms(ledger: Ledger, rule: WriteTimerRule, start: Arming, base: int,
                    series: list[Arming]) -> list[set[int]]:
    """For each re-arm of ``series``, every delay the rule allows when the series backs off from ``base`` jiffies."""
    # Every arming goes through tcp_reset_xmit_timer(), which adds tcp_pacing_delay() when asked to: the time
    # tcp_wstamp_ns is ahead of the clock, never ahead without pacing (no fq, no BBR, no SO_MAX_PACING_RATE).
    hz, ut, shift = ledger.hz, rule.user_timeout_ms, RULE_SHIFT_JIFFIES
    allowed: list[set[int]] = []
    if rule.persist:
        # tcp_ack_probe / tcp_check_probe_timer armed tcp_probe0_when() with icsk_backoff 0: the base.
        # Each tcp_probe_timer run stamps icsk_probes_tstamp = tcp_jiffies32 the first time, then
        # tcp_send_probe0: "if (icsk->icsk_backoff < sysctl_tcp_retries2) icsk->icsk_backoff++;"
        # timeout = tcp_probe0_when(sk, tcp_rto_max(sk)); tcp_clamp_probe0_to_user_timeout(sk, timeout).
        first_run = _run_of(ledger, series[0]) if series else None
        stamps = range(first_run.now if first_run else series[0].now, series[0].now + 1) if series else range(0)
        for k, a in enumerate(series, 1):
            # refused (err > 0): "timeout = TCP_RESOURCE_PROBE_INTERVAL", icsk_backoff untouched
            when = (resource_probe_jiffies(hz) if rule.refused
                    else probe0_when_jiffies(base, min(k, rule.retries2), hz, rule.rto_max_ms))
            allowed.append({clamp_probe0_to_user_timeout_jiffies(when, ut, a.now - s, hz) + shift for s in stamps})
        return allowed
    # The retransmission timer.  Re-arm 1 is the tail loss probe's (tcp_schedule_loss_probe at the send; its
    # expiry is the RTO's, so mod_timer records nothing then): tcp_send_loss_probe sends it, sets
    # "icsk->icsk_pending = 0" and tcp_rearm_rto() restarts the full icsk_rto; with the segment still in the
    # neighbour queue it jumps to rearm_timer with ICSK_TIME_LOSS_PROBE pending, and tcp_rearm_rto() arms
    # "usecs_to_jiffies(max_t(int, delta_us, 1))" for what is left of the RTO since the send: nothing (the
    # level-0 bucket made the run a jiffy past it), so 1 jiffy.  Each RTO run k after it doubles icsk_rto
    # (out_reset_timer) and re-arms tcp_clamp_rto_to_user_timeout(sk).
    rto = base
    for k, a in enumerate(series):
        if k == 0:
            allowed.append({(1 if rule.held else rto) + shift})
            continue
        backed_off = backed_off_rto_jiffies(rto, k, hz, rule.rto_max_ms)
        if not ut:
            allowed.append({backed_off + shift})
            continue
        run = _run_of(ledger, a)
        if rule.held:  # retrans_stamp is the send's skb timestamp: between netkit's marker and the send's arming
            stamp_from = max((t for t in ledger.marks_s if t <= start.t_s), default=start.t_s)
            stamp = (stamp_from, start.t_s)
        else:  # retrans_stamp is the first RTO run's retransmission: inside that run
            first_rto = _run_of(ledger, series[1]) if len(series) > 1 else None
            stamp = (first_rto.t_s if first_rto else series[1].t_s, series[1].t_s)
        elapsed = _rto_elapsed_ms(ledger, run.t_s if run else a.t_s, a.t_s, *stamp)
        if elapsed is None:  # a ledger read back without its clock: the clamp cannot be judged
            allowed.append(set())
            continue
        allowed.append({clamp_rto_to_user_timeout_jiffies(backed_off, ut, e, hz) + shift for e in elapsed})
    return allowed


def _shown(values: Sequence[set[int]]) -> str:
    return ", ".join("/".join(str(v) for v in sorted(s)) if s else "?" for s in values) or "none"


def write_timer_failures(ledger: Ledger, rule: WriteTimerRule | None) -> list[Failure]:
    """The write timer's re-arms against the rule, to the jiffy (empty: they agree).

    Every re-arm its own runs made after t = 0 is checked: the retransmission
    timer's backoff and user-timeout clamp, the persist timer's
    ``tcp_probe0_when`` and its clamp (:func:`expected_write_rearms`).  A set
    of two delays is allowed only where the clamp's millisecond clock
    (``tcp_time_stamp_ts``) turned between two moments the trace shows.
    """
    if rule is None:
        return []
    start, series, allowed = expected_write_rearms(ledger, rule)
    wrong = [i for i, (a, ok) in enumerate(zip(series, allowed, strict=True)) if ok and not asked_for(ledger, a) & ok]
    if start is None or not wrong:
        return []
    first = series[wrong[0]]
    delays = ", ".join(str(a.delay) for a in series)
    return [Failure("ledger: write timer re-arm", f"{_shown(allowed)} jiffies", f"{delays} jiffies", message=(
        f"ledger: after the arming for {start.delay} jiffies at {start.t_s:.3f} s, {rule.name} should re-arm for "
        f"{_shown(allowed)} jiffies (backoff from that RTO"
        + (f", clamped to TCP_USER_TIMEOUT {rule.user_timeout_ms} ms" if rule.user_timeout_ms else "")
        + f"); the kernel re-armed for {delays} jiffies: re-arm {wrong[0] + 1} at {first.t_s:.3f} s "
          f"asked for {first.delay}"))]


def carried(ledger: Ledger, intvl_jiffies: int | None = None, idle_jiffies: int | None = None) -> list[float]:
    """How much later than on an idle machine each run happened (s): its own lateness and what earlier runs passed on.

    A re-arm made in a run counts from the jiffy the run ran at
    (``jiffies + delay``: the retransmission timer, a keepalive re-arm for
    ``intvl``), so a run late by whole jiffies moves the next expiry by as
    much -- unless the wheel's rounding swallows it, which is why the idle
    machine's bucket is computed again (``calc_index``) rather than the
    jiffies added up.  A keepalive re-arm for ``idle - elapsed`` (any other
    delay than ``intvl_jiffies``) counts from the last segment received, not
    from the run: it passes nothing on.

    An arming by a system call after t = 0 for the whole ``idle_jiffies``
    (``SO_KEEPALIVE`` after the handshake, in a routed lab: it counts from
    the call, ``keepalive_time_when``) would have been made in t = 0's own
    jiffy on an idle machine: a process descheduled between ``connect`` and
    ``setsockopt`` (137 ms once, two gates at once on 2 CPUs) passes that on.

    The user timeout's clamp is an absolute deadline, but not on the
    ledger's axis: it counts from the run that took the write timer's stamp
    (:func:`_takes_the_stamp`), and a late run there moves the deadline by as
    much (CI, 2026-12-05: the tail loss probe and the first RTO run a jiffy
    past their buckets each, UT 12000 ms dead 1.9 ms past the window).
    """
    tick = 1 / ledger.hz
    pending: dict[str, int] = {}  # timer function -> jiffies its pending bucket is later than on an idle machine
    on_time_now: dict[str, int] = {}  # timer function -> the jiffy its last run would have run at
    last_run: dict[str, TimerRun] = {}
    last_delay: dict[str, int] = {}
    rearms: dict[str, list[int]] = {}  # timer function -> the delays of its runs' re-arms after t = 0, in order
    series_start: dict[str, int | None] = {}  # timer function -> the delay of the arming before the first of them
    stamp_behind = 0  # jiffies the run that took retrans_stamp ran late: the clamp's deadline moved with it
    found: list[float] = []
    events = sorted([(a.t_s, 0, a) for a in ledger.armings] + [(r.t_s, 1, r) for r in ledger.runs],
                    key=lambda e: (e[0], e[1]))
    for _, _, item in events:
        if isinstance(item, TimerRun):
            behind = pending.pop(item.function, 0) if item.arming is not None else 0
            found.append(max(0.0, (item.late_s or 0.0) + behind * tick))
            if item.arming is not None:
                on_time_now[item.function] = item.arming.bucket - behind
            last_run[item.function] = item
            continue
        run = last_run.get(item.function)
        previous = last_delay.get(item.function)
        last_delay[item.function] = item.delay
        if ledger.zero_jiffy is not None and _call_after_t0(item) and item.delay == idle_jiffies:
            idle_bucket = runs_at_jiffy(min(item.now, ledger.zero_jiffy), item.delay, ledger.hz)
            pending[item.function] = max(0, item.bucket - idle_bucket)
            continue
        if not item.by_run or item.t_s <= 0 or run is None or item.function not in on_time_now:
            pending[item.function] = 0  # before t = 0 the model's axis already holds the lateness (t = 0 is a reply)
            continue
        moved = run.now - on_time_now[item.function]  # jiffies the run itself ran late
        series = rearms.setdefault(item.function, [])
        series_start.setdefault(item.function, previous)
        series.append(item.delay)
        if item.function == WRITE_TIMER and _takes_the_stamp(series, series_start[item.function]):
            stamp_behind = moved
        if item.function == KEEPALIVE_TIMER:
            relative = item.delay == intvl_jiffies
        else:  # a retransmission re-arm shorter than the one before is the user timeout's clamp: an absolute deadline
            relative = previous is None or item.delay >= previous
        if relative:
            idle_bucket = runs_at_jiffy(item.now - moved, item.delay, ledger.hz)
        else:  # on an idle machine: armed `moved` sooner, for a deadline `stamp_behind` sooner
            behind = stamp_behind if item.function == WRITE_TIMER else 0
            idle_bucket = runs_at_jiffy(item.now - moved, item.delay + moved - behind, ledger.hz)
        pending[item.function] = item.bucket - idle_bucket
    return found


def _takes_the_stamp(series: list[int], start: int | None) -> bool:
    """Whether the run that made the last of ``series`` (the write timer's re-arms after t = 0) took the stamp the
    user timeout's clamp counts from; ``start``: the arming before the first of them.

    The persist timer: its first run sets ``icsk_probes_tstamp`` and re-arms
    for the doubled base.  The retransmission timer: ``retrans_stamp`` is the
    first retransmission, in the run after the tail loss probe's, whose
    re-arm restarts the same RTO (one jiffy more where a tick fell between,
    :func:`base_candidates`); with the link down that re-arm is 1 jiffy
    (:func:`_allowed_rearms`) and the stamp is the send, t = 0, which no run
    took.
    """
    if series[0] == 1:
        return False
    restarted = start is None or series[0] <= start + 1
    return (len(series) == 1 and not restarted) or (len(series) == 2 and restarted)


def shift_at(ledger: Ledger, t_s: float, shifts: list[float]) -> float:
    """The lateness carried by something the kernel did at ``t_s`` in one of its runs (0 where no run explains it)."""
    index = ledger.run_at(t_s)
    return 0.0 if index is None else shifts[index]


def death_run_shift(ledger: Ledger, shifts: list[float]) -> float:
    """The lateness the run that killed the socket carried (0 without a death in the ledger)."""
    if ledger.death is None:
        return 0.0
    index = ledger.run_at(ledger.death.t_s, slack_s=1.0)
    return 0.0 if index is None else shifts[index]


def on_time(ledger: Ledger, shifts: list[float]) -> Ledger:
    """The ledger as an idle machine would have written it: every run and the death moved back by its lateness."""
    runs = tuple(replace(r, t_s=round(r.t_s - shifts[i], 6), late_s=0.0 if r.late_s is not None else None)
                 for i, r in enumerate(ledger.runs))
    death = ledger.death
    if death is not None:
        death = replace(death, t_s=round(death.t_s - death_run_shift(ledger, shifts), 6))
    return replace(ledger, runs=runs, death=death)


def wire_on_time(wire: WireEvidence, ledger: Ledger, shifts: list[float]) -> WireEvidence:
    """The tested side's frames moved back by the lateness of the run that sent each.

    The peer's frames are left alone, except a RST within a run's moments
    (:meth:`Ledger.run_at`): the answer to the probe that run sent (a
    middlebox's ``reject``, a rebooted peer) comes as late as the probe.
    """
    def back(t: float) -> float:
        return round(t - shift_at(ledger, t, shifts), 6)

    probes = [back(t) for t in wire.probes_s]
    return replace(
        wire, probes_s=probes, spacing_s=[round(b - a, 6) for a, b in zip(probes, probes[1:], strict=False)],
        first_probe_s=None if wire.first_probe_s is None else back(wire.first_probe_s),
        rst_s=None if wire.rst_s is None else back(wire.rst_s),
        peer_rst_s=None if wire.peer_rst_s is None else back(wire.peer_rst_s),
        retransmissions_s=[back(t) for t in wire.retransmissions_s],
        zero_window_probes_s=[back(t) for t in wire.zero_window_probes_s],
    )


def first_run_after(ledger: Ledger, function: str, after_s: float = 0.0) -> float | None:
    """When the first run of ``function`` after ``after_s`` began: the run a fault placed at t = 0 must precede."""
    return next((r.t_s for r in ledger.runs if r.function == function and r.t_s > after_s), None)


def lateness_sentence(ledger: Ledger, shifts: list[float]) -> str:
    """``machine late by X ms at run N (...)``: the worst run, and the lateness the death carried."""
    worst = max(range(len(ledger.runs)), key=lambda i: max(shifts[i], ledger.runs[i].late_s or 0.0), default=None)
    if worst is None:
        return "no timer run measured"
    run = ledger.runs[worst]
    own = run.late_s or 0.0
    text = (f"machine late by {max(own, shifts[worst]) * 1000:.1f} ms at run {worst + 1} ({run.function} at "
            f"{run.t_s:.3f} s, jiffy {run.now}")
    if run.arming is not None:
        text += f", due at jiffy {run.arming.bucket}"
    if shifts[worst] > own + 1e-6:
        text += f"; {own * 1000:.1f} ms its own, the rest carried from {_carried_from(ledger, run)}"
    text += ")"
    carried_by_death = death_run_shift(ledger, shifts)
    if carried_by_death:
        text += f"; the death carried {carried_by_death * 1000:.1f} ms of lateness"
    return text


def _call_after_t0(a: Arming) -> bool:
    """An arming a system call made after t = 0: an idle machine would have made it in t = 0's jiffy."""
    return not a.by_run and a.t_s > 0


def _carried_from(ledger: Ledger, run: TimerRun) -> str:
    """Where a run's carried lateness came from: its arming by a late system call, or the late runs before it."""
    a = run.arming
    if a is not None and ledger.zero_jiffy is not None and _call_after_t0(a):
        return (f"its arming by a system call at {a.t_s:.3f} s, {a.now - ledger.zero_jiffy} jiffies after t = 0's jiffy "
                "(an idle machine makes it at once)")
    return "the late runs before it"


__all__ = ["RULE_SHIFT_JIFFIES", "WriteTimerRule", "base_candidates", "carried", "death_run_shift", "expected_write_rearms",
           "first_run_after", "lateness_sentence", "on_time", "possible_buckets", "rule_failures", "shift_at",
           "wire_on_time", "write_timer_failures", "write_timer_rule"]
