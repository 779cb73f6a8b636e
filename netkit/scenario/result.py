"""A scenario's result: one frozen record, built once from the measurement and the single prediction.

Every judged fact is computed when the record is built and stored in it:
the death time judged and whose clock it is (:func:`netkit.evidence.death.judged_death`),
the count the prediction names (:func:`netkit.evidence.death.count_of`),
where the death fell against the windows (:func:`netkit.evidence.death.check_death`),
whether it missed only by lateness, and the failures
(:func:`netkit.evidence.verdict.judge`).  Nothing can add to them later,
judging twice gives the same answer, and every report reads these fields
instead of deriving them again.  ``to_dict`` is the machine-readable form
(the CLI's ``--json``, :mod:`netkit.report.json`); its keys are versioned by
``schema`` and pinned by a test.  The text forms are :mod:`netkit.report.text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..enums import CountSource, DeathSource, Timing, Verdict
from ..evidence.death import DeathCheck, count_of, fits, judged_death
from ..evidence.death import late_only as misses_only_by_lateness
from ..evidence.events import Event
from ..evidence.ledger import Ledger
from ..evidence.ledger_check import (
    carried,
    death_run_shift,
    lateness_sentence,
    on_time,
    rule_failures,
    wire_on_time,
    write_timer_failures,
    write_timer_rule,
)
from ..evidence.middlebox import ROUTER_LOOKED_LATE, MiddleboxEvidence, judge_middlebox
from ..evidence.pcap import write_pcap
from ..evidence.timecheck import Failure, check_time, windows_text
from ..evidence.verdict import KEEPALIVE_BEFORE_SEND, death_check, death_of, judge
from ..evidence.wire import WireEvidence
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from ..model.prediction import DeathPrediction
from ..report import json as json_report
from ..report import text as text_report
from ..report.json import SCHEMA
from .spec import Scenario


@dataclass(frozen=True)
class ConnectionDeath:
    """One connection of a many-connection scenario, as measured at its death (``measured_s`` None: it did not).

    ``measured_s`` is what the first connection's is: ``tcpi_last_ack_recv``
    read when the observer woke, so it includes the observer's lateness.
    ``wire_rst_s`` is the kernel's own moment: the tap's timestamp of the RST
    the tested side sent at death, since the same connection's last segment
    received (None where the fault hides the wire).
    """

    index: int  # 0 is the first connection, the one measured in detail
    measured_s: float | None
    error: str | None
    count: int | None  # the figure the prediction's count_source names (tcpi_probes for idle)
    fault_at_s: float | None = None  # when the fault hit, since this connection's last segment received
    wire_rst_s: float | None = None
    wire_probes: int | None = None  # unanswered probes on the wire (None: not visible)

    @property
    def death_s(self) -> float | None:
        """The time judged: the kernel's RST on the wire where seen, else the observer's reading (as for one connection)."""
        return judged_death(self.wire_rst_s, self.measured_s)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "measured_s": self.measured_s, "error": self.error, "count": self.count,
                "fault_at_s": self.fault_at_s, "wire_rst_s": self.wire_rst_s, "wire_probes": self.wire_probes}


MAX_LISTED = 10  # connections named in one failure sentence


def _listed(items: list[str]) -> str:
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def judge_connections(
    connections: tuple[ConnectionDeath, ...], prediction: DeathPrediction, fault_deadline_s: float | None,
) -> tuple[Failure, ...]:
    """Every connection of a many-connection scenario against the one prediction: which failed, and how many.

    One failure per kind (time, count, error, fault too late), each naming
    how many of the connections and which; empty when every connection died
    inside its window with the right count and error.
    """
    if not connections:
        return ()
    p, total = prediction, len(connections)
    windows = [w for w, _ in p.outcomes()]
    counts = p.counts()
    text = windows_text(windows, [n for _, n in p.outcomes()])
    found: list[Failure] = []
    alive = [c for c in connections if c.death_s is None]
    if alive:
        found.append(Failure("connections: death", f"every connection dead within {text}",
                             f"{len(alive)} of {total} alive", message=(
            f"{len(alive)} of {total} connections did not die within {p.window_s[1]:.3f} s (+ grace): "
            + _listed([f"#{c.index}" for c in alive]))))
    outside: list[tuple[ConnectionDeath, Failure]] = []
    for c in connections:
        miss = None if c.death_s is None else check_time(f"connection #{c.index}'s death", windows, c.death_s)
        if miss:
            outside.append((c, miss))
    if outside:
        early = [c for c, f in outside if f.early]
        shown = [f"#{c.index} at {c.death_s:.3f} s" + (" (EARLY)" if f.early else "")
                 + (" (the kernel's RST on the wire)" if c.wire_rst_s is not None else "")
                 for c, f in sorted(outside, key=lambda cf: -(cf[0].death_s or 0))]
        found.append(Failure("connections: death", f"every connection dead within {text}",
                             f"{len(outside)} of {total} outside", message=(
            f"{len(outside)} of {total} connections died outside {text}"
            + (f" ({len(early)} EARLY)" if early else "") + ": " + _listed(shown)), early=bool(early)))
    missed = {c.index for c, _ in outside}  # the rest died inside a window: its count must be that window's
    wrong_count = [c for c in connections if c.death_s is not None and (
        c.count not in counts or (c.index not in missed and not fits(p.outcomes(), c.death_s, c.count)))]
    if wrong_count:
        expected = " or ".join(map(str, counts))
        found.append(Failure(f"connections: {p.count_source}", expected, f"{len(wrong_count)} of {total} wrong",
                             message=(f"{len(wrong_count)} of {total} connections died with {p.count_source} other "
                                      f"than {expected}" + (f" ({text})" if p.alternative_window_s else "") + ": "
                                      + _listed([f"#{c.index} {c.count} at {c.death_s:.3f} s"
                                                 for c in wrong_count if c.death_s is not None]))))
    wrong_error = [c for c in connections if c.death_s is not None and c.error != p.expected_error]
    if wrong_error:
        found.append(Failure("connections: error", str(p.expected_error), f"{len(wrong_error)} of {total} wrong",
                             message=(f"{len(wrong_error)} of {total} connections died with an error other than "
                                      f"{p.expected_error}: " + _listed([f"#{c.index} {c.error}" for c in wrong_error]))))
    if fault_deadline_s is not None:
        late = [c for c in connections if c.fault_at_s is not None and c.fault_at_s > fault_deadline_s]
        if late:
            found.append(Failure("connections: the fault", f"within {fault_deadline_s:.3f} s",
                                 f"{len(late)} of {total} late", message=(
                f"the fault hit {len(late)} of {total} connections more than {fault_deadline_s:.3f} s after their "
                "last segment received, too close to the next timer run for the rule to apply (machine overloaded?): "
                + _listed([f"#{c.index} at {c.fault_at_s:.3f} s" for c in late if c.fault_at_s is not None]))))
    return tuple(found)


@dataclass(frozen=True)
class Progress:
    """A live sample while waiting for the death (for the demo's timeline)."""

    elapsed_s: float  # on the prediction's clock (since the last segment received, or the send)
    count: int  # probes (tcpi_probes) or retransmissions (tcpi_retransmits) so far
    expected_s: float


@dataclass(frozen=True)
class ScenarioResult:
    """What happened, against what the kernel's rule said, and the verdict. Immutable.

    The fields after ``failures`` are not given: they are judged once, at
    construction, from the measurement and the prediction (``death_s`` and
    ``death_source``, ``count``, ``death_check``, ``late_only``).
    """

    scenario: Scenario
    kernel: KernelInfo
    prediction: DeathPrediction
    measured_s: float | None = None
    error: str | None = None
    probes: int | None = None  # tcpi_probes at death
    retransmits: int | None = None  # tcpi_retransmits at death
    backoff_max: int | None = None  # the highest tcpi_backoff sampled between the fault and the death
    counters: Mapping[str, int] = field(default_factory=dict)  # TcpExt deltas, fault to death, tested namespace
    peer_error: str | None = None  # the peer's socket error, when the model says it dies too
    peer_lag_s: float | None = None  # the peer's death minus the tested side's (monotonic clock)
    fault_at_s: float | None = None  # when the fault hit, since the last segment received
    fault_deadline_s: float | None = None  # it had to hit before this, for the rule to apply
    timeline: tuple[Event, ...] = ()
    lab: str = ""
    kept_namespaces: tuple[str, ...] = ()  # under /run/netns, if kept
    wire: WireEvidence | None = None  # what the tested veth showed (None: no capture was made)
    pcap: str | None = None  # where the capture was written (always, for a failed scenario)
    pcap_data: bytes = field(default=b"", repr=False, compare=False)  # the capture as a pcap file
    connections: tuple[ConnectionDeath, ...] = ()  # with Scenario.connections > 1: every connection, the first too
    middlebox: MiddleboxEvidence | None = None  # the routed topology: the router's conntrack entry and both ends
    ledger: Ledger | None = None  # the tested socket's timers as the kernel's tracepoints told them (evidence: trace)
    evidence_note: str = ""  # why there is no ledger (evidence: observer), e.g. "tracefs is not mounted ..."
    lateness_removed: bool = field(default=False, repr=False)  # this record is the on-time twin (machine_late's)
    failures: tuple[Failure, ...] = field(init=False)
    death_s: float | None = field(init=False)  # the death time judged: the kernel's on the wire where seen, else measured_s
    death_source: DeathSource | None = field(init=False)  # whose clock death_s is (None: no death)
    count: int | None = field(init=False)  # the figure the prediction's count_source names
    death_check: DeathCheck = field(init=False)  # where death_s fell against the outcomes' windows
    late_only: bool = field(init=False)  # missed only by dying after every window, with the right error and count
    rule_failures: tuple[Failure, ...] = field(init=False)  # the ledger's armings against the rule, to the jiffy
    machine_late: str | None = field(init=False)  # failed as measured, passes with the measured lateness taken out

    def __post_init__(self) -> None:
        def store(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        store("timeline", tuple(self.timeline))
        store("kept_namespaces", tuple(self.kept_namespaces))
        store("connections", tuple(self.connections))
        p = self.prediction
        death_s, source = death_of(self)
        count = count_of(p.count_source, self.probes, self.retransmits, self.counters)
        store("death_s", death_s)
        store("death_source", source)
        store("count", count)
        check = death_check(p, death_s, source)
        store("death_check", check)
        store("late_only", misses_only_by_lateness(check, p.outcomes(), count, self.error, p.expected_error))
        failures = judge(self) + judge_connections(self.connections, p, self.fault_deadline_s)
        failures += judge_middlebox(self.middlebox, p, self.kernel.jiffy_s)
        rules: tuple[Failure, ...] = ()
        if self.ledger is not None and not self.lateness_removed:
            refused = p.count_source == CountSource.KEEPALIVES  # a local drop: probes refused, re-armed HZ/2
            keepalive_rule = p.schedule is not None and (p.expected_error == "ETIMEDOUT" or refused)
            schedule = p.schedule if keepalive_rule else None
            rules = tuple(rule_failures(self.ledger, None if schedule is None else schedule.intvl, self.probes,
                                        None if schedule is None else self.keepalive.idle, refused))
            rto_jiffies = None if p.rto_s is None else round(p.rto_s * self.kernel.hz)
            rules += tuple(write_timer_failures(self.ledger, write_timer_rule(
                self.state, self.scenario.fault_rule.data_path, self.keepalive.user_timeout_ms, self.scenario.retries2,
                rto_jiffies, self.scenario.rto_max_ms)))
        store("rule_failures", rules)
        store("failures", rules + failures)  # once, at construction: the record is the verdict
        store("machine_late", self._machine_late())

    def _machine_late(self) -> str | None:
        """Why a failing run is the machine's lateness and not the kernel's (None: it is not, or nothing failed).

        The run's twin with every measured time moved back by the lateness
        its timer run carried (:func:`netkit.evidence.ledger_check.on_time`)
        is judged again: if it passes, the kernel kept the rule and only the
        machine ran it late.  A rule mismatch or an early death never is.
        """
        ledger = self.ledger
        if ledger is None or self.lateness_removed or not self.failures or self.rule_failures:
            return None
        missed = {f.rule: f for f in self.failures}
        if KEEPALIVE_BEFORE_SEND in missed:  # the extra probe explains an early death and its count
            return (f"keepalive probes left between the fault and the send ({missed[KEEPALIVE_BEFORE_SEND].measured}): "
                    "the machine was late sending")
        if ROUTER_LOOKED_LATE in missed:
            return (f"the router's entry was looked up {missed[ROUTER_LOOKED_LATE].measured} after the handshake, "
                    "past its timeout: the machine was late looking")
        if "the fault" in missed:
            # The precondition failed: the run did not test what its window was drawn for, so none of its
            # failures, an early death included, is the kernel's.  Early is this fault's own effect where t = 0
            # is the last segment received before the fault: landing after the answered probes moves t = 0
            # past them, while the user timeout still counts from the first unanswered one (a zero-window
            # cell at 5x overload died at 3.00-3.04 s against 3.208 s, its fault 0.5-1.2 s late).
            return (f"the fault landed at {self.fault_at_s:.3f} s, after the timer run at {self.fault_deadline_s:.3f} s "
                    "it had to precede: the machine was late placing it")
        if any(f.early or f.rule in ("error", "peer error") for f in self.failures):
            return None  # with the fault in time, an early death or another error is the kernel's
        schedule = self.prediction.schedule
        shifts = carried(ledger, None if schedule is None else round(schedule.intvl * ledger.hz),
                         None if schedule is None else round(self.keepalive.idle * ledger.hz))
        shift = death_run_shift(ledger, shifts)
        twin = replace(self, ledger=on_time(ledger, shifts), lateness_removed=True,
                       wire=None if self.wire is None else wire_on_time(self.wire, ledger, shifts),
                       measured_s=None if self.measured_s is None else round(self.measured_s - shift, 6))
        if twin.failures:
            return None
        return lateness_sentence(ledger, shifts)

    # -- what the judging reads ------------------------------------------------

    @property
    def state(self) -> str:
        return self.scenario.state

    @property
    def keepalive(self) -> KeepaliveSettings:
        return self.scenario.keepalive

    @property
    def kernel_death_s(self) -> float | None:
        """The death as the kernel timestamped it (its CLOSE in the ledger, or the RST on the wire); None otherwise."""
        return self.death_s if self.death_source in (DeathSource.WIRE, DeathSource.TRACE) else None

    @property
    def observer_late_s(self) -> float | None:
        """How long after the kernel's death the observer read it: ``measured_s - kernel_death_s``.

        Both on the observer's axis: where the ledger moved t = 0 to the kernel's moment of the send
        (``Ledger.moved_s``), the kernel's death is that much later on the observer's.
        """
        kernel = self.kernel_death_s
        if kernel is None or self.measured_s is None:
            return None
        moved = self.ledger.moved_s if self.death_source == DeathSource.TRACE and self.ledger is not None else 0.0
        return round(self.measured_s - (kernel + moved), 6)

    @property
    def death_timing(self) -> Timing:
        """Inside a window, early, late, or none (no death): the stored check's."""
        return self.death_check.timing

    @property
    def late_by_s(self) -> float | None:
        """How far past the latest window's end the judged death fell (late deaths only)."""
        return self.death_check.late_by_s

    @property
    def connections_passed(self) -> int:
        """Connections that died inside the window with the right count and error (many-connection scenarios)."""
        p = self.prediction
        return sum(1 for c in self.connections if c.death_s is not None and fits(p.outcomes(), c.death_s, c.count)
                   and c.error == p.expected_error)

    @property
    def keepalive_counter(self) -> int | None:
        """Keepalive probes the tested namespace sent after the fault (TcpExt TCPKeepAlive)."""
        return self.counters.get("TCPKeepAlive")

    @property
    def evidence(self) -> str:
        """``trace`` where the timer ledger judged the run, ``observer`` where it could not (``evidence_note``: why)."""
        return "trace" if self.ledger is not None else "observer"

    @property
    def verdict(self) -> Verdict:
        return Verdict.FAIL if self.failures else Verdict.PASS

    def judge(self) -> tuple[Failure, ...]:
        """The failures (computed when the record was built; calling this again changes nothing)."""
        return self.failures

    # -- derived records ------------------------------------------------------

    def with_pcap(self, path: str) -> ScenarioResult:
        """Write the capture to ``path`` (classic pcap); a record that names it."""
        return replace(self, pcap=write_pcap(path, self.pcap_data))

    def write_pcap(self, path: str) -> str:
        """Write the capture to ``path`` and return the path (this record is unchanged: see ``with_pcap``)."""
        return write_pcap(path, self.pcap_data)

    # -- reports --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable verdict (the CLI's ``--json``), schema :data:`SCHEMA`."""
        return json_report.result_dict(self)

    def to_json(self) -> str:
        return json_report.to_json(self)

    def wire_summary(self) -> str:
        return text_report.wire_summary(self)

    def explain(self) -> str:
        """The failure message for a person reading a CI log at 3 a.m."""
        return text_report.explain(self)


__all__ = ["SCHEMA", "ConnectionDeath", "Progress", "ScenarioResult", "judge_connections"]
