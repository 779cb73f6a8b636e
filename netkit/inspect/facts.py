"""What ``netkit inspect`` read about a process, as data. Pure: no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..keepalive import KEEPALIVE_SYSCTLS, RETRIES2_SYSCTL
from ..model.rto import RTO_MAX_MS_SYSCTL, RTO_MIN_US_SYSCTL
from ..tcpsocket import TcpSocketDiag

SYSCTLS = {  # field -> sysctl, all per network namespace
    "keepalive_time": KEEPALIVE_SYSCTLS["idle"],
    "keepalive_intvl": KEEPALIVE_SYSCTLS["intvl"],
    "keepalive_probes": KEEPALIVE_SYSCTLS["cnt"],
    "retries2": RETRIES2_SYSCTL,
    "rto_max_ms": RTO_MAX_MS_SYSCTL,  # Linux 6.15+: None where the kernel has no such sysctl
    "rto_min_us": RTO_MIN_US_SYSCTL,  # Linux 6.11+: likewise
}
OPTIONAL_SYSCTLS = ("rto_max_ms", "rto_min_us")  # absent on older kernels: read as None


@dataclass(frozen=True)
class NamespaceSysctls:
    """The TCP sysctls that decide an inherited keepalive setting and the retransmission deadline."""

    keepalive_time: int
    keepalive_intvl: int
    keepalive_probes: int
    retries2: int
    rto_max_ms: int | None = None  # new sockets' maximum RTO (None: no such sysctl, TCP_RTO_MAX's 120 s)
    rto_min_us: int | None = None  # new sockets' minimum RTO (None: no such sysctl, TCP_RTO_MIN's 200 ms)

    def differences(self, other: NamespaceSysctls) -> list[tuple[str, int, int]]:
        """(sysctl, this value, the other's) for every sysctl that differs."""
        return [(name, getattr(self, f), getattr(other, f)) for f, name in SYSCTLS.items()
                if getattr(self, f) != getattr(other, f)]

    def keepalive_text(self) -> str:
        return f"{self.keepalive_time}/{self.keepalive_intvl}/{self.keepalive_probes}"


@dataclass(frozen=True)
class Borrowed:
    """getsockopt on a borrowed fd: what the kernel reports for the socket (effective values, see the package doc)."""

    keepalive: bool  # SO_KEEPALIVE
    idle: int  # TCP_KEEPIDLE, s
    intvl: int  # TCP_KEEPINTVL, s
    cnt: int  # TCP_KEEPCNT
    user_timeout_ms: int  # TCP_USER_TIMEOUT, 0 = not set
    rto_max_ms: int | None = None  # TCP_RTO_MAX_MS (None: the kernel has no such option: TCP_RTO_MAX, 120 s)


@dataclass
class SocketFacts:
    diag: TcpSocketDiag  # sock_diag's record (or /proc/PID/net/tcp's, without TCP_INFO)
    fd: int | None = None  # the process's fd for it (None: fds unreadable)
    borrowed: Borrowed | None = None
    borrow_error: str | None = None  # why the options could not be read
    netns: int | None = None  # set when the socket is in another namespace than its process
    sysctls: NamespaceSysctls | None = None  # that namespace's


@dataclass
class ProcessFacts:
    pid: int
    comm: str
    uid: int
    netns: int | None  # inode of /proc/PID/ns/net; None: not readable
    host_netns: int  # netkit's own namespace (the host's, normally)
    sysctls: NamespaceSysctls | None  # of the process's namespace; None: not readable
    host_sysctls: NamespaceSysctls
    sockets: list[SocketFacts] = field(default_factory=list)
    attributed: bool = True  # the sockets are the process's own fds (False: its uid's in its namespace)
    table: str = "sock_diag"  # or "/proc/PID/net/tcp"
    borrowed: bool = False  # the options were read with pidfd_getfd
    unreadable_why: str = "without CAP_SYS_PTRACE"  # why not, when not
    notes: list[str] = field(default_factory=list)

    @property
    def foreign_namespace(self) -> bool:
        return self.netns is not None and self.netns != self.host_netns
