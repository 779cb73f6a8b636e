"""Wire evidence: what the tested veth showed after the fault, as data (probes, spacing, RST, events).

Where a capture cannot see the probes at all, the fault says why (its
``wire_blind``; docs/rules.md, "Link-down probes are not on the wire"): the
evidence is then the kernel's counters.  Each event
carries its kind, from the segment's classification (:data:`KINDS`), so no
report guesses it back from the wording.  The evidence is a frozen value,
built whole; what the capture adds (interface, drops, the kernel's counts,
the note) is given with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..enums import EventKind
from .classify import Classified, classify
from .events import WIRE, Event
from .frames import TCP_ACK, Frame

MAX_EVENTS = 200  # the timeline keeps the first ones; a bulk transfer would drown it


# -- the evidence ----------------------------------------------------------------------


SEND_UNSEEN = "the send (the data never reached the tap; process clock)"  # an anchor that is no frame


@dataclass(frozen=True)
class WireEvidence:
    """What the tested veth showed, as data; times in s since ``anchor`` (on the wire).

    ``visible`` is False where the probes cannot reach a packet tap at all
    (``note`` says why, and ``kernel`` holds the counters that are the
    evidence instead).
    """

    interface: str = ""
    visible: bool = True
    note: str = ""
    frames: int = 0  # everything captured on the tested veth (ARP/ND included)
    drops: int = 0  # frames the packet socket had to drop (should be 0)
    connection_segments: int = 0
    anchor: str = ""  # what t = 0 is
    anchor_ns: int = 0  # its kernel timestamp (CLOCK_REALTIME)
    probes_s: list[float] = field(default_factory=list)  # keepalive probes after the anchor
    unanswered_probes: int = 0
    answered_probes: int = 0
    spacing_s: list[float] = field(default_factory=list)  # between consecutive probes after the anchor
    first_probe_s: float | None = None
    rst_s: float | None = None  # the tested side's RST (the kernel gave up)
    peer_rst_s: float | None = None
    retransmissions_s: list[float] = field(default_factory=list)
    zero_window_probes_s: list[float] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    kernel: dict[str, int | None] = field(default_factory=dict)  # the kernel's counts of the same things
    error: str | None = None  # why there is no capture at all

    @property
    def anchored_on_process_clock(self) -> bool:
        """t = 0 is netkit's own clock read before a send whose data never reached the tap, not a frame's timestamp."""
        return self.anchor == SEND_UNSEEN

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["events"] = [e.to_dict(with_source=False) for e in self.events]  # the wire is their only source
        return data


def _describe(item: Classified, number: int | None, anchor: bool) -> str:
    seg = item.segment
    answered = "answered" if item.answered else "unanswered"
    nth = f" {number}" if number is not None else ""
    if item.sent:
        text = {
            "keepalive-probe": f"keepalive probe{nth} sent (seq snd_nxt-1, {seg.payload} bytes), {answered}",
            "zero-window-probe": f"zero-window probe{nth} sent (seq snd_una-1), {answered}",
            "retransmission": f"retransmission{nth} sent ({seg.payload} bytes at seq {seg.seq})",
            "rst": "RST sent by the tested side: the kernel gave up on the connection",
            "syn": "SYN-ACK sent" if seg.has(TCP_ACK) else "SYN sent",
            "data": f"data sent ({seg.payload} bytes)",
        }.get(item.kind, f"{item.kind} sent [{seg.flag_text}]")
    else:
        text = {
            "probe-reply": "reply to the probe received",
            "rst": "RST received from the peer",
            "syn": "SYN-ACK received" if seg.has(TCP_ACK) else "SYN received",
            "data": f"data received ({seg.payload} bytes)",
            "ack": f"ACK received (window {seg.window})",
        }.get(item.kind, f"{item.kind} received [{seg.flag_text}]")
    return text + (" = last segment received" if anchor else "")


# A classified segment's kind as a timeline event's (a probe answered or not is decided by its reply).
KINDS = {
    "keepalive-probe": EventKind.PROBE,
    "zero-window-probe": EventKind.ZERO_WINDOW_PROBE,
    "probe-reply": EventKind.PROBE_REPLY,
    "retransmission": EventKind.RETRANSMISSION,
    "rst": EventKind.RST,
    "syn": EventKind.CONNECT,
    "data": EventKind.DATA,
    "ack": EventKind.DATA,
    "fin": EventKind.DATA,
}


def event_kind(item: Classified, anchor: bool, again: bool = False) -> EventKind:
    """What a segment is on the timeline: t = 0 (the last segment received), or its classification's kind.

    ``again``: the tested side sent a SYN (or SYN-ACK) before this one, so this one is its retransmission.
    """
    if anchor:
        return EventKind.LAST_SEGMENT
    if item.kind == "keepalive-probe" and item.answered:
        return EventKind.ANSWERED_PROBE
    if item.kind == "syn" and item.sent and again:
        return EventKind.RETRANSMISSION
    return KINDS.get(item.kind, EventKind.OTHER)


def evidence(
    items: Sequence[Classified],
    anchor_ns: int,
    anchor: str,
    from_index: int = 0,
    frames: int = 0,
) -> WireEvidence:
    """Probes, replies, spacing and RST after ``anchor_ns`` (the timeline starts at ``from_index``).

    ``frames``: everything the capture held (the tested connection's segments are ``items``).
    """

    def t(item: Classified) -> float:
        return round((item.ts_ns - anchor_ns) / 1e9, 6)

    after = [i for i in items if i.ts_ns > anchor_ns]
    probes = [i for i in after if i.sent and i.kind == "keepalive-probe"]
    probes_s = [t(p) for p in probes]
    rsts = [t(i) for i in after if i.sent and i.kind == "rst"]
    peer_rsts = [t(i) for i in after if not i.sent and i.kind == "rst"]
    events: list[Event] = []
    counts: dict[str, int] = {}
    syns = [i for i, item in enumerate(items) if item.sent and item.kind == "syn"]
    shown = items[from_index:]
    for index, item in enumerate(shown[:MAX_EVENTS], from_index):
        number = None
        if item.sent and item.ts_ns > anchor_ns and item.kind in ("keepalive-probe", "zero-window-probe", "retransmission"):
            counts[item.kind] = number = counts.get(item.kind, 0) + 1
        at_anchor = item.ts_ns == anchor_ns
        kind = event_kind(item, at_anchor, again=bool(syns) and index > syns[0])
        events.append(Event(t(item), _describe(item, number, at_anchor), WIRE, kind))
    if len(shown) > MAX_EVENTS:
        events.append(Event(t(shown[-1]), f"... {len(shown) - MAX_EVENTS} more segments (see the pcap)", WIRE))
    return WireEvidence(
        frames=frames,
        connection_segments=len(items),
        anchor=anchor,
        anchor_ns=anchor_ns,
        probes_s=probes_s,
        unanswered_probes=sum(not p.answered for p in probes),
        answered_probes=sum(p.answered for p in probes),
        spacing_s=[round(b - a, 6) for a, b in zip(probes_s, probes_s[1:], strict=False)],
        first_probe_s=probes_s[0] if probes else None,
        rst_s=rsts[0] if rsts else None,
        peer_rst_s=peer_rsts[0] if peer_rsts else None,
        retransmissions_s=[t(i) for i in after if i.sent and i.kind == "retransmission"],
        zero_window_probes_s=[t(i) for i in after if i.sent and i.kind == "zero-window-probe"],
        events=events,
    )


def analyse(
    frames: Sequence[Frame],
    tested: tuple[str, int],
    peer: tuple[str, int],
    fault_ns: int,
    measured_from: str = "last-received",
    sent_ns: int | None = None,
) -> WireEvidence:
    """The wire evidence of one scenario.

    t = 0 is the last segment the tested side received before the fault
    (``fault_ns``, CLOCK_REALTIME) -- the same event ``tcpi_last_ack_recv``
    counts from, but with the tap's nanosecond timestamp instead of a jiffy.
    With ``measured_from="send"`` it is the first transmission of the data
    sent after ``sent_ns`` (after the fault; before it, for a retracted
    window's burst), or ``sent_ns`` itself when that never reached the tap.
    """
    items = classify(frames, tested, peer)
    received = [i for i, item in enumerate(items) if not item.sent and item.ts_ns < fault_ns]
    if measured_from == "send":
        since = fault_ns if sent_ns is None else sent_ns
        sends = [i for i, item in enumerate(items) if item.sent and item.kind == "data" and item.ts_ns >= since]
        if sends:
            index = sends[0]
            anchor_ns, anchor = items[index].ts_ns, "the data's first transmission"
        else:
            index = len([item for item in items if item.ts_ns < (sent_ns or fault_ns)])
            anchor_ns, anchor = sent_ns or fault_ns, SEND_UNSEEN
        return evidence(items, anchor_ns - 1, anchor, index, len(frames))
    if received:
        index = received[-1]
        answered_probe = index and items[index - 1].sent and items[index - 1].kind.endswith("probe")
        start = index - 1 if answered_probe else index  # show the probe it answered
        return evidence(items, items[index].ts_ns, "the last segment received before the fault", start, len(frames))
    return evidence(items, fault_ns, "the fault (nothing was received before it)", len(items), len(frames))
