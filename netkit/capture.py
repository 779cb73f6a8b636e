"""Wire evidence: capture the lab's traffic inside a namespace, classify it, write it as pcap.

The capture is an ``AF_PACKET``/``SOCK_RAW`` socket created *inside* the
tested side's namespace (:meth:`Namespace.socket`) and bound to the tested
veth end by ifindex, with ``ETH_P_ALL``: it sees every frame that end sends
and receives, and nothing else -- never the host's traffic (the socket's
namespace is checked with ``SIOCGSKNS`` before it is used).  Each frame
carries the kernel's own timestamp (``SO_TIMESTAMPNS``, CLOCK_REALTIME, taken
when the frame passed the tap) and its direction (``sll_pkttype``:
``PACKET_OUTGOING`` for what the tested side sent, ``PACKET_HOST`` for what
it received).  A thread of the process running the scenario reads the socket
until :meth:`Capture.stop`; no tcpdump is needed.

Then the frames are parsed (Ethernet, IPv4/IPv6, TCP: seq, ack, flags,
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

Where a capture cannot see the probes at all, :data:`PROBES_NEVER_ON_WIRE`
says why (KERNEL-NOTES, trap 4): the evidence is then the kernel's counters.

The capture is written as a classic libpcap file (nanosecond magic
``0xa1b23c4d``, LINKTYPE_ETHERNET), which ``tcpdump -r`` and Wireshark read.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .namespaces import Namespace, socket_namespace_inode

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = range(5)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # SCM_TIMESTAMPNS has the same value
SO_RCVBUFFORCE = 33
CAPTURE_RCVBUF = 4 << 20  # a zero-window fill is a burst of frames; never drop them
BUFFER_BYTES = 1 << 18  # a GSO super-packet on veth can be 64 KB
SNAPLEN = 65535

PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = (1 << i for i in range(8))
_FLAG_LETTERS = ((TCP_SYN, "S"), (TCP_FIN, "F"), (TCP_RST, "R"), (TCP_PSH, "P"), (TCP_URG, "U"),
                 (TCP_ECE, "E"), (TCP_CWR, "W"), (TCP_ACK, "."))
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: skipped to reach TCP
MAX_EVENTS = 200  # the timeline keeps the first ones; a bulk transfer would drown it

# Faults whose probes (and retransmissions) never pass the tested veth's packet tap.
PROBES_NEVER_ON_WIRE = {
    "link-down": "with no carrier on the tested veth the local qdisc discards every probe before any packet tap",
    "peer-gone": "the tested veth vanished with the peer's namespace: the probes fail in the route lookup and "
                 "never reach a device",
    "netem-loss": "netem drops them in the tested side's own qdisc, before the packet tap (dev_queue_xmit_nit)",
}

_libc = ctypes.CDLL(None, use_errno=True)


class _SockaddrLL(ctypes.Structure):
    _fields_ = [("sll_family", ctypes.c_ushort), ("sll_protocol", ctypes.c_ushort), ("sll_ifindex", ctypes.c_int),
                ("sll_hatype", ctypes.c_ushort), ("sll_pkttype", ctypes.c_ubyte), ("sll_halen", ctypes.c_ubyte),
                ("sll_addr", ctypes.c_ubyte * 8)]


# -- frames and their parsing ----------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One captured frame: kernel timestamp (ns, CLOCK_REALTIME), direction, bytes."""

    ts_ns: int
    pkttype: int  # PACKET_OUTGOING: sent by the capturing side; PACKET_HOST: received
    data: bytes
    orig_len: int = 0  # length on the wire (``data`` may be cut at the snap length)

    @property
    def outgoing(self) -> bool:
        return self.pkttype == PACKET_OUTGOING


@dataclass(frozen=True)
class Segment:
    """The TCP header fields of one frame (``payload`` is the length, from the IP header)."""

    family: str
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int  # as on the wire, unscaled (0 is 0 whatever the scale)
    payload: int

    @property
    def flag_text(self) -> str:
        """tcpdump's notation: ``S``, ``.``, ``R.``, ``P.`` ..."""
        return "".join(letter for bit, letter in _FLAG_LETTERS if self.flags & bit) or "none"

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)


def parse_frame(data: bytes) -> Segment | None:
    """The TCP segment in an Ethernet frame (IPv4 or IPv6), or None for anything else."""
    if len(data) < 14:
        return None
    offset = 12
    (ethertype,) = struct.unpack_from("!H", data, offset)
    offset += 2
    while ethertype == ETH_P_8021Q and len(data) >= offset + 4:
        (ethertype,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4
    if ethertype == ETH_P_IP:
        if len(data) < offset + 20:
            return None
        ver_ihl, _, total, _, frag, _, proto = struct.unpack_from("!BBHHHBB", data, offset)
        ihl = (ver_ihl & 0x0F) * 4
        if ver_ihl >> 4 != 4 or proto != socket.IPPROTO_TCP or frag & 0x1FFF or ihl < 20:
            return None
        src = socket.inet_ntop(socket.AF_INET, data[offset + 12:offset + 16])
        dst = socket.inet_ntop(socket.AF_INET, data[offset + 16:offset + 20])
        family, tcp_at, tcp_bytes = "ipv4", offset + ihl, total - ihl
    elif ethertype == ETH_P_IPV6:
        if len(data) < offset + 40:
            return None
        payload_len, next_header = struct.unpack_from("!HB", data, offset + 4)
        src = socket.inet_ntop(socket.AF_INET6, data[offset + 8:offset + 24])
        dst = socket.inet_ntop(socket.AF_INET6, data[offset + 24:offset + 40])
        tcp_at, tcp_bytes = offset + 40, payload_len
        while next_header in _IPV6_EXTENSIONS and len(data) >= tcp_at + 2:
            next_header, length = data[tcp_at], (data[tcp_at + 1] + 1) * 8
            tcp_at, tcp_bytes = tcp_at + length, tcp_bytes - length
        if next_header != socket.IPPROTO_TCP:
            return None
        family = "ipv6"
    else:
        return None
    if len(data) < tcp_at + 20:
        return None
    sport, dport, seq, ack, off_flags, window = struct.unpack_from("!HHIIHH", data, tcp_at)
    header = (off_flags >> 12) * 4
    return Segment(family, src, dst, sport, dport, seq, ack, off_flags & 0x1FF, window, max(0, tcp_bytes - header))


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
    found: list[Classified] = []
    snd_nxt: int | None = None
    peer_window: int | None = None
    outstanding: list[Classified] = []
    for frame in frames:
        seg = parse_frame(frame.data)
        if seg is None:
            continue
        src = (ipaddress.ip_address(seg.src), seg.sport)
        dst = (ipaddress.ip_address(seg.dst), seg.dport)
        if (src, dst) == (me, other):
            sent = True
        elif (src, dst) == (other, me):
            sent = False
        else:
            continue
        if sent:
            end = _seq_end(seg)
            if seg.has(TCP_RST):
                kind = "rst"
            elif seg.has(TCP_SYN):
                kind = "syn"
            elif snd_nxt is not None and seg.payload <= 1 and seg.seq == (snd_nxt - 1) & 0xFFFFFFFF \
                    and not seg.has(TCP_FIN):
                kind = "zero-window-probe" if peer_window == 0 else "keepalive-probe"
            elif seg.payload and snd_nxt is not None and _after(snd_nxt, seg.seq):
                kind = "retransmission"
            elif seg.has(TCP_FIN):
                kind = "fin"
            elif seg.payload:
                kind = "data"
            else:
                kind = "ack"
            if kind not in ("keepalive-probe", "zero-window-probe", "rst") and (snd_nxt is None or _after(end, snd_nxt)):
                snd_nxt = end
            item = Classified(frame.ts_ns, True, seg, kind)
            if kind.endswith("probe"):
                outstanding.append(item)
        else:
            if seg.has(TCP_ACK) and (snd_nxt is None or _after(seg.ack, snd_nxt)):
                snd_nxt = seg.ack  # the capture may have started mid-connection
            peer_window = seg.window
            if seg.has(TCP_RST):
                kind = "rst"
            elif seg.has(TCP_SYN):
                kind = "syn"
            elif seg.payload:
                kind = "data"
            elif seg.has(TCP_FIN):
                kind = "fin"
            elif outstanding and seg.has(TCP_ACK):
                kind = "probe-reply"
            else:
                kind = "ack"
            for probe in outstanding:
                probe.answered = True
            outstanding = []
            item = Classified(frame.ts_ns, False, seg, kind)
        found.append(item)
    return found


# -- the evidence ----------------------------------------------------------------------


@dataclass(frozen=True)
class WireEvent:
    """One segment on the tested veth, timed from the clock's anchor (s)."""

    t_s: float
    what: str


@dataclass
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
    events: list[WireEvent] = field(default_factory=list)
    kernel: dict[str, int | None] = field(default_factory=dict)  # the kernel's counts of the same things
    error: str | None = None  # why there is no capture at all

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
            "data": f"data sent ({seg.payload} bytes)",
        }.get(item.kind, f"{item.kind} sent [{seg.flag_text}]")
    else:
        text = {
            "probe-reply": "reply to the probe received",
            "rst": "RST received from the peer",
            "data": f"data received ({seg.payload} bytes)",
            "ack": f"ACK received (window {seg.window})",
        }.get(item.kind, f"{item.kind} received [{seg.flag_text}]")
    return text + (" = last segment received" if anchor else "")


def evidence(
    items: Sequence[Classified],
    anchor_ns: int,
    anchor: str,
    from_index: int = 0,
) -> WireEvidence:
    """Probes, replies, spacing and RST after ``anchor_ns`` (the timeline starts at ``from_index``)."""

    def t(item: Classified) -> float:
        return round((item.ts_ns - anchor_ns) / 1e9, 6)

    after = [i for i in items if i.ts_ns > anchor_ns]
    probes = [i for i in after if i.sent and i.kind == "keepalive-probe"]
    ev = WireEvidence(anchor=anchor, anchor_ns=anchor_ns, connection_segments=len(items))
    ev.probes_s = [t(p) for p in probes]
    ev.unanswered_probes = sum(not p.answered for p in probes)
    ev.answered_probes = sum(p.answered for p in probes)
    ev.spacing_s = [round(b - a, 6) for a, b in zip(ev.probes_s, ev.probes_s[1:])]
    ev.first_probe_s = ev.probes_s[0] if probes else None
    rsts = [t(i) for i in after if i.sent and i.kind == "rst"]
    ev.rst_s = rsts[0] if rsts else None
    peer_rsts = [t(i) for i in after if not i.sent and i.kind == "rst"]
    ev.peer_rst_s = peer_rsts[0] if peer_rsts else None
    ev.retransmissions_s = [t(i) for i in after if i.sent and i.kind == "retransmission"]
    ev.zero_window_probes_s = [t(i) for i in after if i.sent and i.kind == "zero-window-probe"]
    counts: dict[str, int] = {}
    shown = items[from_index:]
    for item in shown[:MAX_EVENTS]:
        number = None
        if item.sent and item.ts_ns > anchor_ns and item.kind in ("keepalive-probe", "zero-window-probe", "retransmission"):
            counts[item.kind] = number = counts.get(item.kind, 0) + 1
        ev.events.append(WireEvent(t(item), _describe(item, number, item.ts_ns == anchor_ns)))
    if len(shown) > MAX_EVENTS:
        ev.events.append(WireEvent(t(shown[-1]), f"... {len(shown) - MAX_EVENTS} more segments (see the pcap)"))
    return ev


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
    sent after the fault (or ``sent_ns``, when that never reached the tap).
    """
    items = classify(frames, tested, peer)
    received = [i for i, item in enumerate(items) if not item.sent and item.ts_ns < fault_ns]
    if measured_from == "send":
        sends = [i for i, item in enumerate(items) if item.sent and item.kind == "data" and item.ts_ns >= fault_ns]
        if sends:
            index = sends[0]
            anchor_ns, anchor = items[index].ts_ns, "the data's first transmission"
        else:
            index = len([item for item in items if item.ts_ns < (sent_ns or fault_ns)])
            anchor_ns, anchor = sent_ns or fault_ns, "the send (the data never reached the tap; process clock)"
        ev = evidence(items, anchor_ns - 1, anchor, index)
    elif received:
        index = received[-1]
        answered_probe = index and items[index - 1].sent and items[index - 1].kind.endswith("probe")
        start = index - 1 if answered_probe else index  # show the probe it answered
        ev = evidence(items, items[index].ts_ns, "the last segment received before the fault", start)
    else:
        ev = evidence(items, fault_ns, "the fault (nothing was received before it)", len(items))
    ev.frames = len(frames)
    return ev


# -- pcap ----------------------------------------------------------------------------------


def pcap_bytes(frames: Iterable[Frame], snaplen: int = SNAPLEN) -> bytes:
    """A classic libpcap file (nanosecond timestamps, Ethernet) of ``frames``."""
    out = bytearray(_PCAP_HEADER.pack(PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
    for f in frames:
        data = f.data[:snaplen]
        sec, nsec = divmod(f.ts_ns, 1_000_000_000)
        out += _PCAP_RECORD.pack(sec, nsec, len(data), max(f.orig_len, len(data))) + data
    return bytes(out)


def write_pcap(path: str, frames: Iterable[Frame] | bytes) -> str:
    """Write ``frames`` (or ready pcap bytes) to ``path``; returns the path."""
    data = frames if isinstance(frames, bytes) else pcap_bytes(frames)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read_pcap(path: str) -> list[Frame]:
    """Frames of a classic pcap file (either timestamp resolution; no direction: PACKET_HOST)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data)[0]
    if magic not in (PCAP_MAGIC_NS, PCAP_MAGIC_US):
        raise ValueError(f"{path}: not a little-endian classic pcap file (magic {magic:#x})")
    scale = 1 if magic == PCAP_MAGIC_NS else 1000
    frames, offset = [], _PCAP_HEADER.size
    while offset + _PCAP_RECORD.size <= len(data):
        sec, frac, incl, orig = _PCAP_RECORD.unpack_from(data, offset)
        offset += _PCAP_RECORD.size
        frames.append(Frame(sec * 1_000_000_000 + frac * scale, PACKET_HOST, data[offset:offset + incl], orig))
        offset += incl
    return frames


# -- the capture itself -----------------------------------------------------------------------


class Capture:
    """Frames seen on one veth end, read by a thread of this process until :meth:`stop`.

    >>> capture = Capture(lab.server.namespace, lab.server.ifindex).start()
    >>> ...; capture.stop(); capture.frames
    """

    def __init__(self, namespace: Namespace, ifindex: int, label: str = "") -> None:
        self.namespace = namespace
        self.ifindex = ifindex
        self.label = label or f"ifindex {ifindex} in {namespace.name}"
        self.frames: list[Frame] = []
        self.drops = 0
        self.error: str | None = None
        self.interface_gone = False
        self._sock: socket.socket | None = None
        self._wake = (-1, -1)  # a pipe: writing to it ends the reading thread
        self._thread: threading.Thread | None = None

    def start(self) -> Capture:
        """Open the packet socket inside the namespace, bind it, start reading. Returns self."""
        sock = self.namespace.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing until bound
        try:
            self._check_namespace(sock)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, CAPTURE_RCVBUF)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_RCVBUF)
            address = _SockaddrLL(socket.AF_PACKET, socket.htons(ETH_P_ALL), self.ifindex)
            if _libc.bind(sock.fileno(), ctypes.byref(address), ctypes.sizeof(address)) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"bind packet socket to ifindex {self.ifindex} in {self.namespace.name}: "
                              f"{os.strerror(err)}")
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._read, name=f"netkit-capture-{self.ifindex}", daemon=True)
        self._thread.start()
        return self

    def _check_namespace(self, sock: socket.socket) -> None:
        """Refuse to capture anywhere but in the lab: the socket's namespace must be ours."""
        if socket_namespace_inode(sock) != self.namespace.inode:
            raise RuntimeError(f"packet socket is not in {self.namespace.name}: refusing to capture")

    def _read(self) -> None:
        assert self._sock is not None
        poller = select.poll()
        poller.register(self._sock, select.POLLIN | select.POLLERR)
        poller.register(self._wake[0], select.POLLIN)
        while True:
            stopping = any(fd == self._wake[0] for fd, _ in poller.poll())
            if not self._drain() or stopping:
                return

    def _drain(self) -> bool:
        """Read every queued frame; False when the socket is unusable."""
        assert self._sock is not None
        buffer = bytearray(BUFFER_BYTES)
        ancillary = socket.CMSG_SPACE(16)
        while True:
            try:
                nbytes, ancdata, _, address = self._sock.recvmsg_into(
                    [buffer], ancillary, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
            except BlockingIOError:
                return True
            except OSError as exc:
                if exc.errno in (errno.ENETDOWN, errno.ENODEV):  # the veth went away (peer-gone)
                    self.interface_gone = True
                    continue
                self.error = f"reading the capture: {exc}"
                return False
            ts_ns = None
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack_from("=qq", data)
                    ts_ns = sec * 1_000_000_000 + nsec
            if ts_ns is None:
                ts_ns = time.time_ns()
            kept = min(nbytes, len(buffer), SNAPLEN)
            self.frames.append(Frame(ts_ns, address[2], bytes(buffer[:kept]), nbytes))

    def stop(self) -> list[Frame]:
        """Read what is still queued, stop the thread, close the socket. Idempotent."""
        if self._thread is not None:
            os.write(self._wake[1], b"x")
            self._thread.join()
            self._thread = None
        if self._sock is not None:
            try:
                raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                self.drops += struct.unpack("=II", raw)[1]
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._wake[0] >= 0:
            for fd in self._wake:
                os.close(fd)
            self._wake = (-1, -1)
        return self.frames

    def pcap(self) -> bytes:
        return pcap_bytes(self.frames)
