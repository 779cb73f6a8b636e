"""From what happened to a scenario to its one outcome: pass, fail, xfail, xpass, skip, error or inconclusive.

Every front end (the summary, JSON, JUnit, TAP, HTML, the exit status) reads
the outcome decided here, as the kernel selftests map KsftSkipEx /
KsftXfailEx once in their runner loop.  The rules:

- **skip**: the scenario cannot run here (a kernel feature is missing, or
  netkit has no defensible rule for it), or a known difference says to skip it.
- **error**: a run broke off (an exception) or missed its deadline.
- **pass**: every run (``--repeat``) passed; **fail**: any did not.  A pass
  that needed the gate's retry (:mod:`.retry`) says so in its reason.
- **inconclusive**: every failing run was *machine late* -- the timer ledger
  measured the softirq's lateness, and with it taken out the run passes --
  on the first pass and again on the gate's one retry.  The kernel kept the
  rule; the machine could not show it.  Never a pass (nothing was proven),
  never the kernel's failure; its own exit status (3), below fail and error.
- On a slow machine (``KSFT_MACHINE_SLOW=yes`` or ``--slow-machine``, e.g.
  under emulation) a run *without a ledger* (evidence: observer) that failed
  *only* by dying late -- right error, right count, after the window -- is an
  **xfail**, with the lateness, as the kernel's packetdrill runner does.
  With a ledger the lateness is measured instead of excused: such a run is
  machine late (inconclusive) or the kernel's failure.  Early deaths, wrong
  errors and wrong counts still fail.
- A known difference (``--known FILE``) that matches turns a fail into
  **xfail** with its reason, and a pass into **xpass** (the difference is
  gone: say so, never pass silently).
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass

from ..enums import GateOutcome
from ..errors import InputError
from ..exitcodes import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS
from .retry import inconclusive_reason, machine_late_only
from .run import ScenarioRuns

SLOW_MACHINE_ENV = "KSFT_MACHINE_SLOW"


def slow_machine_from_environment() -> bool:
    """kselftest's convention: KSFT_MACHINE_SLOW=yes marks an emulated or otherwise slow machine."""
    return os.environ.get(SLOW_MACHINE_ENV, "").lower() in ("yes", "y", "1", "true")


@dataclass(frozen=True)
class Known:
    """A known difference (kdevops / LKFT style): scenarios on kernels expected to differ, and why."""

    scenario: str  # glob over scenario ids
    kernel: str  # glob over kernel releases
    outcome: str  # "xfail" or "skip"
    reason: str
    link: str = ""

    def matches(self, scenario_id: str, release: str) -> bool:
        return fnmatch.fnmatchcase(scenario_id, self.scenario) and fnmatch.fnmatchcase(release, self.kernel)


class KnownFileError(InputError):
    """A --known file that cannot be read as intended."""


def load_known(path: str) -> list[Known]:
    """``[[known]]`` tables with scenario, kernel (default "*"), outcome (xfail|skip), reason, link.

    A mistake is reported with the file, the line and the key, as in a matrix file.
    """
    from .matrix_file import line_of  # the matrix file's reader finds lines the same way

    try:
        with open(path, "rb") as f:
            text = f.read().decode()
    except OSError as exc:
        raise KnownFileError(f"known-differences file {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise KnownFileError(f"{path}: not valid TOML: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KnownFileError(f"{path}: not valid TOML: {exc}") from None
    unknown_top = [key for key in data if key != "known"]
    if unknown_top:
        raise KnownFileError(f"{path}:{line_of(text, None, unknown_top[0])}: unknown top-level key {unknown_top[0]!r}: "
                             "write each known difference as a [[known]] table")
    tables = data.get("known", [])
    if not isinstance(tables, list):
        raise KnownFileError(f"{path}:{line_of(text, None, 'known')}: 'known' = {tables!r}: "
                             "write each known difference as a [[known]] table")
    entries = []
    for number, table in enumerate(tables):
        def where(key: str | None, number: int = number) -> str:
            return f"{path}:{line_of(text, number, key, 'known')}: [[known]] #{number + 1}"

        if not isinstance(table, dict):
            raise KnownFileError(f"{where(None)}: {table!r} is not a table: write it as a [[known]] table")
        unknown = set(table) - {"scenario", "kernel", "outcome", "reason", "link"}
        if unknown:
            key = sorted(unknown)[0]
            raise KnownFileError(f"{where(key)}: unknown key {key!r}; allowed: scenario, kernel, outcome, reason, link")
        for key in ("scenario", "outcome", "reason"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise KnownFileError(f"{where(key if key in table else None)}: {key!r} is required (a non-empty string)")
        for key in ("kernel", "link"):
            if key in table and not isinstance(table[key], str):
                raise KnownFileError(f"{where(key)}: {key!r} = {table[key]!r}: give a string")
        if table["outcome"] not in ("xfail", "skip"):
            raise KnownFileError(f"{where('outcome')}: outcome {table['outcome']!r}: use \"xfail\" or \"skip\"")
        entries.append(Known(table["scenario"], table.get("kernel", "*"), table["outcome"], table["reason"],
                             table.get("link", "")))
    if not entries:
        raise KnownFileError(f"{path}: no [[known]] table")
    return entries


def find_known(known: list[Known], scenario_id: str, release: str) -> Known | None:
    return next((k for k in known if k.matches(scenario_id, release)), None)


@dataclass(frozen=True)
class Outcome:
    outcome: GateOutcome
    reason: str | None = None
    known: Known | None = None


def decide(runs: ScenarioRuns, *, slow_machine: bool, known: Known | None = None) -> Outcome:
    """The scenario's one outcome; see the module docstring for the rules."""
    if known is not None and known.outcome == "skip":
        return Outcome(GateOutcome.SKIP, f"known difference: {known.reason}", known)
    if runs.skipped is not None:
        return Outcome(GateOutcome.SKIP, runs.skipped)
    if runs.errors:
        return Outcome(GateOutcome.ERROR, runs.errors[0])
    failing = [r for r in runs.results if not r.passed]
    first_late = runs.retried[0].machine_late if runs.retried else None
    if not failing:
        if known is not None:
            return Outcome(GateOutcome.XPASS, f"known difference no longer seen: {known.reason}", known)
        if runs.retried:
            return Outcome(GateOutcome.PASS, f"passed on the gate's retry; the first run was {inconclusive_reason(first_late)}")
        return Outcome(GateOutcome.PASS)
    if known is not None:
        return Outcome(GateOutcome.XFAIL, f"known difference: {known.reason}", known)
    if machine_late_only(failing):
        reason = inconclusive_reason(failing[0].machine_late)
        if runs.retried:
            reason += f"; on the gate's retry too (the first run: {inconclusive_reason(first_late)})"
        return Outcome(GateOutcome.INCONCLUSIVE, reason)
    if slow_machine and all(r.late_only and r.evidence != "trace" for r in failing):
        worst = max(r.late_by_s or 0.0 for r in failing)
        return Outcome(GateOutcome.XFAIL, f"late by {worst * 1000:.0f} ms past the window's end, on a slow machine "
                                f"({SLOW_MACHINE_ENV}=yes); the error and the count matched the rule")
    return Outcome(GateOutcome.FAIL, "; ".join(failing[0].failures) or "failed")


def exit_status(outcomes: Iterable[str], regression: bool = False) -> int:
    """The gate's exit status: 1 for a fail, an error or a regression, over 3 for an inconclusive, over 0."""
    found = set(outcomes)
    if regression or GateOutcome.FAIL in found or GateOutcome.ERROR in found:
        return EXIT_FAIL
    return EXIT_INCONCLUSIVE if GateOutcome.INCONCLUSIVE in found else EXIT_PASS
