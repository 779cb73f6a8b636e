"""The gate document as kselftest-style TAP 13, so kernel CI (KernelCI, LKFT) reads it like a selftest.

The result lines mirror ``tools/testing/selftests/kselftest.h``
(``ksft_test_result_code``, which puts the test name before the directive)::

    TAP version 13
    1..5
    # FAIL ipv6-idle-link-down-1/1/3: died EARLY ...      <- diagnostics come first, as ksft_print_msg
    not ok 1 netkit.ipv6-idle-link-down-1/1/3 # time=4600ms
    ok 2 netkit.ipv4-idle-blackhole-1/1/3 # time=5196ms
    ok 3 netkit.ipv4-idle-netem-loss-1/1/3 # SKIP fault netem-loss is not available here ...
    ok 4 netkit.<id> # XFAIL <reason>                      <- ksft_test_result_xfail: "ok %u # XFAIL "
    ok 5 netkit.<id> # XPASS <reason>                      <- ksft_test_result_xpass: "ok %u # XPASS "
    not ok 6 netkit.<id> # error <reason>                  <- ksft_test_result_error: "not ok %u # error "
    ok 7 netkit.<id> # SKIP inconclusive: machine late ...  <- ksft_test_result_skip (see below)
    # Totals: pass:2 fail:1 xfail:1 xpass:1 skip:2 error:1  <- ksft_print_cnts

Besides the TAP lines every line starts with ``# `` (kselftest's
``ksft_print_msg``), so a TAP consumer never mistakes a line of explain text
for a result.  When nothing can run at all the gate prints
``tap_nothing_can_run(reason)``: ``1..0 # SKIP <reason>``, kselftest's
``ksft_exit_skip`` before any plan.

kselftest has no word for *inconclusive* (the machine ran the timers late,
measured by the timer ledger, on the gate's retry too): it is neither ``ok``
(nothing was proven) nor ``not ok`` (the kernel kept the rule), so it is
written as a skip whose reason starts ``inconclusive:`` -- what kselftest
does with a test the environment could not run, what NIPA's KTAP parser
reads as ``skip``, and what the pytest plugin reports for the same case --
and counted as ``skip`` in the Totals line, which keeps kselftest's six
counters.  A diagnostic line before it says it, with the evidence.

``netkit.report.tapparse`` reads this format back strictly; the tests and
the gate's self-check run every document through it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..document.codec import document
from ..document.records import ScenarioEntry
from ..enums import GateOutcome
from .markdown import Doc, failure_details, inconclusive_text, known_text

PREFIX = "netkit."


def tap_description(scenario_id: str) -> str:
    """A TAP-safe test name: ``#`` would start a directive and a newline would end the line.

    ``#`` becomes ``_`` (kselftest consumers do not all honour TAP 14's ``\\#``
    escape), any whitespace run becomes one space.
    """
    return PREFIX + " ".join(str(scenario_id).replace("#", "_").split())


def _one_line(text: object) -> str:
    """A reason on a result line: one line, whitespace collapsed (a newline would end the TAP line)."""
    return " ".join(str(text).split())


def _diagnostics(text: str) -> list[str]:
    """Lines of free text as ``# `` lines (ksft_print_msg), none of which can pass for the Totals line."""
    lines = []
    for line in str(text).splitlines():
        if line.lstrip().startswith("Totals:"):
            line = "  " + line.lstrip()  # only the gate's own last line may read "# Totals:"
        lines.append(f"# {line}".rstrip() if line.strip() else "#")
    return lines


def _scenario_lines(number: int, scenario: ScenarioEntry) -> list[str]:
    name = tap_description(scenario.id)
    outcome = scenario.outcome
    reason = scenario.reason or ""
    time_ms = round((scenario.duration_s or 0.0) * 1000)
    known = known_text(scenario.known)
    explain = failure_details(scenario)
    if outcome == GateOutcome.PASS:
        retried = _diagnostics(f"{scenario.id}: {reason}") if reason else []  # a pass that needed the retry says so
        return retried + [f"ok {number} {name} # time={time_ms}ms"]
    if outcome == GateOutcome.SKIP:
        return [f"ok {number} {name} # SKIP {_one_line(reason or 'skipped')}"]
    if outcome == GateOutcome.INCONCLUSIVE:
        return _diagnostics(f"INCONCLUSIVE {scenario.id}: {reason} ({scenario.evidence_text})") + [
            f"ok {number} {name} # SKIP {_one_line(inconclusive_text(reason))}"]
    if outcome == GateOutcome.XFAIL:
        return _diagnostics(explain) + [f"ok {number} {name} # XFAIL {_one_line(known or reason or 'known failure')}"]
    if outcome == GateOutcome.XPASS:
        why = known or reason or "known failure"
        return _diagnostics(f"{_one_line(scenario.id)}: the known failure did not occur: {why}") + [
            f"ok {number} {name} # XPASS {_one_line(why)}"
        ]
    if outcome == GateOutcome.ERROR:
        return _diagnostics(f"{scenario.id}: ERROR after {time_ms} ms: {reason}") + [
            f"not ok {number} {name} # error {_one_line(reason or 'error')}"
        ]
    # fail, and any outcome a newer gate may add: never report what we do not understand as ok
    return _diagnostics(explain or f"{outcome}") + [f"not ok {number} {name} # time={time_ms}ms"]


KSFT_COUNTERS = (GateOutcome.PASS, GateOutcome.FAIL, GateOutcome.XFAIL, GateOutcome.XPASS, GateOutcome.SKIP,
                 GateOutcome.ERROR)  # ksft_print_cnts's six; an inconclusive is counted as the skip its line is


def totals_line(counts: Mapping[str, int]) -> str:
    """kselftest's ``ksft_print_cnts`` line (an ``inconclusive`` count, if given, adds to ``skip``)."""
    folded = {k: int(counts.get(k, 0)) for k in KSFT_COUNTERS}
    folded[GateOutcome.SKIP] += int(counts.get(GateOutcome.INCONCLUSIVE, 0))
    return "# Totals: " + " ".join(f"{k}:{folded[k]}" for k in KSFT_COUNTERS)


def to_tap(doc: Doc) -> str:
    """kselftest-style TAP 13 for a gate document: plan, one result per scenario, Totals.

    The Totals line is counted from the scenarios themselves (an unknown
    outcome counts as fail, like its ``not ok`` line), so it always agrees
    with the result lines; the document's own ``totals`` should say the same.
    """
    scenarios = document(doc).scenarios
    lines = ["TAP version 13", f"1..{len(scenarios)}"]
    counts = dict.fromkeys(GateOutcome.values(), 0)
    for number, scenario in enumerate(scenarios, 1):
        lines += _scenario_lines(number, scenario)
        outcome = scenario.outcome
        counts[outcome if outcome in counts else GateOutcome.FAIL] += 1
    lines.append(totals_line(counts))
    return "\n".join(lines) + "\n"


def tap_nothing_can_run(reason: str) -> str:
    """The whole report when no scenario can run here (kselftest's ``ksft_exit_skip``; the gate exits 4)."""
    return f"TAP version 13\n1..0 # SKIP {_one_line(reason) or 'nothing can run'}\n"
