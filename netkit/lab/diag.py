"""TCP sockets of any process in a lab namespace, read through the kernel's sock_diag.

``getsockopt(TCP_INFO)`` needs the socket; a server under test is another
program, so we ask the kernel instead: a NETLINK_SOCK_DIAG dump
(``SOCK_DIAG_BY_FAMILY``, what ``ss -tino`` uses) lists every TCP socket of a
namespace with its state, which timer runs, the probes or retransmissions
outstanding and when the timer expires -- plus ``struct tcp_info``
(``INET_DIAG_INFO``) for full sockets.

The kernel fills those fields in ``inet_sk_diag_fill`` (net/ipv4/inet_diag.c)::

    idiag_timer  1  retransmit (also loss probe, reorder timeout)  idiag_retrans = icsk_retransmits
                 2  keepalive (sk_timer pending)                   idiag_retrans = icsk_probes_out
                 3  TIME_WAIT (inet_twsk_diag_fill)                idiag_retrans = 0
                 4  zero-window probe (persist timer)              idiag_retrans = icsk_probes_out
                 0  none
    idiag_expires  ms until the timer's *requested* expiry (the timer wheel
                   may run it later, see netkit.model)

A socket the kernel has killed (``tcp_done``: state CLOSE) is unhashed at
once and vanishes from the dump even while its program still holds the fd, so
"gone from sock_diag" is the moment of death.

Namespace: the netlink socket belongs to the namespace of the thread that
creates it, so the dump runs in a thread inside the lab namespace
(:meth:`Namespace.run`), and the socket's own namespace is checked with
``SIOCGSKNS`` before it is used: a dump can never describe the host by
accident.  pyroute2 0.9's ``DiagSocket`` does the netlink work (about 1.5 ms
per dump, thread and socket included).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable
from typing import Any

from pyroute2 import DiagSocket
from pyroute2.netlink.diag import SS_ALL, SS_LISTEN
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import FeatureMissing, WrongNamespace
from ..tcpsocket import TCP_STATES, TIMERS, WILDCARDS, TcpInfo, TcpSocketDiag
from .lab import FAMILIES
from .namespaces import Namespace, socket_namespace_inode
from .tcpinfo import parse_tcp_info

INET_DIAG_INFO = 2  # include/uapi/linux/inet_diag.h; request it with bit (INET_DIAG_INFO - 1)
FAMILY_NAMES = {number: name for name, number in FAMILIES.items()}


def _state(code: int) -> str:
    return TCP_STATES.get(code, str(code))


def _info(msg: Any) -> TcpInfo | None:
    raw = msg.get_attr("INET_DIAG_INFO")
    if raw is None:
        return None
    return TcpInfo(
        state=_state(raw["tcpi_state"]),
        retransmits=raw["tcpi_retransmits"],
        probes=raw["tcpi_probes"],
        backoff=raw["tcpi_backoff"],
        rto_us=raw["tcpi_rto"],
        unacked=raw["tcpi_unacked"],
        last_data_sent_ms=raw["tcpi_last_data_sent"],
        last_data_recv_ms=raw["tcpi_last_data_recv"],
        last_ack_recv_ms=raw["tcpi_last_ack_recv"],
        rtt_us=raw["tcpi_rtt"],
    )


def _from_msg(msg: Any) -> TcpSocketDiag:
    return TcpSocketDiag(
        family=FAMILY_NAMES.get(msg["idiag_family"], str(msg["idiag_family"])),
        state=_state(msg["idiag_state"]),
        local=(msg["idiag_src"], msg["idiag_sport"]),
        remote=(msg["idiag_dst"], msg["idiag_dport"]),
        timer=TIMERS.get(msg["idiag_timer"], str(msg["idiag_timer"])),
        retrans=msg["idiag_retrans"],
        expires_ms=msg["idiag_expires"],
        inode=msg["idiag_inode"],
        uid=msg["idiag_uid"],
        rqueue=msg["idiag_rqueue"],
        wqueue=msg["idiag_wqueue"],
        info=_info(msg),
    )


def _open_here(namespace: Namespace) -> DiagSocket:
    """Inside ``namespace``'s thread: a bound DiagSocket, checked to be in that namespace."""
    ds = DiagSocket()  # opened now, in this thread, so in this thread's namespace
    try:
        ds.bind()
        where = socket_namespace_inode(ds.asyncore.socket)
        if where != namespace.inode:
            raise WrongNamespace(
                f"sock_diag socket is in network namespace {where}, not {namespace.name} ({namespace.inode}); "
                "call diag functions with a Namespace, never from the host's thread")
    except BaseException:
        ds.close()
        raise
    return ds


def _dump(ds: DiagSocket, families: tuple[int, ...], states: int, info: bool) -> list[TcpSocketDiag]:
    found: list[TcpSocketDiag] = []
    extensions = 1 << (INET_DIAG_INFO - 1) if info else 0
    for family in families:
        try:
            replies = ds.get_sock_stats(family=family, states=states, extensions=extensions)
        except NetlinkError as exc:
            raise FeatureMissing(
                f"sock_diag refused a TCP dump ({exc}): the kernel needs CONFIG_INET_DIAG and "
                "CONFIG_INET_TCP_DIAG (see netkit/kernel.config)") from exc
        found += [_from_msg(m) for m in replies]
    return found


def _numbers(families: Iterable[str]) -> tuple[int, ...]:
    return tuple({"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[f] for f in families)


def tcp_sockets(
    namespace: Namespace,
    families: Iterable[str] = ("ipv4", "ipv6"),
    states: int = SS_ALL,
    info: bool = True,
) -> list[TcpSocketDiag]:
    """Every TCP socket of ``namespace`` (any process's), as sock_diag reports it.

    ``states`` is a bit mask of TCP states (``1 << state``, pyroute2's SS_*
    constants); ``info`` asks for TCP_INFO too.
    """
    def here() -> list[TcpSocketDiag]:
        ds = _open_here(namespace)
        try:
            return _dump(ds, _numbers(families), states, info)
        finally:
            ds.close()

    return namespace.run(here)


NETLINK_SOCK_DIAG = 4  # include/uapi/linux/netlink.h
SOCK_DIAG_BY_FAMILY = 20  # include/uapi/linux/sock_diag.h
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
_NLMSGHDR = struct.Struct("=IHHII")


class DiagWatch:
    """One TCP socket of a namespace looked up by its addresses, again and again: for an observer that polls.

    pyroute2's DiagSocket cannot serve here: its 0.9 sync API opens its
    socket per calling thread, so a DiagSocket made inside the namespace and
    used from the observer's thread asked the *host*.  A plain netlink socket
    keeps the namespace it was created in (made through
    :meth:`Namespace.socket`, checked with SIOCGSKNS), and an exact lookup
    (``SOCK_DIAG_BY_FAMILY`` without NLM_F_DUMP: ``inet_diag_find_one_icsk``,
    which finds request sockets too) is one hash lookup -- a dump walks the
    host-wide TCP hash tables, 1.6 ms here.  The request and the answer
    (``struct inet_diag_msg`` and, if asked, its ``struct tcp_info``) are
    packed and parsed with ``struct``.
    """

    def __init__(self, namespace: Namespace) -> None:
        self.sock = namespace.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        if socket_namespace_inode(self.sock) != namespace.inode:
            self.sock.close()
            raise WrongNamespace(f"sock_diag socket is not in {namespace.name}")
        self.seq = 0

    def lookup(self, local: tuple[str, int], remote: tuple[str, int], info: bool = True) -> TcpSocketDiag | None:
        """The TCP socket ``local`` <-> ``remote`` as sock_diag reports it (with TCP_INFO if asked), or None.

        None also where the kernel's lookup found only the listener on the
        local port (``inet_lookup`` tries the listeners after the connections).
        """
        family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
        self.seq += 1
        sockid = (struct.pack("!HH", local[1], remote[1]) + _address(family, local[0]) + _address(family, remote[0])
                  + struct.pack("=III", 0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE))
        extensions = 1 << (INET_DIAG_INFO - 1) if info else 0
        body = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, extensions, SS_ALL) + sockid
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, self.seq, 0)
                       + body)
        while True:
            data = self.sock.recv(65536)
            length, kind, _, seq, _ = _NLMSGHDR.unpack_from(data)
            if seq != self.seq:
                continue
            if kind == NLMSG_ERROR:
                error = -struct.unpack_from("=i", data, _NLMSGHDR.size)[0]
                if error == errno.ENOENT:
                    return None
                raise FeatureMissing(f"sock_diag refused a TCP lookup ({os.strerror(error)}): the kernel needs "
                                     "CONFIG_INET_DIAG and CONFIG_INET_TCP_DIAG (see netkit/kernel.config)")
            found = _parse_diag_msg(data[:length])
            # inet_lookup() falls back to the listener on the local port: not the connection asked for
            return found if found.state != "LISTEN" else None

    def close(self) -> None:
        self.sock.close()


# struct inet_diag_msg (include/uapi/linux/inet_diag.h): family, state, timer, retrans; the sockid (ports in
# network order, 16-byte addresses, interface, cookie); expires, rqueue, wqueue, uid, inode. Then rtattrs.
_DIAG_HEAD = struct.Struct("=BBBB")
_DIAG_PORTS = struct.Struct("!HH")
_DIAG_TAIL = struct.Struct("=5I")
_DIAG_COOKIE = struct.Struct("=II")  # idiag_cookie[2]: low word first (INET_DIAG_NOCOOKIE in both: none)
_DIAG_MSG_SIZE = 72
_RTATTR = struct.Struct("=HH")


def _parse_diag_msg(data: bytes) -> TcpSocketDiag:
    """One SOCK_DIAG_BY_FAMILY answer (netlink header included) as a TcpSocketDiag, parsed with ``struct``."""
    at = _NLMSGHDR.size
    family, state, timer, retrans = _DIAG_HEAD.unpack_from(data, at)
    sport, dport = _DIAG_PORTS.unpack_from(data, at + 4)
    width = 16 if family == socket.AF_INET6 else 4
    src, dst = data[at + 8:at + 8 + width], data[at + 24:at + 24 + width]
    low, high = _DIAG_COOKIE.unpack_from(data, at + 44)
    expires, rqueue, wqueue, uid, inode = _DIAG_TAIL.unpack_from(data, at + 52)
    info, offset = None, at + _DIAG_MSG_SIZE
    while offset + _RTATTR.size <= len(data):
        size, kind = _RTATTR.unpack_from(data, offset)
        if size < _RTATTR.size:
            break
        if kind == INET_DIAG_INFO:
            info = parse_tcp_info(data[offset + _RTATTR.size:offset + size])
        offset += (size + 3) & ~3
    return TcpSocketDiag(
        family=FAMILY_NAMES.get(family, str(family)), state=_state(state),
        local=(socket.inet_ntop(family, src), sport), remote=(socket.inet_ntop(family, dst), dport),
        timer=TIMERS.get(timer, str(timer)), retrans=retrans, expires_ms=expires, inode=inode, uid=uid,
        rqueue=rqueue, wqueue=wqueue, info=info, cookie=high << 32 | low,
    )


def _address(family: int, text: str) -> bytes:
    """An address as inet_diag_sockid holds it: 16 bytes, an IPv4 one in the first 4."""
    return socket.inet_pton(family, text).ljust(16, b"\0")


def listeners(namespace: Namespace, port: int) -> list[TcpSocketDiag]:
    """The LISTEN sockets on ``port`` in ``namespace`` (IPv4 and IPv6)."""
    return [s for s in tcp_sockets(namespace, states=1 << SS_LISTEN, info=False) if s.local[1] == port]


def _same_address(a: str, b: str) -> bool:
    """``a`` equals ``b``, also when one is the other's IPv4-mapped IPv6 form."""
    def strip(x: str) -> str:
        return x[7:] if x.startswith("::ffff:") else x

    return strip(a) == strip(b)


def accepts(listener: TcpSocketDiag, address: str) -> bool:
    """Whether a LISTEN socket takes connections to ``address`` (its own or a wildcard address)."""
    return listener.local[0] in WILDCARDS or _same_address(listener.local[0], address)


def find_connection(
    sockets: Iterable[TcpSocketDiag], local: tuple[str, int], remote: tuple[str, int]
) -> TcpSocketDiag | None:
    """The socket with this 4-tuple (IPv4-mapped addresses match their IPv4 form)."""
    for s in sockets:
        if (s.local[1], s.remote[1]) == (local[1], remote[1]) and _same_address(s.local[0], local[0]) \
                and _same_address(s.remote[0], remote[0]) and s.state != "LISTEN":
            return s
    return None
