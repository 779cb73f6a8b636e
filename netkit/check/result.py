"""A program audit's result (check-server today; check-client tomorrow), as data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..evidence.events import Event
from ..kernel import KernelInfo

EXIT_MATCH, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2
NO_KEEPALIVE = "no keepalive timer on the socket; a dead client would stay forever"


@dataclass
class CheckResult:
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

    @property
    def exit_code(self) -> int:
        return EXIT_MATCH if self.verdict in ("match", "measured") else EXIT_MISMATCH

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kernel"] = self.kernel.release
        data["hz"] = self.kernel.hz
        data["timeline"] = [e.to_dict(with_source=False) for e in self.timeline]
        data["exit_code"] = self.exit_code
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
