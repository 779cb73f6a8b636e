"""``/proc/PID/net/tcp`` and ``tcp6`` parsed into sock_diag's records. Pure (text in, records out).

The fallback table where netkit cannot enter a process's network namespace
(its ``/proc/PID/ns/net`` needs ptrace access): ``/proc/PID/net`` is that
namespace's view and readable without it.  ``get_tcp4_sock``
(net/ipv4/tcp_ipv4.c) prints, per socket: addresses as the raw 32-bit words
in host byte order, ports in hex, the state, ``timer_active`` (1 retransmit,
2 keepalive, 3 TIME_WAIT, 4 zero-window probe -- sock_diag's numbering),
the expiry in clock ticks (USER_HZ, 100 a second), ``icsk_retransmits``,
the uid, ``icsk_probes_out`` and the inode.  No TCP_INFO: ``info`` is None.
"""

from __future__ import annotations

import ipaddress
import sys

from ..tcpsocket import TCP_STATES, TIMERS, TcpSocketDiag

USER_HZ = 100  # clock_t: jiffies_delta_to_clock_t
CLOCK_T_SIGN = 1 << 63  # a timer already due prints as a negative clock_t (%08lX)


def _words(hexed: str) -> bytes:
    """The address's bytes: each 32-bit word was printed as a host-order integer."""
    raw = b"".join(int(hexed[i:i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(hexed), 8))
    return raw


def _endpoint(field: str) -> tuple[str, int]:
    address, port = field.split(":")
    return str(ipaddress.ip_address(_words(address))), int(port, 16)


def parse_proc_net_tcp(text: str, family: str) -> list[TcpSocketDiag]:
    """Every row of a ``/proc/net/tcp`` (``family`` "ipv4") or ``tcp6`` ("ipv6") text."""
    found = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        timer, when = (int(x, 16) for x in f[5].split(":"))
        if when & CLOCK_T_SIGN:
            when = 0
        tx, rx = (int(x, 16) for x in f[4].split(":"))
        timer_name = TIMERS.get(timer, str(timer))
        retransmits, probes_out = int(f[6], 16), int(f[8]) if f[8].lstrip("-").isdigit() else 0
        found.append(TcpSocketDiag(
            family=family, state=TCP_STATES.get(int(f[3], 16), f[3]), local=_endpoint(f[1]), remote=_endpoint(f[2]),
            timer=timer_name,
            retrans=probes_out if timer_name in ("keepalive", "zero-window-probe") else retransmits,
            expires_ms=when * 1000 // USER_HZ if timer else 0, inode=int(f[9]), uid=int(f[7]),
            rqueue=rx, wqueue=tx, info=None))
    return found
