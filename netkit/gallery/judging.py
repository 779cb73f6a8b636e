"""A gallery run's rows: each exhibit's check judged against its expectation, and the document. Pure.

The check's own JSON (``check-client --json``, ``check-server --json``)
carries the model's window for the settings read off the program's socket
and the death on the kernel's clock where it was traced: a row judges from
those, never from a second model of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..exitcodes import EXIT_CANNOT_RUN_HERE, EXIT_FAIL, EXIT_PASS
from .exhibits import KERNEL_RULE, OWN_TIMER, SURVIVES, Exhibit

SCHEMA = "netkit.gallery/1"
# Row.outcome: what the row's check showed, in the table's words
HELD, BROKEN, SKIPPED = "held", "broken", "skipped"


@dataclass
class Row:
    """One exhibit's result: the table's line and the evidence behind it."""

    name: str
    program: str
    version: str
    ecosystem: str
    side: str
    settings: str
    topology: str
    expect: str  # the exhibit's expectation (KERNEL_RULE, SURVIVES, OWN_TIMER)
    advice: str
    outcome: str = SKIPPED  # HELD (the expectation held), BROKEN (it did not), SKIPPED (not run here)
    why: str = ""  # for BROKEN and SKIPPED: what went wrong, or what to install
    cause: str | None = None  # how the connection ended (check-client's CAUSES; "none": still up)
    rule: str | None = None  # netkit's model for the settings read off the socket
    model_expected_s: float | None = None
    model_window_s: list[float] | None = None
    measured_s: float | None = None  # the kernel's CLOSE where traced, else the end of sock_diag's bracket
    evidence: str | None = None  # "trace" (the timer ledger) or "observer" (sock_diag)
    check: dict[str, Any] = field(default_factory=dict)  # the check's whole JSON result

    @property
    def expected_text(self) -> str:
        if self.expect == SURVIVES:
            return "survives"
        if self.expect == OWN_TIMER:
            return "measured, no kernel rule"
        if self.model_window_s is None:
            return "the kernel's rule"
        low, high = self.model_window_s
        return f"{self.model_expected_s:g} s [{low:.3f}, {high:.3f}]"


def server_cause(check: dict[str, Any]) -> str:
    """How check-server's socket died: TCP_USER_TIMEOUT on the probes where the socket held one, else keepalive."""
    options = check.get("options") or {}
    return "user-timeout" if options.get("user_timeout_ms") else "keepalive"


def death_s(check: dict[str, Any]) -> tuple[float, float] | None:
    """The death judged: the kernel's CLOSE where the ledger has it, else sock_diag's bracket."""
    if check.get("kernel_death_s") is not None:
        return (check["kernel_death_s"], check["kernel_death_s"])
    bracket = check.get("dead_between_s")
    return None if bracket is None else (bracket[0], bracket[1])


def judge(exhibit: Exhibit, check: dict[str, Any], version: str) -> Row:
    """The row for one finished check: did the exhibit's expectation hold?"""
    row = Row(exhibit.name, exhibit.program, version, exhibit.ecosystem, exhibit.side, exhibit.settings,
              exhibit.topology, exhibit.expect, exhibit.advice, check=check)
    if check.get("verdict") == "error":
        row.outcome, row.why = BROKEN, f"the check could not run: {check.get('error')}"
        return row
    row.cause = check.get("cause") if exhibit.side == "client" else server_cause(check)
    row.rule, row.model_expected_s = check.get("rule"), check.get("model_expected_s")
    row.model_window_s = check.get("model_window_s")
    row.evidence = check.get("evidence")
    judged = death_s(check)
    row.measured_s = None if judged is None else judged[1]
    row.why = _broken(exhibit, check, row, judged)
    row.outcome = BROKEN if row.why else HELD
    return row


def _broken(exhibit: Exhibit, check: dict[str, Any], row: Row, judged: tuple[float, float] | None) -> str:
    """Why the expectation did not hold ("" when it did)."""
    if exhibit.expect == SURVIVES:
        return "" if check.get("verdict") == "survived" else f"did not survive: {'; '.join(check.get('problems', []))}"
    if row.cause not in exhibit.causes:
        return f"ended by {row.cause}, where {' or '.join(exhibit.causes)} was expected"
    if judged is None:
        return "no death was measured"
    if exhibit.expect != KERNEL_RULE:
        return ""
    if row.model_window_s is None:
        return "netkit had no model window for the settings (were they read off the socket?)"
    low, high = row.model_window_s
    if judged[1] < low:
        return f"died early: {judged[1]:.3f} s before netkit's window [{low:.3f}, {high:.3f}] s"
    if judged[0] > high:
        return f"died late: {judged[0]:.3f} s after netkit's window [{low:.3f}, {high:.3f}] s"
    if check.get("rule_failures"):
        return "; ".join(check["rule_failures"])
    return ""


def skipped(exhibit: Exhibit, reason: str) -> Row:
    return Row(exhibit.name, exhibit.program, "", exhibit.ecosystem, exhibit.side, exhibit.settings,
               exhibit.topology, exhibit.expect, exhibit.advice, SKIPPED, reason)


@dataclass
class GalleryDocument:
    """What ``netkit gallery --json`` writes: the kernel, the rows, the wall time."""

    kernel: str
    hz: int
    rows: list[Row]
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when every row ran and held; 1 when one broke; 4 when some could not run here and none broke."""
        if any(r.outcome == BROKEN for r in self.rows):
            return EXIT_FAIL
        return EXIT_CANNOT_RUN_HERE if any(r.outcome == SKIPPED for r in self.rows) else EXIT_PASS

    def to_json(self) -> str:
        rows = [{**asdict(r), "expected": r.expected_text} for r in self.rows]
        return json.dumps({"schema": SCHEMA, "kernel": self.kernel, "hz": self.hz, "wall_s": self.wall_s,
                           "rows": rows}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> GalleryDocument:
        data = json.loads(text)
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema {data.get('schema')!r})")
        fields = set(Row.__dataclass_fields__)
        rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in data["rows"]]
        return cls(data["kernel"], data["hz"], rows, data.get("wall_s", 0.0))


__all__ = ["BROKEN", "HELD", "SCHEMA", "SKIPPED", "GalleryDocument", "Row", "judge", "skipped"]
