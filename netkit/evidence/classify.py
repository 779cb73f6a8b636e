"""Classify the tested connection's segments as the kernel's timers produce them.

The frames are parsed (Ethernet, IPv4/IPv6, TCP: seq, ack, flags,
payload length, window) and the tested connection's segments classified as
the kernel's timers produce them (net/ipv4/tcp_output.c, tcp_timer.c):

* **keepalive probe**: from the tested side, 0 (Linux) or 1 byte, sequence
  number ``snd_nxt - 1`` (``tcp_xmit_probe_skb`` sends ``snd_una - 1``; on
  an idle connection ``snd_una == snd_nxt``).  ``snd_nxt`` is tracked from
  what the tested side sent (and what the peer acknowledged);
* **zero-window probe**: the same segment while the peer's last advertised
  window is 0 (the persist timer, ``tcp_send_probe0``);
* **probe reply**: an ACK from the peer after a probe;
* **retransmission**: payload at or below ``snd_nxt`` (the tail loss probe
  is one too);
* **data**, **ack**, **syn**, **fin**;
* **RST**: the tested side's final reset (keepalive death sends one,
  ``tcp_send_active_reset``; retransmission and persist timeouts do not), or
  the peer's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .frames import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Frame, Segment, parse_frame

# -- classification ------------------------------------------------------------------


def _after(a: int, b: int) -> bool:
    """``a`` comes after ``b`` in sequence space (RFC 1982 serial arithmetic)."""
    return a != b and ((a - b) & 0xFFFFFFFF) < 0x80000000


def _seq_end(s: Segment) -> int:
    return (s.seq + s.payload + s.has(TCP_SYN) + s.has(TCP_FIN)) & 0xFFFFFFFF


@dataclass
class Classified:
    """A segment of the tested connection and what the kernel was doing when it sent it."""

    ts_ns: int
    sent: bool  # by the tested side
    segment: Segment
    kind: str  # syn, data, retransmission, keepalive-probe, zero-window-probe, probe-reply, ack, fin, rst
    answered: bool = False  # probes: a segment from the peer came back before the next probe


SENT_KINDS = ("syn", "data", "retransmission", "keepalive-probe", "zero-window-probe", "ack", "fin", "rst")
RECEIVED_KINDS = ("syn", "data", "probe-reply", "ack", "fin", "rst")


def classify(frames: Iterable[Frame], tested: tuple[str, int], peer: tuple[str, int]) -> list[Classified]:
    """The tested connection's segments, in capture order, each with its kind.

    ``tested``/``peer`` are (address, port).  The direction comes from the
    addresses, so this works on a pcap file too; a live capture's
    ``pkttype`` agrees with it.
    """
    me = (ipaddress.ip_address(tested[0]), tested[1])
    other = (ipaddress.ip_address(peer[0]), peer[1])
    state = _Tracker()
    found: list[Classified] = []
    for frame in frames:
        seg = parse_frame(frame.data)
        if seg is None:
            continue
        ends = ((ipaddress.ip_address(seg.src), seg.sport), (ipaddress.ip_address(seg.dst), seg.dport))
        if ends == (me, other):
            found.append(state.sent(frame.ts_ns, seg))
        elif ends == (other, me):
            found.append(state.received(frame.ts_ns, seg))
    return found


class _Tracker:
    """What the classification remembers: ``snd_nxt``, the peer's last window, the probes not yet answered."""

    def __init__(self) -> None:
        self.snd_nxt: int | None = None
        self.peer_window: int | None = None
        self.outstanding: list[Classified] = []

    def _sent_kind(self, seg: Segment) -> str:
        snd_nxt = self.snd_nxt
        if seg.has(TCP_RST):
            return "rst"
        if seg.has(TCP_SYN):
            return "syn"
        if snd_nxt is not None and seg.payload <= 1 and seg.seq == (snd_nxt - 1) & 0xFFFFFFFF and not seg.has(TCP_FIN):
            return "zero-window-probe" if self.peer_window == 0 else "keepalive-probe"
        if seg.payload and snd_nxt is not None and _after(snd_nxt, seg.seq):
            return "retransmission"
        if seg.has(TCP_FIN):
            return "fin"
        return "data" if seg.payload else "ack"

    def sent(self, ts_ns: int, seg: Segment) -> Classified:
        kind = self._sent_kind(seg)
        end = _seq_end(seg)
        if kind not in ("keepalive-probe", "zero-window-probe", "rst") and (self.snd_nxt is None or _after(end, self.snd_nxt)):
            self.snd_nxt = end
        item = Classified(ts_ns, True, seg, kind)
        if kind.endswith("probe"):
            self.outstanding.append(item)
        return item

    def received(self, ts_ns: int, seg: Segment) -> Classified:
        if seg.has(TCP_ACK) and (self.snd_nxt is None or _after(seg.ack, self.snd_nxt)):
            self.snd_nxt = seg.ack  # the capture may have started mid-connection
        self.peer_window = seg.window
        if seg.has(TCP_RST):
            kind = "rst"
        elif seg.has(TCP_SYN):
            kind = "syn"
        elif seg.payload:
            kind = "data"
        elif seg.has(TCP_FIN):
            kind = "fin"
        elif self.outstanding and seg.has(TCP_ACK):
            kind = "probe-reply"
        else:
            kind = "ack"
        for probe in self.outstanding:
            probe.answered = True
        self.outstanding = []
        return Classified(ts_ns, False, seg, kind)
