"""A strict reader for the TAP that ``netkit.report.tap`` writes (kselftest-style TAP 13).

Lenient TAP consumers accept almost anything and silently count a garbled
line as nothing, which is how a CI run with a broken report goes green.  This
parser accepts exactly the subset kselftest and netkit emit and raises
``TapError(line_no, msg)`` on anything else, naming the line:

* the first line is ``TAP version 13`` (or 14); a second version line is an error;
* one plan ``1..N`` (``1..0 # SKIP reason`` when nothing ran), before the
  first result or after the last, and N equals the number of results
  (unless the producer said ``Bail out!``);
* results ``ok N desc`` / ``not ok N desc`` numbered 1, 2, 3... with no gap
  or repeat, optionally followed by `` # `` and either a directive —
  ``SKIP``, ``XFAIL``, ``XPASS``, ``TODO`` (upper case) or kselftest's
  ``error`` on a ``not ok`` line — then a reason, or ``time=<n>ms``; a
  comment introduced by ``#  `` (two spaces, KTAP's "no directive") is free text;
* every other line is a diagnostic starting with ``# `` (or a bare ``#``);
  diagnostics attach to the result that follows them, as kselftest prints
  its messages before the result line;
* ``# Totals: pass:P fail:F xfail:X xpass:XP skip:S error:E`` (kselftest's
  ``ksft_print_cnts``) comes at most once, after the results, and must agree
  with them.

Written from the TAP 13 / KTAP specifications and kselftest.h's output
formats; no code is taken from the kernel's ``kunit_parser.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DIRECTIVES = ("SKIP", "XFAIL", "XPASS", "TODO")
TOTALS_KEYS = ("pass", "fail", "xfail", "xpass", "skip", "error")

_VERSION = re.compile(r"^TAP version (\d+)$")
_PLAN = re.compile(r"^1\.\.(?P<count>\d+)(?P<skip> # SKIP(?: (?P<reason>.*))?)?$")
_RESULT = re.compile(r"^(ok|not ok) (\d+)(?: (?:- )?([^#]*?))?(?: ?#(.*))?$")
_TOTALS = re.compile(
    r"^# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) error:(\d+)$"
)
_TIME = re.compile(r"^time=(\d+)ms$")
_WORD = re.compile(r"^(\S+)(?: (.*))?$")


class TapError(ValueError):
    """The TAP text breaks a rule; ``line_no`` (1-based) says where, ``msg`` says which rule."""

    def __init__(self, line_no: int, msg: str) -> None:
        super().__init__(f"line {line_no}: {msg}")
        self.line_no = line_no
        self.msg = msg


@dataclass
class TapResult:
    """One ``ok``/``not ok`` line and the diagnostics printed just before it."""

    number: int
    ok: bool
    description: str
    directive: str | None = None  # SKIP, XFAIL, XPASS, TODO or "error"
    reason: str | None = None
    time_ms: int | None = None
    comment: str | None = None  # free text after "#  " (no directive)
    diagnostics: list[str] = field(default_factory=list)
    line_no: int = 0

    @property
    def outcome(self) -> str:
        """The kselftest counter this line increments (pass, fail, xfail, xpass, skip, error)."""
        if self.directive == "SKIP":
            return "skip"
        if self.directive == "error":
            return "error"
        if self.directive in ("XFAIL", "XPASS"):
            return self.directive.lower()
        if self.directive == "TODO":  # TAP: a failing TODO is expected, a passing one is news
            return "xpass" if self.ok else "xfail"
        return "pass" if self.ok else "fail"


@dataclass
class TapRun:
    """A whole TAP stream: version, plan, results, the Totals line, loose diagnostics."""

    version: int
    plan: int
    results: list[TapResult] = field(default_factory=list)
    plan_skip_reason: str | None = None
    totals: dict[str, int] | None = None
    diagnostics: list[str] = field(default_factory=list)  # after the last result, not attached
    bail_out: str | None = None

    def counts(self) -> dict[str, int]:
        """Results per outcome, counted from the lines (what a Totals line must say)."""
        counts = dict.fromkeys(TOTALS_KEYS, 0)
        for result in self.results:
            counts[result.outcome] += 1
        return counts


def _parse_comment(line_no: int, ok: bool, comment: str, result: TapResult) -> None:
    """Fill directive/reason/time from what follows ``#`` on a result line."""
    if comment.startswith("  "):  # KTAP: "#  text" means no directive, just diagnostic data
        result.comment = comment[2:]
        return
    if not comment.startswith(" ") or not comment.strip():
        raise TapError(line_no, f"'#' must be followed by one space and a directive, got {comment!r}")
    text = comment[1:]
    timing = _TIME.match(text)
    if timing:
        result.time_ms = int(timing.group(1))
        return
    word_match = _WORD.match(text)
    word, rest = (word_match.group(1), word_match.group(2)) if word_match else (text, None)
    if word in DIRECTIVES:
        if word in ("XFAIL", "XPASS") and not ok:
            raise TapError(line_no, f"{word} is reported on an 'ok' line (kselftest: \"ok %u # {word} \")")
    elif word == "error":
        if ok:
            raise TapError(line_no, "error is reported on a 'not ok' line (kselftest: \"not ok %u # error \")")
    else:
        raise TapError(
            line_no, f"unknown directive {word!r}: expected one of {', '.join(DIRECTIVES)}, error, or time=<n>ms"
        )
    result.directive = word
    result.reason = rest


def parse_tap(text: str) -> TapRun:
    """Parse kselftest-style TAP 13 strictly; raise ``TapError`` naming the first offending line."""
    lines = text.splitlines()
    if not lines:
        raise TapError(1, "empty input: expected 'TAP version 13'")
    version_match = _VERSION.match(lines[0])
    if not version_match or version_match.group(1) not in ("13", "14"):
        raise TapError(1, f"expected 'TAP version 13' as the first line, got {lines[0]!r}")
    run = TapRun(version=int(version_match.group(1)), plan=-1)
    plan_line = totals_line = 0
    trailing_plan = False
    pending: list[str] = []
    for line_no, line in enumerate(lines[1:], 2):
        if _VERSION.match(line):
            raise TapError(line_no, "duplicate version line")
        if run.bail_out is not None and not line.startswith("#"):
            raise TapError(line_no, "nothing but diagnostics may follow 'Bail out!'")
        plan = _PLAN.match(line)
        if plan:
            if plan_line:
                raise TapError(line_no, f"duplicate plan (the first is on line {plan_line})")
            run.plan, plan_line, trailing_plan = int(plan.group("count")), line_no, bool(run.results)
            if plan.group("skip"):
                if run.plan != 0:
                    raise TapError(line_no, "only an empty plan (1..0) can carry SKIP")
                run.plan_skip_reason = plan.group("reason") or ""
            continue
        result_match = _RESULT.match(line)
        if result_match:
            if trailing_plan:
                raise TapError(line_no, f"result after the trailing plan on line {plan_line}")
            if totals_line:
                raise TapError(line_no, f"result after the Totals line (line {totals_line})")
            ok = result_match.group(1) == "ok"
            number = int(result_match.group(2))
            expected = len(run.results) + 1
            if number != expected:
                seen = any(r.number == number for r in run.results)
                raise TapError(
                    line_no, f"test number {number} is {'duplicated' if seen else 'out of order'}: expected {expected}"
                )
            result = TapResult(number, ok, (result_match.group(3) or "").strip(), line_no=line_no)
            if result_match.group(4) is not None:
                _parse_comment(line_no, ok, result_match.group(4), result)
            result.diagnostics, pending = pending, []
            run.results.append(result)
            continue
        if line.startswith("Bail out!"):
            run.bail_out = line[len("Bail out!"):].strip()
            continue
        if line.startswith("# Totals:"):
            totals = _TOTALS.match(line)
            if not totals:
                raise TapError(line_no, "malformed Totals line: expected "
                               "'# Totals: pass:P fail:F xfail:X xpass:XP skip:S error:E'")
            if totals_line:
                raise TapError(line_no, f"duplicate Totals line (the first is on line {totals_line})")
            run.totals = dict(zip(TOTALS_KEYS, map(int, totals.groups()), strict=True))
            totals_line = line_no
            counted = run.counts()
            if run.totals != counted:
                diff = ", ".join(f"{k} {run.totals[k]} != {counted[k]}" for k in TOTALS_KEYS if run.totals[k] != counted[k])
                raise TapError(line_no, f"Totals disagree with the results ({diff})")
            continue
        if line == "#" or line.startswith("# "):
            pending.append(line[2:])
            continue
        raise TapError(line_no, f"not a TAP line and not a '# ' diagnostic: {line!r}")
    run.diagnostics = pending
    if not plan_line:
        raise TapError(len(lines) + 1, "no plan line (1..N)")
    if run.plan != len(run.results) and run.bail_out is None:
        raise TapError(plan_line, f"plan 1..{run.plan} but {len(run.results)} results")
    return run
