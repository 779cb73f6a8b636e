"""A scenario's result: one frozen record, built once from the measurement and the single prediction.

The failures are computed when the record is built (:func:`netkit.evidence.verdict.judge`),
so nothing can add to them later and judging twice gives the same answer.
``to_dict`` is the machine-readable form (the CLI's ``--json``); its keys are
versioned by ``schema`` and pinned by a test.  The text forms are
:mod:`netkit.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..enums import CountSource, Verdict
from ..evidence.events import Event
from ..evidence.pcap import write_pcap
from ..evidence.timecheck import Failure
from ..evidence.verdict import judge
from ..evidence.wire import WireEvidence
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from ..model.prediction import DeathPrediction
from .spec import Scenario

SCHEMA = "netkit.scenario-result/1"  # bump when a key of to_dict() changes meaning or goes away


def count_of(source: str, probes: int | None, retransmits: int | None, counters: Mapping[str, int]) -> int | None:
    """The figure a prediction's ``count_source`` names, from the kernel's figures at death."""
    kind = CountSource(source)
    if kind is CountSource.PROBES:
        return probes
    if kind is CountSource.RETRANSMITS:
        return retransmits
    return counters.get(kind.counter or "")


@dataclass(frozen=True)
class Progress:
    """A live sample while waiting for the death (for the demo's timeline)."""

    elapsed_s: float  # on the prediction's clock (since the last segment received, or the send)
    count: int  # probes (tcpi_probes) or retransmissions (tcpi_retransmits) so far
    expected_s: float


@dataclass(frozen=True)
class ScenarioResult:
    """What happened, against what the kernel's rule said, and the verdict. Immutable."""

    scenario: Scenario
    kernel: KernelInfo
    prediction: DeathPrediction
    measured_s: float | None = None
    error: str | None = None
    probes: int | None = None  # tcpi_probes at death
    retransmits: int | None = None  # tcpi_retransmits at death
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
    failures: tuple[Failure, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeline", tuple(self.timeline))
        object.__setattr__(self, "kept_namespaces", tuple(self.kept_namespaces))
        object.__setattr__(self, "failures", judge(self))  # once, at construction: the record is the verdict

    # -- what the judging reads ------------------------------------------------

    @property
    def state(self) -> str:
        return self.scenario.state

    @property
    def keepalive(self) -> KeepaliveSettings:
        return self.scenario.keepalive

    @property
    def count(self) -> int | None:
        """The figure the prediction's ``count_source`` names."""
        return count_of(self.prediction.count_source, self.probes, self.retransmits, self.counters)

    @property
    def keepalive_counter(self) -> int | None:
        """Keepalive probes the tested namespace sent after the fault (TcpExt TCPKeepAlive)."""
        return self.counters.get("TCPKeepAlive")

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
        from ..report.json import result_dict

        return result_dict(self)

    def to_json(self) -> str:
        from ..report.json import to_json

        return to_json(self)

    def wire_summary(self) -> str:
        from ..report.text import wire_summary

        return wire_summary(self)

    def explain(self) -> str:
        """The failure message for a person reading a CI log at 3 a.m."""
        from ..report.text import explain

        return explain(self)
