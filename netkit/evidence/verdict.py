"""Judging a scenario's measurement against its one prediction: a tuple of failures, computed once.

Pure: it reads the record's fields and returns :class:`Failure` records
(every timing check through :func:`check_time`); the verdict is "pass" when
there are none.  The sentences are the ones netkit has always printed, so
logs and JSON read as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..enums import CountSource, DeathSource, State, Timing
from ..kernel import KernelInfo
from ..model.prediction import DeathPrediction
from ..model.wheel import wheel_granularity_s
from .death import DeathCheck, check_death, fits, judged_death
from .ledger import KEEPALIVE_TIMER, Ledger
from .timecheck import Failure, check_time, windows_text
from .wire import WireEvidence

# The observer's sample interval, defined here once: the run polls the dying
# socket(s) every OBSERVER_SAMPLE_S (scenario.observe imports it) and the
# reports say so.  The RST reaches a one-way peer within microseconds, but both
# deaths are seen by one Python thread polling both sockets; with dozens of
# scenarios sharing the machine, the observer itself can be late by a few ms.
# One sampling interval bounds it.
OBSERVER_SAMPLE_S = 0.02
PEER_SAME_MOMENT_S = OBSERVER_SAMPLE_S


class Measured(Protocol):
    """What the death's time is read from (:class:`netkit.ScenarioResult` is one)."""

    @property
    def prediction(self) -> DeathPrediction: ...
    @property
    def state(self) -> str: ...
    @property
    def measured_s(self) -> float | None: ...
    @property
    def wire(self) -> WireEvidence | None: ...
    @property
    def ledger(self) -> Ledger | None: ...


class Judged(Measured, Protocol):
    """What the judging reads of a result: the measurement and the facts judged once when it was built."""

    @property
    def kernel(self) -> KernelInfo: ...
    @property
    def death_s(self) -> float | None: ...
    @property
    def death_source(self) -> DeathSource | None: ...
    @property
    def death_check(self) -> DeathCheck: ...
    @property
    def count(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def probes(self) -> int | None: ...
    @property
    def backoff_max(self) -> int | None: ...
    @property
    def counters(self) -> Mapping[str, int]: ...
    @property
    def peer_error(self) -> str | None: ...
    @property
    def peer_lag_s(self) -> float | None: ...
    @property
    def fault_at_s(self) -> float | None: ...
    @property
    def fault_deadline_s(self) -> float | None: ...


def wire_death_s(r: Measured) -> float | None:
    """The death as the kernel timestamped it: the frame on the tested veth that marks it (None: no frame does).

    The observer reads ``tcpi_last_ack_recv`` when it wakes, so its figure
    (``measured_s``) carries its own wake-up lateness -- milliseconds on a
    loaded machine -- while the kernel's timers were on time.  Where a frame
    marks the death, its tap timestamp is the kernel's moment: a keepalive
    death sends the tested side's RST in the very timer run that sets the
    error (``tcp_keepalive_timer``: ``tcp_send_active_reset``, then
    ``tcp_write_err``), and a reset death is the peer's RST arriving.  A
    retransmission or persist timeout sends nothing (``tcp_write_err``
    alone), and some faults hide the wire: None, and only the observer's
    reading exists.  Which of the two is judged is :func:`netkit.evidence.death.judged_death`'s.
    """
    w = r.wire
    if w is None or not w.visible:
        return None
    if r.prediction.expected_error in ("ECONNRESET", "ECONNREFUSED"):  # the peer's RST ends it on arrival
        return w.peer_rst_s
    return w.rst_s if r.state == State.IDLE else None


def death_of(r: Measured) -> tuple[float | None, DeathSource | None]:
    """The judged death time and its source (:func:`judged_death`: trace, wire, observer; the observer's on the ledger's axis)."""
    ledger = r.ledger
    trace_s = None if ledger is None or ledger.death is None else ledger.death.t_s
    measured = r.measured_s
    if ledger is not None and measured is not None and ledger.moved_s:
        measured = round(measured - ledger.moved_s, 6)  # on the kernel's axis: its arming in the call, not our clock
    return judged_death(wire_death_s(r), measured, trace_s)


def death_check(p: DeathPrediction, death_s: float | None, source: DeathSource | None) -> DeathCheck:
    """The judged death against the prediction's outcomes, with the sentences a scenario's failure has always had."""
    seen_by = {DeathSource.WIRE: " (the kernel's RST on the wire)",
               DeathSource.TRACE: " (the kernel's CLOSE in its timer's run)"}.get(source, "") if source else ""
    return check_death(p.outcomes(), death_s, rule=p.rule,
                       early="died EARLY: {actual:.3f} s < window start {low:.3f} s" + seen_by,
                       late="died late: {actual:.3f} s, outside {windows}" + seen_by)


def judge(r: Judged) -> tuple[Failure, ...]:
    """Every way the measurement disagrees with the prediction (empty: pass).

    The death time judged is the record's (``death_s``: the kernel's own
    where the wire shows it, :func:`wire_death_s`): an observer woken late
    on a loaded machine does not fail a kernel whose timers were on time;
    its lateness is reported apart (``observer_late_s``).  An observer
    reading *before* the window is still a failure: nothing can see a death
    before it happens.
    """
    found: list[Failure | None] = [_fault_in_time(r), _no_keepalive_probe_before_the_send(r)]
    p = r.prediction
    if p.alive_until_s is not None:  # survival (netkit.model.middlebox): no death, the rest is the router's evidence
        found.append(_survived(r, p.alive_until_s))
        return tuple(f for f in found if f)
    judged_s = r.death_s
    if judged_s is None:  # judged_death: no death the observer saw is no death
        found.append(Failure("death", f"death within {windows_text([p.window_s])}", "no death",
                             message=f"the connection did not die within {p.window_s[1]:.3f} s (+ grace)"))
        return tuple(f for f in found if f)
    found.append(r.death_check.failure)
    if r.death_source in (DeathSource.WIRE, DeathSource.TRACE):
        observer = check_death(p.outcomes(), r.measured_s, rule=p.rule,
                               early="the observer saw the death EARLY: {actual:.3f} s < window start {low:.3f} s")
        found.append(observer.failure if observer.timing is Timing.EARLY else None)
    found.append(_count(r, judged_s))
    if r.error != p.expected_error:
        found.append(Failure("error", str(p.expected_error), str(r.error),
                             message=f"error {r.error}, expected {p.expected_error}"))
    found.append(_peer(r))
    found.append(_backoff(r))
    found.append(_zero_window_branch(r))
    found += judge_wire(r)
    return tuple(f for f in found if f)


def _backoff(r: Judged) -> Failure | None:
    """Where the rule fixes the timer's backoff (a local drop's resource probes: none), the sampled maximum must match it.

    Sampled while the socket lived: its death zeroes ``icsk_backoff``
    (``tcp_done_with_error`` -> ``tcp_write_queue_purge``), so a reading taken
    after it -- the kernel's packetdrill test asserts ``tcpi_backoff == 0``
    after the ETIMEDOUT -- cannot fail.
    """
    expected = r.prediction.expected_backoff
    if expected is None or r.backoff_max is None or r.backoff_max == expected:
        return None
    return Failure("tcpi_backoff", str(expected), str(r.backoff_max), message=(
        f"tcpi_backoff reached {r.backoff_max} while the connection lived, expected {expected}: the timer backed "
        "off, so the kernel took a transmit for sent (err <= 0), not for refused by the local qdisc"))


def _zero_window_branch(r: Judged) -> Failure | None:
    """A retracted window: the retransmissions were the zero-window branch's, which counts no TCPTimeouts.

    ``tcp_retransmit_timer`` increments TCPTimeouts only on its way to
    ``tcp_write_timeout``, after the zero-window branch has returned; one
    counted means a run found the peer's window open, and the rule judged
    (``tcp_rtx_probe0_timed_out``) was not the one that ran.
    """
    timeouts = r.counters.get("TCPTimeouts", 0)
    if r.state != State.RETRACTED_WINDOW or not timeouts:
        return None
    return Failure("TCPTimeouts", "0 (the zero-window branch counts none)", str(timeouts), message=(
        f"TcpExt TCPTimeouts counted {timeouts}: a retransmission timer run found the peer's window open, so "
        "tcp_write_timeout's rule ran, not the zero-window branch's"))


def _survived(r: Judged, alive_until_s: float) -> Failure | None:
    """A connection the rule says survives: any death, or an unanswered probe outstanding, fails."""
    if r.measured_s is not None or r.error not in (None, "none"):
        return Failure("death", f"alive through {alive_until_s:g} s", f"died at {r.measured_s} s, {r.error}",
                       message=f"the connection died at {r.measured_s} s with {r.error}; the rule says it lives "
                               f"through {alive_until_s:g} s")
    if r.probes:
        return Failure("tcpi_probes", "0", str(r.probes), message=(
            f"{r.probes} keepalive probes unanswered at the end of the watch: the flow was not kept alive"))
    p = r.prediction
    if p.count_source == CountSource.KEEPALIVES and (r.count or 0) < p.expected_count:
        return Failure(str(p.count_source), f">= {p.expected_count}", str(r.count), message=(
            f"{p.count_source} = {r.count} by the end of the watch, expected at least {p.expected_count} refused "
            "attempts (one every 500 ms): the keepalive timer did not keep retrying"))
    return None


KEEPALIVE_BEFORE_SEND = "the send"  # a precondition: a keepalive probe left between the fault and the send


def _no_keepalive_probe_before_the_send(r: Judged) -> Failure | None:
    """Unacked data: no keepalive probe may leave between the fault and the send, which is meant to follow it at once.

    With nothing queued, ``tcp_keepalive_timer`` probes once ``idle`` has
    passed, and such a probe changes what the rule starts from.  With no
    route its failed lookup adds one to ``icsk_probes_out``, which nothing
    resets before ``tcp_probe_timer`` compares it with ``tcp_retries2``: the
    death comes one probe early.  With the link down it starts the
    neighbour's resolution before the send, and the neighbour fails that much
    earlier.  Seen with two gates of 128 jobs each on 2 CPUs (the send 2.2 s
    after ``SO_KEEPALIVE``).  Once data is queued the keepalive timer never
    probes, so any ``TCPKeepAlive`` counted since the fault was such a probe.
    """
    if r.state != State.UNACKED:
        return None
    sent = r.counters.get("TCPKeepAlive", 0)
    if not sent:
        return None
    if r.ledger is not None and not any(run.function == KEEPALIVE_TIMER and run.t_s < 0 for run in r.ledger.runs):
        return None  # no keepalive run before the send: a probe with data queued is the kernel's, judged as such
    return Failure(KEEPALIVE_BEFORE_SEND, "no keepalive probe between the fault and the send",
                   f"TcpExt TCPKeepAlive {sent}", message=(
        f"{sent} keepalive probe(s) left between the fault and the send (TcpExt TCPKeepAlive): the rule starts "
        "from the send (a probe counts in icsk_probes_out, and with the link down starts the neighbour's "
        "resolution early), so it cannot apply to this run"))


def _fault_in_time(r: Judged) -> Failure | None:
    if r.fault_at_s is None or r.fault_deadline_s is None:
        return None
    if r.ledger is not None:  # the deadline is the timer run itself (scenario.run reads it from the ledger)
        late = ("the fault took until {actual:.3f} s after the last segment received, after the timer run at "
                "{high:.3f} s it had to precede (the ledger): the rule cannot apply to this run")
    else:
        late = ("the fault took until {actual:.3f} s after the last segment received, too close to "
                "the next timer run for the rule to apply (machine overloaded?)")
    return check_time("the fault", (0.0, r.fault_deadline_s), r.fault_at_s, late=late)


def _count(r: Judged, judged_s: float) -> Failure | None:
    p, count = r.prediction, r.count
    counts = p.counts()
    expected = " or ".join(map(str, counts))
    if count not in counts:
        return Failure(str(p.count_source), expected, str(count),
                       message=f"{p.count_source} = {count} at death, expected {expected}")
    if r.death_check.timing is Timing.INSIDE and not fits(p.outcomes(), judged_s, count):
        windows = windows_text([w for w, _ in p.outcomes()], [n for _, n in p.outcomes()])
        return Failure(str(p.count_source), windows, f"{count} at {judged_s:.3f} s",
                       message=f"{p.count_source} = {count} at {judged_s:.3f} s; expected {windows}")
    return None


def _peer(r: Judged) -> Failure | None:
    expected = r.prediction.peer_expected_error
    if not expected:
        return None
    if r.peer_error != expected:
        return Failure("peer error", expected, str(r.peer_error),
                       message=f"peer error {r.peer_error}, expected {expected} (it should die too)")
    same = ("peer died {actual} s apart from the tested side, expected the same moment "
            f"(within the observer's {PEER_SAME_MOMENT_S} s)")
    return check_time("the peer's death", (-PEER_SAME_MOMENT_S, PEER_SAME_MOMENT_S), r.peer_lag_s,
                      early=same, late=same, missing=same.replace("{actual}", "None"))


def judge_wire(r: Judged) -> list[Failure]:
    """Where the probes reach the tested veth: count, spacing, first probe and RST, from the wire.

    Tolerances are the model's (timer wheel, :func:`netkit.model.wheel_granularity_s`):
    consecutive probes are ``intvl`` apart, late by at most one
    granularity of an ``intvl`` timer; the first leaves ``max(idle,
    intvl)`` after the last segment received, late by at most the first
    run's granularity.  One jiffy either way covers the jiffy clock the
    timer counts on against the tap's nanoseconds.
    """
    w = r.wire
    if w is None or not w.visible or r.measured_s is None:
        return []
    if r.state == State.IDLE:
        problems = _idle_counts(r, w) + _idle_timing(r, w)
    elif State(r.state).handshake:
        problems = _handshake_wire(r, w)
    else:
        problems = _data_wire(r, w)
    return [Failure(f"wire: {p.rule}", p.expected, p.measured, p.evidence, f"wire: {p}") for p in problems]


def _idle_counts(r: Judged, w: WireEvidence) -> list[Failure]:
    counts = r.prediction.counts()
    expected = " or ".join(map(str, counts))
    problems = []
    if r.prediction.expected_error == "ECONNRESET":  # the peer has forgotten the connection: its RST answers
        if len(w.probes_s) not in counts:
            problems.append(Failure("probes", expected, str(len(w.probes_s)), message=(
                f"{len(w.probes_s)} keepalive probes after the last segment received, expected {expected}")))
        if w.peer_rst_s is None:
            problems.append(Failure("peer RST", "a RST", "none", message="no RST from the peer answered the probe"))
        if w.rst_s is not None:
            problems.append(Failure("tested RST", "none", f"{w.rst_s:.3f} s", message=(
                f"the tested side sent a RST at {w.rst_s:.3f} s; a reset connection sends none")))
        return problems
    if w.unanswered_probes not in counts or w.unanswered_probes != r.probes:
        problems.append(Failure("unanswered probes", expected, str(w.unanswered_probes), f"tcpi_probes {r.probes}",
                                message=(f"{w.unanswered_probes} unanswered keepalive probes, expected {expected} "
                                         f"(tcpi_probes {r.probes})")))
    if w.rst_s is None:
        problems.append(Failure("tested RST", "a RST", "none", message=(
            "no RST from the tested side: a keepalive death sends one (tcp_send_active_reset)")))
    return problems


def _idle_timing(r: Judged, w: WireEvidence) -> list[Failure]:
    """The probes' spacing and the first probe against the schedule the prediction was made from (none: no check)."""
    schedule = r.prediction.schedule
    if schedule is None:
        return []
    intvl = schedule.intvl
    jiffy, hz = r.kernel.jiffy_s, r.kernel.hz
    found: list[Failure | None] = []
    spacing = (intvl - jiffy, intvl + wheel_granularity_s(intvl, hz) + jiffy)
    for n, gap in enumerate(w.spacing_s, 1):
        apart = (f"probes {n} and {n + 1} are {{actual:.3f}} s apart, expected TCP_KEEPINTVL {intvl} s within "
                 "[{low:.3f}, {high:.3f}] s")
        found.append(check_time(f"probes {n} and {n + 1}", spacing, gap, rule="TCP_KEEPINTVL", early=apart, late=apart))
    first = (schedule.first_probe - jiffy, schedule.first_probe + schedule.max_lateness(1, hz) + 2 * jiffy)
    shown = "none" if w.first_probe_s is None else f"{w.first_probe_s:.3f} s"
    term = "idle" if r.prediction.last_segment == "idle" else "max(idle, intvl)"  # nothing answered before: idle
    sentence = (f"first probe at {shown} after the last segment received, expected {term} = "
                f"{schedule.first_probe} s within [{{low:.3f}}, {{high:.3f}}] s")
    found.append(check_time("the first probe", first, w.first_probe_s, rule=term,
                            early=sentence, late=sentence, missing=sentence))
    return [f for f in found if f]


def _handshake_wire(r: Judged, w: WireEvidence) -> list[Failure]:
    """The SYN (or SYN-ACK) retransmissions on the wire are the ones the kernel counted; the tested side sends no RST."""
    problems = _data_wire(r, w)
    if len(w.retransmissions_s) != r.count:
        what = "SYN-ACK" if r.state == State.SYN_RECV else "SYN"
        problems.append(Failure(f"{what} retransmissions", str(r.count), str(len(w.retransmissions_s)), message=(
            f"{len(w.retransmissions_s)} {what} retransmissions on the wire, the kernel counted {r.count} "
            f"({r.prediction.count_source})")))
    return problems


def _data_wire(r: Judged, w: WireEvidence) -> list[Failure]:
    problems = []
    if w.rst_s is not None:
        problems.append(Failure("tested RST", "none", f"{w.rst_s:.3f} s", message=(
            f"the tested side sent a RST at {w.rst_s:.3f} s; a retransmission or persist timeout "
            "sends none (tcp_write_err)")))
    if r.state == State.ZERO_WINDOW and len(w.zero_window_probes_s) != r.counters.get("TCPWinProbe"):
        problems.append(Failure("zero-window probes", str(r.counters.get("TCPWinProbe")),
                                str(len(w.zero_window_probes_s)), message=(
            f"{len(w.zero_window_probes_s)} zero-window probes on the wire, the kernel counted "
            f"{r.counters.get('TCPWinProbe')} (TcpExt TCPWinProbe)")))
    return problems


__all__ = ["Failure", "OBSERVER_SAMPLE_S", "PEER_SAME_MOMENT_S", "death_check", "death_of", "judge", "judge_wire",
           "wire_death_s"]
