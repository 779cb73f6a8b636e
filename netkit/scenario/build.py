"""From what a procedure observed to the one frozen result: the wire evidence, the merged timeline, the record.

Every procedure ends here, the same way: :func:`wire_evidence` reads its
capture (with the procedure's own :class:`WireView`: what t = 0 is on the
wire and which segments it watches), :func:`result_from` merges the wire's
events into the procedure's timeline and builds the :class:`ScenarioResult`
once, complete; it judges itself at construction.  Neither value is changed
after it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..enums import Clock, State
from ..evidence.death import count_of
from ..evidence.events import SAMPLED, WIRE, Event
from ..evidence.frames import Frame, parse_frame
from ..evidence.ledger import Ledger
from ..evidence.middlebox import MiddleboxEvidence
from ..evidence.wire import WireEvidence, analyse
from ..kernel import KernelInfo
from ..lab.capture import Capture
from ..model.prediction import DeathPrediction
from .observe import Death
from .result import ConnectionDeath, ScenarioResult
from .spec import Scenario

Address = tuple[str, int]
WIRE_COUNTERS = ("TCPKeepAlive", "TCPWinProbe", "TCPAbortOnTimeout")  # the kernel's counts quoted beside the wire's


@dataclass(frozen=True)
class Observed:
    """Everything the run measured: the kernel's figures at death, the counters, the procedure's own events."""

    scenario: Scenario
    kernel: KernelInfo
    prediction: DeathPrediction
    death: Death
    counters: dict[str, int]
    events: tuple[Event, ...]  # the procedure's timeline, before the wire's events are merged in
    lab: str
    fault_at_s: float | None = None
    fault_deadline_s: float | None = None
    connections: tuple[ConnectionDeath, ...] = ()  # many connections: every one's death (the first's too)

    @property
    def count(self) -> int | None:
        """The figure the prediction's ``count_source`` names."""
        d = self.death
        return count_of(self.prediction.count_source, d.probes, d.retransmits, self.counters)


@dataclass(frozen=True)
class WireView:
    """How a procedure reads its capture, and the words of the wire's note.

    ``analyse`` turns the captured frames into the evidence (t = 0 where the
    procedure's clock starts) and says how many of the watched segments it
    saw; ``kernel`` holds the kernel's own counts of the same segments, the
    evidence where the wire is blind.
    """

    analyse: Callable[[Sequence[Frame]], tuple[WireEvidence, int]]
    kernel: dict[str, int | None]
    count: int | None  # the kernel's figure for the prediction's count_source, quoted where the wire is blind
    watched: str  # what the wire could not show, plural: "probes", "SYNs"
    each: str  # one of them, as the visible note says: "probe after the fault", "SYN"
    captured: str = ""  # after "N captured": " after the fault"
    counted: str = "counted"  # what the kernel did with them: "counted", "retransmitted"


def wire_evidence(
    scenario: Scenario, capture: Capture | None, capture_error: str | None, view: WireView,
) -> tuple[WireEvidence, bytes]:
    """What the tested veth showed (and the capture as pcap bytes); where the fault blinds it, why."""
    if capture is None:
        return WireEvidence(visible=False, note=capture_error or "no capture", error=capture_error,
                            kernel=view.kernel), b""
    analysed, seen = view.analyse(capture.frames)
    blind = scenario.fault_info.wire_blind or capture.error
    count = view.count
    if blind:
        note = (f"the wire cannot show the {view.watched}: {blind} ({seen} captured{view.captured}, "
                f"the kernel {view.counted} {count if count is not None else '?'})")
    else:
        note = f"every {view.each} passed the tested veth's tap"
    wire = replace(analysed, visible=not blind, note=note, interface=capture.label, frames=len(capture.frames),
                   drops=capture.drops, error=capture.error, kernel=view.kernel)
    return wire, capture.pcap()


def established_view(o: Observed, addresses: tuple[Address, Address], fault_ns: int, sent_ns: int | None) -> WireView:
    """The established states on the wire: t = 0 is the last segment received before the fault (or the send)."""
    d = o.death
    kernel: dict[str, int | None] = {"tcpi_probes": d.probes, "tcpi_retransmits": d.retransmits}
    kernel.update({f"TcpExt.{name}": o.counters.get(name) for name in WIRE_COUNTERS})

    def read(frames: Sequence[Frame]) -> tuple[WireEvidence, int]:
        wire = analyse(frames, *addresses, fault_ns, o.prediction.measured_from, sent_ns)
        return wire, len(wire.probes_s) + len(wire.retransmissions_s) + len(wire.zero_window_probes_s)

    idle = o.scenario.state == State.IDLE
    return WireView(read, kernel, o.count, "probes" if idle else "retransmissions and probes",
                    f"{'probe' if idle else 'segment'} after the fault", " after the fault")


def result_from(
    o: Observed, wire: WireEvidence, pcap_data: bytes, ledger: Ledger | None = None, evidence_note: str = "",
    middlebox: MiddleboxEvidence | None = None,
) -> ScenarioResult:
    """The record, built once and complete (it judges itself): the procedure's timeline with the wire's merged in."""
    d = o.death
    timeline = merge_timeline(o.events, wire, o.prediction) if wire.visible else o.events
    return ScenarioResult(
        o.scenario, o.kernel, o.prediction, measured_s=d.measured_s, error=d.error, probes=d.probes,
        retransmits=d.retransmits, backoff_max=d.backoff_max, counters=o.counters, peer_error=d.peer_error,
        peer_lag_s=d.peer_lag_s,
        fault_at_s=o.fault_at_s, fault_deadline_s=o.fault_deadline_s, timeline=timeline, lab=o.lab,
        wire=wire, pcap_data=pcap_data, connections=o.connections, middlebox=middlebox, ledger=ledger,
        evidence_note=evidence_note,
    )


def connections_on_the_wire(
    connections: tuple[ConnectionDeath, ...], first: WireEvidence, capture: Capture,
    other_addresses: Sequence[tuple[Address, Address]], fault_ns: int,
) -> tuple[ConnectionDeath, ...]:
    """Each connection's RST and unanswered probes from the tap: the kernel's moment of death, not the observer's.

    Every frame is parsed once and filed under its port pair (unique per
    connection inside one lab), so each connection's analysis reads only its
    own few frames: this runs while other labs' observers still wait for
    their deaths, and must not take the CPU from them.
    """
    by_ports: dict[tuple[int, int], list[Frame]] = {}
    for frame in capture.frames:
        seg = parse_frame(frame.data)
        if seg is not None:
            by_ports.setdefault((min(seg.sport, seg.dport), max(seg.sport, seg.dport)), []).append(frame)
    wires = [first]
    for tested, peer in other_addresses:
        frames = by_ports.get((min(tested[1], peer[1]), max(tested[1], peer[1])), [])
        wires.append(analyse(frames, tested, peer, fault_ns))
    return tuple(replace(c, wire_rst_s=w.rst_s, wire_probes=w.unanswered_probes) for c, w in zip(connections, wires, strict=True))


def merge_timeline(timeline: tuple[Event, ...], wire: WireEvidence, prediction: DeathPrediction) -> tuple[Event, ...]:
    """The procedure's events and the wire's, in time order; the wire's replace the sampled ones."""
    kept = [e for e in timeline if e.source != SAMPLED]
    if prediction.measured_from != Clock.SEND and any(e.t_s == 0 for e in wire.events) and kept and kept[0].t_s == 0:
        kept = kept[1:]  # the wire's own line for the last segment received says the same, timestamped
    merged = kept + [replace(e, source=WIRE) for e in wire.events]  # each keeps the kind the wire gave it
    return tuple(sorted(merged, key=lambda e: (e.t_s, e.source != WIRE)))  # at a tie the wire saw it first


__all__ = ["Observed", "WireView", "connections_on_the_wire", "established_view", "merge_timeline", "result_from",
           "wire_evidence"]
