"""A TCP socket as the kernel describes it, as plain values: no I/O, no netlink.

What the kernel tells about a socket arrives two ways -- ``getsockopt(TCP_INFO)``
on a socket netkit holds (:mod:`netkit.lab.tcpinfo`), and sock_diag for any
process's socket in a namespace (:mod:`netkit.lab.diag`) -- and is read by
pure code: the audits' inference (:mod:`netkit.check.infer`), ``netkit
inspect``'s assessment and its ``/proc/PID/net/tcp`` fallback
(:mod:`netkit.inspect`), the reports.  Those records live here, so that
reading one never loads the netlink machinery that fetched it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TCP_STATES = {  # include/net/tcp_states.h
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}
TIMERS = {0: "none", 1: "retransmit", 2: "keepalive", 3: "time-wait", 4: "zero-window-probe"}  # idiag_timer
REQUEST_STATES = ("SYN_RECV", "12")  # sock_diag shows a request socket as SYN_RECV (or its own state, 12)
WILDCARDS = ("0.0.0.0", "::")  # a listener bound to either takes connections to any of its family's addresses


@dataclass(frozen=True)
class TcpInfo:
    """``struct tcp_info``'s leading, stable part (present since Linux 2.6)."""

    state: str
    retransmits: int
    probes: int  # icsk_probes_out: keepalive/window probes sent without an answer
    backoff: int
    rto_us: int
    unacked: int
    last_data_sent_ms: int
    last_data_recv_ms: int
    last_ack_recv_ms: int  # time since the last segment received, any kind
    rtt_us: int
    total_retrans: int = 0  # every retransmission of the connection's life (tp->total_retrans)


@dataclass(frozen=True)
class TcpSocketDiag:
    """One TCP socket as sock_diag reports it."""

    family: str  # "ipv4" | "ipv6"
    state: str  # "ESTABLISHED", "LISTEN", "TIME_WAIT", ...
    local: tuple[str, int]
    remote: tuple[str, int]
    timer: str  # one of TIMERS' values
    retrans: int  # idiag_retrans: probes out (keepalive, zero-window) or retransmissions (retransmit)
    expires_ms: int  # until the timer's requested expiry; 0 without a timer
    inode: int  # the socket's inode (0 for TIME_WAIT and request sockets): see netkit.lab.proc.owners()
    uid: int
    rqueue: int
    wqueue: int
    info: TcpInfo | None  # None for TIME_WAIT/request sockets, or if not asked for
    cookie: int = 0  # idiag_cookie (sock_gen_cookie): the socket's id for life, as tcp:tcp_probe prints it

    @property
    def probes_out(self) -> int | None:
        """Keepalive or window probes outstanding, if such a timer runs."""
        return self.retrans if self.timer in ("keepalive", "zero-window-probe") else None

    def describe_timer(self) -> str:
        if self.timer == "none":
            return "no timer"
        what = "retransmissions" if self.timer == "retransmit" else "probes out"
        return f"{self.timer} timer, expires in {self.expires_ms / 1000:.3f} s, {self.retrans} {what}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sample:
    """One sock_diag look: monotonic time before the lookup, after it, and the socket (None: gone)."""

    start: float
    end: float
    sock: TcpSocketDiag | None

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2


__all__ = ["TCP_STATES", "TIMERS", "WILDCARDS", "Sample", "TcpInfo", "TcpSocketDiag"]
