"""What a socket's settings mean: where each value comes from, and when a dead peer is noticed. Pure.

The times come from the model the scenarios are judged by, not a second copy:

* idle: :func:`netkit.model.keepalive_death` for the socket's effective
  settings, the peer gone right after an answered probe (the later of the two
  cases: the first unanswered probe at ``max(idle, intvl)``), counted from
  the last segment received; with TCP_USER_TIMEOUT its rule instead of
  ``cnt``.  No SO_KEEPALIVE: never.
* data in flight: :func:`netkit.model.unacked_death` for segments that vanish
  (a peer gone silent), counted from the send, with the socket's current RTO
  (``tcpi_rto``) and its maximum (``TCP_RTO_MAX_MS``, Linux 6.15+, which
  caps every backoff and ``tcp_model_timeout``'s linear part):
  TCP_USER_TIMEOUT if set, else the namespace's ``tcp_retries2`` through
  ``tcp_model_timeout``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import NetkitError
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from ..model import DataPath, FaultRule, default_rto_s, keepalive_death, unacked_death
from ..model.rto import DEFAULT_RTO_MAX_MS
from ..tcpsocket import TcpSocketDiag
from .facts import NamespaceSysctls, ProcessFacts, SocketFacts

SILENT_PEER = FaultRule(DataPath.LOST)  # the worst case: segments leave and vanish, nothing answers
UNCONNECTED = ("LISTEN", "TIME_WAIT", "CLOSE")

# where a value comes from
SOCKET = "socket"  # differs from the namespace's sysctl (or has no sysctl): set on the socket
SOCKET_OR_NAMESPACE = "socket-or-namespace"  # equals the namespace's sysctl: inherited, or set to the same value
EFFECTIVE = "effective"  # read back from the socket; its namespace's sysctls unknown, so no comparison
NO_OPTION = "no-option"  # the kernel has no such option (TCP_RTO_MAX_MS before 6.15): its constant applies
NOT_SET = "not-set"
UNKNOWN = "unknown"
NEVER = "never"

NO_PTRACE = ("the socket options cannot be read without CAP_SYS_PTRACE (pidfd_getfd needs ptrace access to the "
             "process): run netkit inspect as root with CAP_SYS_PTRACE (e.g. `sudo netkit inspect PID`; in a "
             "container add CAP_SYS_PTRACE); shown instead: sock_diag's timer (keepalive on or off, expiry, probes "
             "out), not the configured values nor TCP_USER_TIMEOUT")


@dataclass(frozen=True)
class Setting:
    value: int | None
    source: str  # SOCKET | SOCKET_OR_NAMESPACE | EFFECTIVE | NOT_SET | UNKNOWN


@dataclass
class SocketAssessment:
    fd: int | None
    netns: int | None  # the socket's namespace, where it is not its process's
    family: str
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    inode: int
    timer: str  # sock_diag's timer, described
    read_via: str  # "getsockopt" | "sock_diag"
    keepalive: bool | None  # SO_KEEPALIVE (None: unknown)
    idle: Setting
    intvl: Setting
    cnt: Setting
    user_timeout_ms: Setting
    rto_s: float
    idle_death_s: float | None  # None: never or unknown (idle_death says which)
    idle_death: str  # "13 s", "never", "unknown"
    idle_rule: str
    idle_window_s: tuple[float, float] | None
    flight_death_s: float | None
    flight_death: str
    flight_by: str  # "TCP_USER_TIMEOUT 30000 ms", "tcp_retries2 15", ...
    flight_rule: str
    flight_window_s: tuple[float, float] | None
    notes: list[str] = field(default_factory=list)
    rto_max_ms: Setting = Setting(None, UNKNOWN)  # TCP_RTO_MAX_MS, the cap of the data in flight's backoff

    @property
    def connected(self) -> bool:
        return self.state not in UNCONNECTED

    def keepalive_text(self) -> str:
        """7/2/3 (idle/intvl/cnt), with "?" for what is unknown."""
        return "/".join(str(s.value) if s.value is not None else "?" for s in (self.idle, self.intvl, self.cnt))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _provenance(value: int, inherited_from: int | None) -> Setting:
    if inherited_from is None:
        return Setting(value, EFFECTIVE)
    return Setting(value, SOCKET if value != inherited_from else SOCKET_OR_NAMESPACE)


def _timer_text(d: TcpSocketDiag) -> str:
    text = d.describe_timer()
    period = _timer_period_s(d)
    if period is not None:
        text += f" (period {period} s: idle, or intvl after an answered probe)"
    return text


def _keepalive_from_timer(d: TcpSocketDiag) -> tuple[bool | None, str | None]:
    """SO_KEEPALIVE as far as sock_diag shows it, and a note where it cannot tell."""
    if d.timer == "keepalive":
        return True, None
    if d.state == "LISTEN":
        return None, "a listening socket runs no keepalive timer: sock_diag cannot show its SO_KEEPALIVE"
    if d.timer == "none" and d.state not in UNCONNECTED:
        return False, None  # tcp_set_keepalive arms sk_timer for as long as SO_KEEPALIVE is on
    if d.timer in ("retransmit", "zero-window-probe"):
        return None, f"the {d.timer} timer hides the keepalive timer in sock_diag (one timer is reported)"
    return None, None


def assess_socket(s: SocketFacts, sysctls: NamespaceSysctls | None, kernel: KernelInfo) -> SocketAssessment:
    d = s.diag
    notes: list[str] = []
    rto_s = d.info.rto_us / 1e6 if d.info is not None and d.info.rto_us and d.state != "LISTEN" else default_rto_s(kernel)
    if s.borrowed is not None:
        b = s.borrowed
        read_via = "getsockopt"
        keepalive: bool | None = b.keepalive
        idle = _provenance(b.idle, sysctls.keepalive_time if sysctls else None)
        intvl = _provenance(b.intvl, sysctls.keepalive_intvl if sysctls else None)
        cnt = _provenance(b.cnt, sysctls.keepalive_probes if sysctls else None)
        ut = Setting(b.user_timeout_ms, SOCKET) if b.user_timeout_ms else Setting(None, NOT_SET)
        rto_max = (Setting(DEFAULT_RTO_MAX_MS, NO_OPTION) if b.rto_max_ms is None
                   else _provenance(b.rto_max_ms, sysctls.rto_max_ms if sysctls else None))
    else:
        read_via = "sock_diag"
        keepalive, why = _keepalive_from_timer(d)
        if why:
            notes.append(why)
        idle = intvl = cnt = Setting(None, UNKNOWN)
        ut = Setting(None, UNKNOWN)
        rto_max = Setting(None, UNKNOWN)
    a = SocketAssessment(
        s.fd, s.netns, d.family, d.state, d.local, d.remote, d.inode, _timer_text(d), read_via, keepalive, idle, intvl, cnt, ut,
        round(rto_s, 6), None, UNKNOWN, "", None, None, UNKNOWN, "", "", None, notes, rto_max)
    _idle_death(a, d, sysctls, kernel)
    _flight_death(a, sysctls, kernel)
    return a


def _settings(a: SocketAssessment) -> KeepaliveSettings | None:
    if None in (a.idle.value, a.intvl.value, a.cnt.value):
        return None
    assert a.idle.value is not None and a.intvl.value is not None and a.cnt.value is not None
    return KeepaliveSettings(a.idle.value, a.intvl.value, a.cnt.value, a.user_timeout_ms.value)


def _timer_period_s(d: TcpSocketDiag) -> int | None:
    """A keepalive timer's period in whole seconds (expiry + time since the last segment), if sock_diag shows it."""
    if d.timer != "keepalive" or d.info is None:
        return None
    return max(1, round((d.expires_ms + d.info.last_ack_recv_ms) / 1000))


def _idle_death(a: SocketAssessment, d: TcpSocketDiag, sysctls: NamespaceSysctls | None, kernel: KernelInfo) -> None:
    if a.keepalive is False:
        a.idle_death, a.idle_rule = NEVER, ("no SO_KEEPALIVE: an idle connection sends nothing, so a dead peer "
                                            "is never noticed while idle")
        return
    settings = _settings(a)
    if a.keepalive is None and settings is None:
        a.idle_rule = "SO_KEEPALIVE unknown"
        return
    if settings is None:  # keepalive on (sock_diag's timer), values unreadable
        a.idle_rule = "keepalive on (sock_diag's keepalive timer), its settings unreadable"
        period = _timer_period_s(d)
        if sysctls is not None and period is not None and period not in (sysctls.keepalive_time,
                                                                          sysctls.keepalive_intvl):
            a.idle_rule += (f"; the timer's period, {period} s, is neither the namespace's idle "
                            f"({sysctls.keepalive_time} s) nor its intvl ({sysctls.keepalive_intvl} s): "
                            "the socket sets its own values")
        elif sysctls is not None:
            hint = keepalive_death(KeepaliveSettings(sysctls.keepalive_time, sysctls.keepalive_intvl,
                                                     sysctls.keepalive_probes), kernel)
            a.idle_rule += (f"; {hint.expected_s:g} s if the socket kept its namespace's values "
                            f"{sysctls.keepalive_text()} and has no TCP_USER_TIMEOUT")
        return
    p = keepalive_death(settings, kernel)
    a.idle_death_s, a.idle_death, a.idle_rule, a.idle_window_s = p.expected_s, f"{p.expected_s:g} s", p.rule, p.window_s
    if a.keepalive is None:  # a listener: what accepted sockets inherit, if on
        a.idle_death = f"{p.expected_s:g} s if SO_KEEPALIVE"


def _rto_max_ms(a: SocketAssessment, sysctls: NamespaceSysctls | None) -> tuple[int | None, str]:
    """The socket's maximum RTO for the model (None: TCP_RTO_MAX) and, where it is assumed, why."""
    if a.rto_max_ms.value is not None:
        return (None if a.rto_max_ms.value == DEFAULT_RTO_MAX_MS else a.rto_max_ms.value), ""
    if sysctls is not None and sysctls.rto_max_ms is not None and sysctls.rto_max_ms != DEFAULT_RTO_MAX_MS:
        return sysctls.rto_max_ms, (f"; the socket's TCP_RTO_MAX_MS unreadable: its namespace's tcp_rto_max_ms "
                                    f"({sysctls.rto_max_ms} ms) assumed, what a socket gets when it is made")
    return None, ""


def _flight_death(a: SocketAssessment, sysctls: NamespaceSysctls | None, kernel: KernelInfo) -> None:
    ut = a.user_timeout_ms.value
    retries2 = sysctls.retries2 if sysctls else None
    rto_max_ms, assumed = _rto_max_ms(a, sysctls)
    if ut:
        a.flight_by = f"TCP_USER_TIMEOUT {ut} ms"
    elif retries2 is not None:
        a.flight_by = f"tcp_retries2 {retries2}"
    else:
        a.flight_rule = "tcp_retries2 of the socket's namespace unreadable"
        return
    if rto_max_ms is not None:
        a.flight_by += f", max RTO {rto_max_ms} ms"
    try:
        p = unacked_death(KeepaliveSettings(user_timeout_ms=ut or None), kernel, SILENT_PEER, a.family, a.rto_s,
                          None if ut else retries2, rto_max_ms)
    except NetkitError as exc:  # NotModelled: say why
        a.flight_rule = str(exc)
        return
    a.flight_death_s, a.flight_death, a.flight_rule, a.flight_window_s = (
        p.expected_s, f"{p.expected_s:g} s", p.rule + assumed, p.window_s)
    if a.user_timeout_ms.source == UNKNOWN:
        a.flight_death += " unless TCP_USER_TIMEOUT"
        a.flight_rule += "; TCP_USER_TIMEOUT unreadable: a user timeout on the socket would end it earlier or later"


@dataclass
class ProcessAssessment:
    facts: ProcessFacts
    sockets: list[SocketAssessment]
    warnings: list[str]
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return {
            "pid": f.pid, "comm": f.comm, "uid": f.uid, "verdict": self.verdict,
            "netns": f.netns, "host_netns": f.host_netns, "foreign_namespace": f.foreign_namespace,
            "sysctls": asdict(f.sysctls) if f.sysctls else None, "host_sysctls": asdict(f.host_sysctls),
            "read_via": "getsockopt" if f.borrowed else "sock_diag", "table": f.table, "attributed": f.attributed,
            "warnings": self.warnings, "notes": f.notes, "sockets": [s.to_dict() for s in self.sockets],
        }


def namespace_warnings(f: ProcessFacts) -> list[str]:
    """The container pitfall: a socket's namespace has other defaults than the host."""
    found = []
    spaces = {f.netns: (f.sysctls, f"pid {f.pid}'s network namespace")} if f.foreign_namespace else {}
    spaces.update({s.netns: (s.sysctls, f"the network namespace of fd {s.fd}") for s in f.sockets
                   if s.netns is not None and s.netns != f.host_netns})
    for inode, (sysctls, what) in spaces.items():
        diffs = sysctls.differences(f.host_sysctls) if sysctls else []
        if diffs:
            listed = ", ".join(f"{name} {mine} (host {host})" for name, mine, host in diffs)
            found.append(f"{what} (net:[{inode}]) is not the host's and its sysctls differ: {listed}; "
                         "a socket that does not set its own values gets its namespace's, not the host's")
    return found


def _worst(values: list[SocketAssessment], attr: str) -> SocketAssessment | None:
    known = [s for s in values if getattr(s, attr) is not None]
    return max(known, key=lambda s: getattr(s, attr)) if known else None


def _count(sockets: list[SocketAssessment], connected: int, listening: int) -> str:
    count = f"{len(sockets)} TCP socket{'s' if len(sockets) != 1 else ''}"
    parts = [f"{connected} connected"] * bool(connected) + [f"{listening} listening"] * bool(listening)
    return count + (f" ({', '.join(parts)})" if parts else "")


def _idle_verdict(judged: list[SocketAssessment]) -> str:
    never = [s for s in judged if s.idle_death == NEVER]
    if never:
        why = f"{len(never)} of {len(judged)} without SO_KEEPALIVE" if len(judged) > 1 else "no SO_KEEPALIVE"
        return f"dead peer never noticed while idle ({why})"
    worst = _worst(judged, "idle_death_s")
    if worst is None or any(s.idle_death_s is None for s in judged):
        on = "keepalive on, " if any(s.keepalive for s in judged) else ""
        return f"{on}time to notice a dead peer while idle unknown"
    ut = f", TCP_USER_TIMEOUT {worst.user_timeout_ms.value} ms" if worst.user_timeout_ms.value else ""
    return f"dead peer noticed within {worst.idle_death_s:g} s idle (keepalive {worst.keepalive_text()}{ut})"


def _flight_verdict(judged: list[SocketAssessment]) -> str:
    worst = _worst(judged, "flight_death_s")
    if worst is None:
        return "unknown with data in flight"
    unless = ", unless TCP_USER_TIMEOUT" if worst.user_timeout_ms.source == UNKNOWN else ""
    at_least = "at least " if any(s.flight_death_s is None for s in judged) else ""
    return f"{at_least}{worst.flight_death_s:g} s with data in flight ({worst.flight_by}{unless})"


def verdict(f: ProcessFacts, sockets: list[SocketAssessment]) -> str:
    """One line: the process, its sockets, the worst idle and in-flight detection times over its connections.

    Connections are judged; a process with only listeners is judged by what its listeners pass on to the
    connections they accept (SO_KEEPALIVE and the TCP_KEEP* values are inherited, unless the program sets
    them after accept(), as Redis does).
    """
    connected = [s for s in sockets if s.connected]
    listening = [s for s in sockets if s.state == "LISTEN"]
    head = f"pid {f.pid} {f.comm}: {_count(sockets, len(connected), len(listening))}"
    judged = connected or listening
    if not judged:
        return f"{head}; no connection to judge"
    what = "" if connected else " for connections it accepts, if it keeps the listener's options"
    degraded = "" if f.borrowed else f"; socket options unreadable {f.unreadable_why} (sock_diag's timers only)"
    return f"{head}; {_idle_verdict(judged)}, {_flight_verdict(judged)}{what}{degraded}"


def assess(f: ProcessFacts, kernel: KernelInfo) -> ProcessAssessment:
    sockets = [assess_socket(s, s.sysctls if s.netns is not None else f.sysctls, kernel) for s in f.sockets]
    return ProcessAssessment(f, sockets, namespace_warnings(f), verdict(f, sockets))
