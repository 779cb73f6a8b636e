"""The gate's data, typed: a run, a scenario entry, the document, and their parts (frozen dataclasses).

Every module of :mod:`netkit.gate` and :mod:`netkit.report` reads these
fields; :mod:`netkit.document.codec` is the one place that reads and writes
their JSON (field names are the JSON keys).  A run carries its judged facts
(``death_s``, ``death_source``, ``death_timing``, ``late_by_s``,
``late_only``, ``count``) and each event its ``kind``, as the run was judged
(:mod:`netkit.evidence.death`): nothing here or above re-derives them.  A key
this netkit does not model travels in ``extra``.

A run also carries its evidence (``trace``: the timer ledger judged it, the
ledger itself kept as :class:`netkit.evidence.ledger.Ledger`; ``observer``:
no ledger, ``evidence_note`` says why), the ledger's ``rule_failures`` and
``machine_late`` (it failed as measured, passes with the machine's measured
lateness taken out).  A scenario the gate retried for that keeps its first
runs in ``retried`` (:class:`RetryRecord`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..enums import DeathSource, EventKind, GateOutcome, Timing
from ..evidence.ledger import Ledger

GATE_SCHEMA = "netkit.gate/3"  # netkit/schemas/netkit.gate-3.schema.json; before the names were one convention: netkit-gate/3
# /1: the judged facts and event kinds were not stored; /2: no timer ledger (every run's evidence: observer),
# no inconclusive outcome, no retry; netkit-gate/3 is this document under its former name
BEFORE_INCONCLUSIVE = ("netkit-gate/1", "netkit-gate/2")
RENAMED = {"netkit-gate/3": GATE_SCHEMA}  # a former name -> the name of the same document now
READABLE_SCHEMAS = (*BEFORE_INCONCLUSIVE, *RENAMED, GATE_SCHEMA)
OLD_EVIDENCE_NOTE = "recorded before netkit kept a timer ledger"  # a run of schema netkit.scenario-result/1 or /2

SCENARIO_KEYS = ("id", "group", "state", "fault", "family", "outcome", "reason", "expected_s", "window_s",
                 "measured_s", "duration_s", "known", "runs")
TOP_KEYS = ("schema", "netkit", "kernel", "machine", "started", "ended", "wall_s", "options", "totals", "scenarios",
            "diff")
Window = tuple[float, float]
OMIT_NONE = {"omit_none": True}  # a key written only when it has a value (as the result JSON does)


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a run's timeline: when (seconds on the run's clock), what, whose evidence, and what kind."""

    t_s: float | None
    what: str = ""
    source: str | None = field(default=None, metadata=OMIT_NONE)  # "wire", "sampled", "" (the procedure's own)
    kind: EventKind = EventKind.OTHER
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WireRecord:
    """What the reports read of a run's wire evidence; the rest of it travels in ``extra``."""

    visible: bool = False
    note: str | None = None
    anchor: str | None = None
    rst_s: float | None = None  # the tested side's RST
    peer_rst_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MiddleboxRecord:
    """What the reports read of a routed run's router evidence; the rest travels in ``extra``."""

    lived_s: float | None = None  # how long the router kept the flow's entry
    alive_until_s: float | None = None  # a cell that must survive: until when (None: a death is predicted)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateRun:
    """One run of a scenario, as judged (its result JSON, schema netkit.scenario-result/3, plus ``explain``)."""

    schema: str | None = None
    kernel: str | None = None
    hz: int | None = None
    id: str | None = None
    family: str | None = None
    keepalive: Mapping[str, Any] = field(default_factory=dict)
    keepalive_via: str | None = None
    side: str | None = None
    fault: str | None = None
    state: str | None = None
    rule: str | None = None
    expected_s: float | None = None
    window_s: Window | None = None
    measured_s: float | None = None  # the observer's reading
    kernel_death_s: float | None = None  # the wire's RST
    observer_late_s: float | None = None
    error: str | None = None
    expected_error: str | None = None
    probes: int | None = None
    retransmits: int | None = None
    count_source: str | None = None
    expected_count: int | None = None
    alternative_window_s: Window | None = None
    alternative_count: int | None = None
    keepalive_counter: Any = None
    counters: Mapping[str, int] = field(default_factory=dict)
    measured_from: str | None = None
    retries2: int | None = None
    rto_max_ms: int | None = field(default=None, metadata=OMIT_NONE)  # the socket's maximum RTO, where set
    rto_max_via: str | None = field(default=None, metadata=OMIT_NONE)  # "socket" (TCP_RTO_MAX_MS) or "sysctl"
    rto_min_us: int | None = field(default=None, metadata=OMIT_NONE)  # the minimum RTO, where set
    rto_min_via: str | None = field(default=None, metadata=OMIT_NONE)  # "sysctl" (tcp_rto_min_us) or "route" (rto_min)
    expect_s: float | None = field(default=None, metadata=OMIT_NONE)  # a person's expected death, judged instead
    peer_error: str | None = None
    peer_expected_error: str | None = None
    peer_lag_s: float | None = None
    fault_at_s: float | None = None
    timeline: tuple[TimelineEntry, ...] = ()
    wire: WireRecord | None = None
    pcap: str | None = None
    verdict: str | None = None
    failures: tuple[str, ...] = ()
    kept_namespaces: tuple[str, ...] = ()
    connections: Mapping[str, Any] | None = field(default=None, metadata=OMIT_NONE)
    middlebox: MiddleboxRecord | None = field(default=None, metadata=OMIT_NONE)
    # the judged facts (netkit.evidence.death)
    death_s: float | None = None  # the judged death time
    death_source: DeathSource | None = None
    death_timing: Timing = Timing.NONE
    late_by_s: float | None = None
    late_only: bool = False
    count: int | None = None  # the figure count_source names
    # the timer ledger (netkit.evidence.ledger, netkit.scenario-result/3)
    rule_failures: tuple[str, ...] = ()  # the ledger's armings against the rule, to the jiffy
    evidence: str = "observer"  # "trace": judged with the timer ledger; "observer": without (evidence_note: why)
    evidence_note: str = ""
    machine_late: str | None = None  # failed as measured, passes once the machine's measured lateness is taken out
    ledger: Ledger | None = None
    explain: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def evidence_text(self) -> str:
        """``evidence: trace``, or ``evidence: observer (why)``: what every report shows beside a run's details."""
        note = f" ({self.evidence_note})" if self.evidence != "trace" and self.evidence_note else ""
        return f"evidence: {self.evidence}{note}"

    @property
    def outcomes(self) -> list[tuple[Window, int | None]]:
        """(window, count) as the prediction stated them: the nominal one, then the alternative (timer rounding)."""
        pairs = ((self.window_s, self.expected_count), (self.alternative_window_s, self.alternative_count))
        return [(window, count) for window, count in pairs if window is not None]

    @property
    def windows(self) -> list[Window]:
        """The nominal window, then the alternative one, where there is one."""
        return [window for window, _ in self.outcomes]


@dataclass(frozen=True)
class Measured:
    """The judged death times over a scenario's runs."""

    min: float
    median: float
    max: float


@dataclass(frozen=True)
class KnownRecord:
    reason: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class RetryRecord:
    """Why the gate ran a scenario again, and the runs it replaced (each ``machine_late``: not the kernel's failure)."""

    reason: str  # the first run's machine_late sentence
    runs: tuple[GateRun, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScenarioEntry:
    """One scenario of the gate: its one outcome, the prediction, the judged death times, and every run."""

    id: str
    group: str | None = None
    state: str | None = None
    fault: str | None = None
    family: str | None = None
    outcome: str = GateOutcome.FAIL  # a GateOutcome; any other word (a newer gate's) is kept as it is
    reason: str | None = None
    expected_s: float | None = None
    window_s: Window | None = None
    measured_s: Measured | None = None
    duration_s: float | None = None
    known: KnownRecord | None = None
    runs: tuple[GateRun, ...] = ()  # after a retry: the retry's runs in place of the machine-late ones
    retried: RetryRecord | None = field(default=None, metadata=OMIT_NONE)  # written only for a retried scenario
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def evidence_text(self) -> str:
        """``evidence: trace`` where every run was judged with the ledger, else the first other run's (with its note)."""
        return next((r.evidence_text for r in self.runs if r.evidence != "trace"), "evidence: trace") \
            if self.runs else "evidence: none (no run)"


@dataclass(frozen=True)
class KernelRecord:
    release: str | None = None
    version: str | None = None
    hz: int | None = None
    hz_source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MachineRecord:
    hostname: str | None = field(default=None, metadata=OMIT_NONE)
    cpus: int | None = None
    virtualization: str | None = None
    slow: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShardRecord:
    """``--shard K/N``: the K-th of N parts of the selection (:mod:`netkit.gate.shard` says which scenarios)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class GateOptions:
    """The gate's command-line options, as the document records them."""

    repeat: int | None = None
    only: tuple[str, ...] = ()
    matrix: str | None = None
    slow_machine: bool = False
    baseline: str | None = None
    known: str | None = None
    shard: ShardRecord | None = field(default=None, metadata=OMIT_NONE)  # an unsharded run's options do not say it
    extra: Mapping[str, Any] = field(default_factory=dict)

    def items(self) -> Iterator[tuple[str, Any]]:
        """(name, value) of each option, in order (the HTML header lists the ones given)."""
        for f in dataclasses.fields(self):
            if f.name != "extra":
                value = getattr(self, f.name)
                yield f.name, list(value) if isinstance(value, tuple) else value
        yield from self.extra.items()


@dataclass(frozen=True)
class GuestRecord:
    """Where a gate ran when ``netkit gate --kernel`` ran it (:mod:`netkit.kernels.guest` adds it)."""

    kernel: str | None = None
    release: str | None = None
    image: str | None = None
    hz: int | None = field(default=None, metadata=OMIT_NONE)
    accel: str | None = None  # "kvm", "tcg", "none" (the host)
    boot_s: float | None = None
    wall_s: float | None = None
    slow: bool = False
    exit_status: int | None = None
    jobs: int | None = field(default=None, metadata=OMIT_NONE)
    kvm_failure: str | None = field(default=None, metadata=OMIT_NONE)
    perturbation: str | None = field(default=None, metadata=OMIT_NONE)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateDocument:
    """The gate's whole result: what every report renders and what ``gate diff`` compares."""

    schema: str | None = GATE_SCHEMA  # a document read from an older schema is upgraded: it has every field now
    netkit: str | None = None
    kernel: KernelRecord = KernelRecord()
    machine: MachineRecord = MachineRecord()
    started: str | None = None
    ended: str | None = None
    wall_s: float | None = None
    options: GateOptions = GateOptions()
    totals: Mapping[str, int] = field(default_factory=dict)  # GateOutcome -> scenarios
    scenarios: tuple[ScenarioEntry, ...] = ()
    diff: Mapping[str, Any] | None = None  # with --baseline: netkit.gate.diff.GateDiff.to_dict()
    guest: GuestRecord | None = field(default=None, metadata=OMIT_NONE)
    extra: Mapping[str, Any] = field(default_factory=dict)


def totals_of(entries: Iterable[ScenarioEntry]) -> dict[str, int]:
    """A document's ``totals``: how many scenarios had each outcome (every GateOutcome named, 0 included)."""
    outcomes = [e.outcome for e in entries]
    return {name: sum(1 for o in outcomes if o == name) for name in GateOutcome}
