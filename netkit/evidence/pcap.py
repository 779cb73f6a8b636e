"""Classic libpcap files: nanosecond magic ``0xa1b23c4d``, LINKTYPE_ETHERNET (``tcpdump -r`` and Wireshark read them)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable

from .frames import PACKET_HOST, Frame

SNAPLEN = 65535
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")


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
