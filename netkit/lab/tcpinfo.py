"""TCP_INFO, the kernel's own view of a TCP socket (``struct tcp_info``).

We read only the leading, stable part of the struct (present since Linux 2.6):
the probe counter and the "time since last ..." fields are what the keepalive
proof needs.  ``last_ack_recv`` is ``now - rcv_tstamp`` in jiffies converted
to ms, i.e. time since the last segment received (keepalive replies
included) -- exactly the clock the keepalive timer uses.  The record itself,
:class:`netkit.tcpsocket.TcpInfo`, is a plain value that pure code reads.
"""

from __future__ import annotations

import socket
import struct

from ..tcpsocket import TCP_STATES, TcpInfo

_LAYOUT = struct.Struct("=8B 24I")  # 8 one-byte fields, then 24 u32 (up to tcpi_rcv_space)
_SND_WND = struct.Struct("=I")
_SND_WND_OFFSET = 228  # tcpi_snd_wnd, after tcpi_rcv_ooopack: Linux >= 5.4 ("tcp: Add snd_wnd to TCP_INFO")


def tcp_info(sock: socket.socket) -> TcpInfo:
    return parse_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _LAYOUT.size))


def parse_tcp_info(raw: bytes) -> TcpInfo:
    """``struct tcp_info``'s leading part, from getsockopt or from sock_diag's INET_DIAG_INFO attribute."""
    f = _LAYOUT.unpack(raw[: _LAYOUT.size])
    u32 = f[8:]
    return TcpInfo(
        state=TCP_STATES.get(f[0], str(f[0])),
        retransmits=f[2],
        probes=f[3],
        backoff=f[4],
        rto_us=u32[0],
        unacked=u32[4],
        last_data_sent_ms=u32[9],
        last_data_recv_ms=u32[11],
        last_ack_recv_ms=u32[12],
        rtt_us=u32[15],
        total_retrans=u32[23],
    )


def peer_window(sock: socket.socket) -> int | None:
    """The peer's advertised receive window in bytes (``tcpi_snd_wnd``), None on a kernel older than 5.4."""
    end = _SND_WND_OFFSET + _SND_WND.size
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, end)
    return _SND_WND.unpack_from(raw, _SND_WND_OFFSET)[0] if len(raw) >= end else None

