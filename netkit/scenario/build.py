"""From what was observed to the one frozen result: the wire evidence, the merged timeline, the record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..enums import Clock, State
from ..evidence.events import SAMPLED, WIRE, Event
from ..evidence.frames import Frame, parse_frame
from ..evidence.wire import WireEvidence, analyse
from ..kernel import KernelInfo
from ..lab.capture import Capture
from ..model.prediction import DeathPrediction
from .observe import Death
from .result import ConnectionDeath, ScenarioResult, count_of
from .spec import Scenario

Address = tuple[str, int]


@dataclass(frozen=True)
class Observed:
    """Everything the run measured, before the wire is read."""

    scenario: Scenario
    kernel: KernelInfo
    prediction: DeathPrediction
    death: Death
    counters: dict[str, int]
    first_event: str  # what t = 0 is, in the procedure's words
    fault_at_s: float | None
    fault_deadline_s: float | None
    fault_description: str
    lab: str
    connections: tuple[ConnectionDeath, ...] = ()  # many connections: every one's death (the first's too)

    def procedure_events(self) -> list[Event]:
        events = [Event(0.0, self.first_event)]
        if self.fault_at_s is not None:
            events.append(Event(self.fault_at_s, f"fault: {self.fault_description}"))
        return events + list(self.death.events)


def result_from(
    o: Observed, capture: Capture | None, capture_error: str | None, addresses: tuple[Address, Address],
    fault_ns: int, sent_ns: int | None, other_addresses: Sequence[tuple[Address, Address]] = (),
) -> ScenarioResult:
    """Read the wire, merge its events into the timeline, and build the record once (it judges itself)."""
    d = o.death
    timeline = tuple(o.procedure_events())
    wire, pcap_data = wire_evidence(o, capture, capture_error, addresses, fault_ns, sent_ns)
    connections = o.connections
    if wire.visible:
        timeline = merge_timeline(timeline, wire, o.prediction)
        if capture is not None and connections:
            connections = connections_on_the_wire(connections, wire, capture, other_addresses, fault_ns)
    return ScenarioResult(
        o.scenario, o.kernel, o.prediction, measured_s=d.measured_s, error=d.error, probes=d.probes,
        retransmits=d.retransmits, counters=o.counters, peer_error=d.peer_error, peer_lag_s=d.peer_lag_s,
        fault_at_s=o.fault_at_s, fault_deadline_s=o.fault_deadline_s, timeline=timeline, lab=o.lab,
        wire=wire, pcap_data=pcap_data, connections=connections,
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
    return tuple(replace(c, wire_rst_s=w.rst_s, wire_probes=w.unanswered_probes) for c, w in zip(connections, wires))


def wire_evidence(
    o: Observed, capture: Capture | None, capture_error: str | None, addresses: tuple[Address, Address],
    fault_ns: int, sent_ns: int | None,
) -> tuple[WireEvidence, bytes]:
    """What the tested veth showed (and the capture as pcap bytes); where the fault blinds it, why."""
    d = o.death
    kernel = {"tcpi_probes": d.probes, "tcpi_retransmits": d.retransmits}
    kernel.update({f"TcpExt.{name}": o.counters.get(name) for name in ("TCPKeepAlive", "TCPWinProbe", "TCPAbortOnTimeout")})
    if capture is None:
        return WireEvidence(visible=False, note=capture_error or "no capture", error=capture_error, kernel=kernel), b""
    wire = analyse(capture.frames, *addresses, fault_ns, o.prediction.measured_from, sent_ns)
    wire.interface, wire.drops, wire.error, wire.kernel = capture.label, capture.drops, capture.error, kernel
    blind = o.scenario.fault_info.wire_blind
    idle = o.scenario.state == State.IDLE
    if blind or capture.error:
        seen = len(wire.probes_s) + len(wire.retransmissions_s) + len(wire.zero_window_probes_s)
        count = count_of(o.prediction.count_source, d.probes, d.retransmits, o.counters)
        wire.visible = False
        wire.note = (f"the wire cannot show the {'probes' if idle else 'retransmissions and probes'}: "
                     f"{blind or capture.error} ({seen} captured after the fault, "
                     f"the kernel counted {count if count is not None else '?'})")
    else:
        wire.note = f"every {'probe' if idle else 'segment'} after the fault passed the tested veth's tap"
    return wire, capture.pcap()


def merge_timeline(timeline: tuple[Event, ...], wire: WireEvidence, prediction: DeathPrediction) -> tuple[Event, ...]:
    """The procedure's events and the wire's, in time order; the wire's replace the sampled ones."""
    kept = [e for e in timeline if e.source != SAMPLED]
    if prediction.measured_from != Clock.SEND and any(e.t_s == 0 for e in wire.events) and kept and kept[0].t_s == 0:
        kept = kept[1:]  # the wire's own line for the last segment received says the same, timestamped
    merged = kept + [Event(e.t_s, e.what, WIRE) for e in wire.events]
    return tuple(sorted(merged, key=lambda e: (e.t_s, e.source != WIRE)))  # at a tie the wire saw it first


__all__ = ["Observed", "merge_timeline", "result_from", "wire_evidence"]
