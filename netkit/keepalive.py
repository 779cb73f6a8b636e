"""Keepalive settings as one validated value, applied to a socket and read back.

The ranges are the kernel's own (``include/net/tcp.h``: MAX_TCP_KEEPIDLE,
MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT); a value outside them would be refused by
setsockopt with a bare EINVAL, so we refuse it first with a message that names
the field, the value and the range.  After setting, we read every option back
with getsockopt: the kit proves the kernel accepted what it claims to test.
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing.TypeGuard is Python 3.10's: named for the checker only
    from typing import TypeGuard

from .errors import KernelRefused, SettingError

MAX_TCP_KEEPIDLE = 32767
MAX_TCP_KEEPINTVL = 32767
MAX_TCP_KEEPCNT = 127
MAX_USER_TIMEOUT_MS = 2**31 - 1
KERNEL_DEFAULTS = {"idle": 7200, "intvl": 75, "cnt": 9}  # tcp_sk_init(), per namespace
KEEPALIVE_SYSCTLS = {  # field -> the namespace's sysctl a socket without its own value follows
    "idle": "net.ipv4.tcp_keepalive_time", "intvl": "net.ipv4.tcp_keepalive_intvl", "cnt": "net.ipv4.tcp_keepalive_probes",
}
RETRIES2_SYSCTL = "net.ipv4.tcp_retries2"  # beside them: the retransmission deadline an idle socket's data meets

RANGES = {
    "idle": (1, MAX_TCP_KEEPIDLE, "TCP_KEEPIDLE", "s"),
    "intvl": (1, MAX_TCP_KEEPINTVL, "TCP_KEEPINTVL", "s"),
    "cnt": (1, MAX_TCP_KEEPCNT, "TCP_KEEPCNT", ""),
}


def whole_in(value: object, low: int, high: int) -> TypeGuard[int]:
    """``value`` is a whole number (an int, not a bool) in ``low..high``: every setting netkit takes is one."""
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


@dataclass(frozen=True)
class KeepaliveSettings:
    """SO_KEEPALIVE with TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT (and TCP_USER_TIMEOUT).

    ``idle`` and ``intvl`` are seconds, ``cnt`` a probe count,
    ``user_timeout_ms`` milliseconds (None: not set; 0 means "kernel default").
    """

    idle: int = 1
    intvl: int = 1
    cnt: int = 10
    user_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        for field, (low, high, option, unit) in RANGES.items():
            value = getattr(self, field)
            if not whole_in(value, low, high):
                unit_text = " " + unit if unit else ""
                raise SettingError(f"{field} ({option})", value, f"the kernel accepts whole numbers {low}..{high}{unit_text}")
        ut = self.user_timeout_ms
        if ut is not None and not whole_in(ut, 0, MAX_USER_TIMEOUT_MS):
            raise SettingError("user_timeout_ms (TCP_USER_TIMEOUT)", ut,
                               f"the kernel accepts whole numbers 0..{MAX_USER_TIMEOUT_MS} ms")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.user_timeout_ms is None:
            del data["user_timeout_ms"]
        return data

    def apply(self, sock: socket.socket) -> KeepaliveSettings:
        """Set the options on ``sock``, read them back, and return what the kernel holds.

        The per-socket values are set before SO_KEEPALIVE so the keepalive
        timer is armed once, with the right idle time.
        """
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, self.idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, self.intvl)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, self.cnt)
        if self.user_timeout_ms is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.user_timeout_ms)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        held = read_keepalive(sock)
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE):
            raise KernelRefused("SO_KEEPALIVE reads back as 0 after setting it")
        if self.user_timeout_ms is None:
            held = KeepaliveSettings(held.idle, held.intvl, held.cnt, None)
        if held != self:
            raise KernelRefused(f"kernel holds {held} after setting {self}")
        return held


def read_keepalive(sock: socket.socket) -> KeepaliveSettings:
    """The keepalive values the kernel holds for ``sock`` (getsockopt)."""
    get = sock.getsockopt
    return KeepaliveSettings(
        idle=get(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        intvl=get(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        cnt=get(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        user_timeout_ms=get(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
    )
