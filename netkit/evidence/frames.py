"""Captured frames and the TCP segment in each: parsing only (Ethernet, IPv4/IPv6, TCP)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = range(5)

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = (1 << i for i in range(8))
_FLAG_LETTERS = ((TCP_SYN, "S"), (TCP_FIN, "F"), (TCP_RST, "R"), (TCP_PSH, "P"), (TCP_URG, "U"),
                 (TCP_ECE, "E"), (TCP_CWR, "W"), (TCP_ACK, "."))
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: skipped to reach TCP


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
