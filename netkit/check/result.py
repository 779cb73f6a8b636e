"""A program audit's result, as data: check-server's and check-client's."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..enums import FaultName
from ..evidence.events import Event
from ..evidence.ledger import Ledger
from ..exitcodes import EXIT_FAIL, EXIT_PASS
from ..kernel import KernelInfo

# The --json results' schemas (netkit/schemas/<name>.schema.json); /1 keeps meaning what it says: keys are only added.
CHECK_SERVER_SCHEMA = "netkit.check-server/1"
CHECK_CLIENT_SCHEMA = "netkit.check-client/1"
SET_ON_SOCKET = "socket"  # ClientCheckResult.options_from: the value was set on the socket, not inherited
NO_KEEPALIVE = "no keepalive timer on the socket; a dead client would stay forever"
NO_KEEPALIVE_CLIENT = "no keepalive timer on the client's socket: this client would wait forever for a dead server"


@dataclass(kw_only=True)
class KernelClock:
    """The program's socket on the kernel's clock (:mod:`netkit.check.traced`): ``evidence`` "trace" where tracefs
    gave its keepalive timer's ledger, whose CLOSE in the timer's run is then the time judged."""

    evidence: str = "observer"
    evidence_note: str = ""  # why there is no ledger ("" with one)
    kernel_death_s: float | None = None  # the kernel's CLOSE in the socket's keepalive timer run
    rule_failures: list[str] = field(default_factory=list)  # the ledger's keepalive re-arms against the rule
    ledger: Ledger | None = None


CLOCK_KEYS = list(KernelClock.__dataclass_fields__)  # written after the audit's own keys


class _AuditData:
    """What both audits' results share: the exit status and the JSON form (one object, kernel as release + hz)."""

    kernel: KernelInfo
    timeline: list[Event]
    verdict: str
    kernel_death_s: float | None
    dead_between_s: tuple[float, float] | None
    ledger: Ledger | None

    @property
    def judged_s(self) -> tuple[float, float] | None:
        """The death judged: the kernel's CLOSE where the ledger has it, else sock_diag's bracket."""
        if self.kernel_death_s is not None:
            return (self.kernel_death_s, self.kernel_death_s)
        return self.dead_between_s

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.verdict in ("match", "measured", "survived") else EXIT_FAIL

    SCHEMA = ""  # each audit's: "netkit.check-server/1", "netkit.check-client/1" (netkit/schemas publishes them)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema": self.SCHEMA, **asdict(self)}  # type: ignore[call-overload]
        for key in CLOCK_KEYS:  # after the audit's own keys, as they were before the ledger
            data[key] = data.pop(key)
        data["ledger"] = None if self.ledger is None else self.ledger.to_dict()
        data["kernel"] = self.kernel.release
        data["hz"] = self.kernel.hz
        data["timeline"] = [e.to_dict(with_source=False, with_kind=False) for e in self.timeline]
        data["exit_code"] = self.exit_code
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass
class CheckResult(_AuditData, KernelClock):
    """``check-server``: when the kernel dropped the server's socket for a dead client."""

    SCHEMA = CHECK_SERVER_SCHEMA

    command: list[str]
    kernel: KernelInfo
    family: str
    port: int
    expect_s: float | None = None
    pid: int | None = None
    listening: list[str] = field(default_factory=list)
    server: str = ""  # address:port of the server's end of the tested connection
    client: str = ""
    timer_at_connect: dict[str, Any] | None = None  # sock_diag of the accepted socket, first look
    accept_deferred_s: float | None = None  # TCP_DEFER_ACCEPT: how long the connection stayed a request (SYN_RECV)
    options: dict[str, Any] | None = None  # read off the server's socket (pidfd_getfd + getsockopt): keepalive, idle...
    options_from: dict[str, str] = field(default_factory=dict)  # idle/intvl/cnt: SET_ON_SOCKET or the sysctl it follows
    options_unread: str = ""  # why the socket's options could not be read
    keepalive: bool = False
    inferred: dict[str, int] = field(default_factory=dict)  # idle, intvl, cnt
    inferred_from: dict[str, str] = field(default_factory=dict)
    rule: str | None = None  # netkit's model for the inferred settings
    model_expected_s: float | None = None
    model_window_s: tuple[float, float] | None = None
    fault_at_s: float | None = None
    measured_s: float | None = None  # first dump that no longer saw the socket
    dead_between_s: tuple[float, float] | None = None  # last dump that saw it .. first that did not
    probes: int | None = None  # keepalive probes outstanding at the last sight (idiag_retrans)
    counters: dict[str, int] = field(default_factory=dict)  # TcpExt deltas of the server namespace, link drop to death
    window_s: tuple[float, float] | None = None  # for --expect-s
    tolerance: str = ""
    timeline: list[Event] = field(default_factory=list)
    verdict: str = "error"  # match | mismatch | measured | no-keepalive | no-death | closed-by-server
    problems: list[str] = field(default_factory=list)
    program_exit: int | None = None
    program_output_tail: str = ""


# How a client found out that its server was dead (ClientCheckResult.cause).
CAUSES = {
    "keepalive": "the kernel's keepalive",
    "user-timeout": "TCP_USER_TIMEOUT, on the keepalive probes",
    "retransmission": "the retransmission timeout (tcp_retries2 or TCP_USER_TIMEOUT: data was in flight)",
    "peer-reset": "a RST from the server's side",
    "application-fin": "the client itself: it closed the socket (FIN sent) and kept running",
    "application-exit": "the client itself: the process exited, which closed the socket",
    "application-reset": "the client itself: it closed the socket with a RST (unread data or SO_LINGER 0)",
    "none": "it did not",
}


@dataclass
class ClientCheckResult(_AuditData, KernelClock):
    """``check-client``: how, and when, a real client noticed that its server had gone.

    Times are seconds after the last segment the client received before the
    break (the keepalive timer's own origin); events before it are negative.
    """

    SCHEMA = CHECK_CLIENT_SCHEMA

    command: list[str]  # as given, with {host} and {port}
    kernel: KernelInfo
    family: str
    port: int
    fault: str = FaultName.LINK_DOWN
    expect_s: float | None = None
    max_wait_s: float = 0.0
    middlebox_timeout_s: int | None = None  # a router between them forgets a flow idle this long (routed lab)
    started: list[str] = field(default_factory=list)  # the command as run: {host} and {port} replaced
    pid: int | None = None
    server: str = ""  # the silent server's address:port
    client: str = ""  # the client's end of the tested connection
    connections: int = 0  # the client's connections to the silent server at the break
    timer_at_break: dict[str, Any] | None = None  # sock_diag of the client's socket, last look before the break
    options: dict[str, Any] | None = None  # read off the socket (pidfd_getfd + getsockopt): keepalive, idle, ...
    options_from: dict[str, str] = field(default_factory=dict)  # idle/intvl/cnt: SET_ON_SOCKET or the sysctl it follows
    options_unread: str = ""  # why the socket's options could not be read
    namespace_sysctls: dict[str, int] = field(default_factory=dict)  # of the client's namespace
    keepalive: bool = False  # a keepalive timer ran on the socket at the break
    inferred: dict[str, int] = field(default_factory=dict)  # idle, intvl, cnt from the probes' timers
    inferred_from: dict[str, str] = field(default_factory=dict)
    last_segment: str = "idle"  # what the client last received before the break: "idle" or "probe-reply"
    rule: str | None = None
    model_expected_s: float | None = None
    model_window_s: tuple[float, float] | None = None
    fault_at_s: float | None = None
    cause: str = "none"  # one of CAUSES
    measured_s: float | None = None  # when the client found out: first look that saw the socket dead or closed
    dead_between_s: tuple[float, float] | None = None  # last look that saw it alive .. first that did not
    probes: int | None = None  # keepalive probes outstanding at the last sight (idiag_retrans)
    retransmissions: int | None = None  # or retransmissions, under a retransmit timer
    state_after: str | None = None  # the socket's state once the client closed it (FIN_WAIT1, ...)
    counters: dict[str, int] = field(default_factory=dict)  # TcpExt deltas of the client's namespace, break to end
    window_s: tuple[float, float] | None = None  # for --expect-s
    tolerance: str = ""
    timeline: list[Event] = field(default_factory=list)
    verdict: str = "error"  # match | mismatch | measured | no-keepalive | no-death | survived (behind a middlebox)
    problems: list[str] = field(default_factory=list)
    program_exited_s: float | None = None  # when the client's process exited, if it did while watched
    program_exit: int | None = None
    program_output_tail: str = ""
