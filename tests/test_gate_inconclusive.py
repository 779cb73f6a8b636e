"""The timer ledger downstream of a result: its JSON, the gate document, the retry, *inconclusive*, every report.

Pure, no root: the results are built by hand with a hand-written ledger
(:mod:`synthetic_ledger`: a 1/1/3 keepalive death, on time or with the
killing timer run late by its softirq), the gate's runs are given to
``decide`` and ``retry`` directly, and the documents are built from them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from synthetic_ledger import keepalive_ledger, keepalive_result

from netkit.document.codec import dump, from_dict, load, run_from_dict, to_dict
from netkit.document.records import GATE_SCHEMA, GateDocument, GateRun
from netkit.enums import GateOutcome
from netkit.evidence.ledger import Ledger
from netkit.exitcodes import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS
from netkit.gate import matrix
from netkit.gate.diff import compare, format_diff
from netkit.gate.document import build, scenario_entry
from netkit.gate.merge import Part, merge
from netkit.gate.outcome import decide, exit_status
from netkit.gate.retry import inconclusive_reason, needs_retry, retry
from netkit.gate.run import ScenarioRuns
from netkit.gate.summary import format_summary
from netkit.kernel import KernelInfo
from netkit.report import html_scenario
from netkit.report.html import to_html
from netkit.report.junit import to_junit
from netkit.report.markdown import to_markdown
from netkit.report.nipa import nipa_document
from netkit.report.side_by_side import format_table
from netkit.report.tap import to_tap
from netkit.report.tapparse import parse_tap

DATA = Path(__file__).parent / "data"
SCENARIO = matrix.CORE[0]
KERNEL = KernelInfo("6.18.0-test", 250, "pinned")


def run_of(late_s: float = 0.0, **changes: object) -> GateRun:
    """A gate run as the gate's worker gives it: the result's JSON and its explain text."""
    result = keepalive_result(late_s, **changes)
    return run_from_dict({**result.to_dict(), "explain": result.explain()})


ON_TIME = run_of(0.0)
LATE = run_of(0.060)  # the killing run 60 ms late: fails as measured, passes with the lateness taken out
WRONG_ERROR = run_of(0.0, error="ECONNRESET")  # the kernel's failure, however punctual the machine
OBSERVER_LATE = run_of(0.060, ledger=False)  # no ledger: the same miss, with nothing measured to explain it


def runs_of(*results: GateRun, scenario=SCENARIO) -> ScenarioRuns:
    runs = ScenarioRuns(scenario, repeat=max(1, len(results)), window_s=(3.996, 4.136), expected_s=4.0)
    runs.results.extend(results)
    return runs


def retried(first: ScenarioRuns, *again: GateRun) -> tuple[ScenarioRuns, list[tuple[list[str], int]]]:
    """``first`` after the gate's retry, whose runs are ``again``; and how the retry ran the scenarios."""
    calls: list[tuple[list[str], int]] = []

    def run(scenarios, repeat):
        calls.append(([s.id for s in scenarios], repeat))
        return [runs_of(*again, scenario=s) for s in scenarios]

    retry([first], run)
    return first, calls


# ---------------------------------------------------------------- the result's JSON


def test_the_result_json_carries_the_ledger_the_evidence_and_the_machine_late_sentence():
    result = keepalive_result(0.060)
    data = json.loads(result.to_json())
    assert data["schema"] == "netkit.scenario-result/3"
    assert (data["evidence"], data["evidence_note"], data["rule_failures"]) == ("trace", "", [])
    assert data["machine_late"].startswith("machine late by 60.0 ms at run 4 (tcp_keepalive_timer")
    assert data["death_source"] == "trace" and data["verdict"] == "fail"
    assert Ledger.from_dict(data["ledger"]) == result.ledger == keepalive_ledger(0.060)
    assert data["ledger"]["runs"][3]["arming"] == 3 and data["ledger"]["death"]["error"] == 110
    without = json.loads(keepalive_result(0.060, ledger=False).to_json())
    assert (without["evidence"], without["evidence_note"], without["ledger"], without["machine_late"]) == (
        "observer", "tracefs is not mounted here", None, None)


def test_a_rule_failure_the_window_misses_is_in_the_json_and_is_never_machine_late():
    written = keepalive_ledger(0.060).to_dict()
    written["armings"][2]["bucket"] += 8  # the second re-arm queued one bucket (8 jiffies at this level) off
    result = dataclasses.replace(keepalive_result(0.060), ledger=Ledger.from_dict(written))
    data = result.to_dict()
    assert data["rule_failures"] and data["rule_failures"][0] in data["failures"]
    assert "wheel's rounding" in data["rule_failures"][0]
    assert data["machine_late"] is None and keepalive_result(0.060).machine_late  # the same lateness, but a rule broken


# ---------------------------------------------------------------- the gate document


def test_a_gate_run_keeps_the_ledger_typed_and_the_document_round_trips(tmp_path):
    assert LATE.ledger == keepalive_ledger(0.060) and LATE.evidence == "trace" and LATE.machine_late
    assert OBSERVER_LATE.evidence_text == "evidence: observer (tracefs is not mounted here)"
    first, _ = retried(runs_of(LATE), ON_TIME)
    doc = document(scenario_entry(first, decide(first, slow_machine=False)),
                   entry_of(runs_of(OBSERVER_LATE), slow=True))
    assert doc.schema == GATE_SCHEMA == "netkit.gate/3"
    path = tmp_path / "gate.json"
    path.write_text(dump(doc))
    assert load(str(path)) == doc and from_dict(json.loads(dump(doc))) == doc
    written = json.loads(path.read_text())
    assert written["scenarios"][0]["retried"]["reason"] == LATE.machine_late
    assert written["scenarios"][0]["retried"]["runs"][0]["ledger"] == keepalive_ledger(0.060).to_dict()
    assert "retried" not in written["scenarios"][1]  # written only for a retried scenario


def test_a_ledger_this_netkit_cannot_read_is_kept_as_it_is():
    data = {**keepalive_result(0.0).to_dict(), "ledger": {"hz": 250, "armings": "newer"}}
    run = run_from_dict(data)
    assert run.ledger is None and run.extra["ledger"] == {"hz": 250, "armings": "newer"}
    assert to_dict(GateDocument(scenarios=()))["schema"] == GATE_SCHEMA


@pytest.mark.parametrize("name", ["gate-document-v1-full.json", "gate-document-v2.json"])
def test_older_documents_load_with_their_runs_judged_by_the_observer(tmp_path, name):
    written = json.loads((DATA / name).read_text())
    doc = load(str(DATA / name))
    assert written["schema"] != GATE_SCHEMA and doc.schema == GATE_SCHEMA
    runs = [r for e in doc.scenarios for r in e.runs]
    assert runs and all(r.evidence == "observer" and r.ledger is None and r.machine_late is None for r in runs)
    assert all(r.evidence_note == "recorded before netkit kept a timer ledger" for r in runs)
    assert doc.totals == {**written["totals"], "inconclusive": 0}
    path = tmp_path / "again.json"
    path.write_text(dump(doc))
    assert load(str(path)) == doc


# ---------------------------------------------------------------- the outcome and the retry


def test_machine_late_runs_are_inconclusive_never_pass_nor_fail():
    decided = decide(runs_of(LATE), slow_machine=False)
    assert decided.outcome == GateOutcome.INCONCLUSIVE
    assert decided.reason == LATE.machine_late and decided.reason.startswith("machine late by 60.0 ms")
    assert inconclusive_reason("the fault landed at 0.600 s, after ...") == "machine late: the fault landed at 0.600 s, after ..."


def test_the_gate_retries_exactly_the_machine_late_scenarios_once_all_at_once():
    late, failed, passed, mixed = runs_of(LATE), runs_of(WRONG_ERROR), runs_of(ON_TIME), runs_of(LATE, WRONG_ERROR)
    late.scenario, mixed.scenario = matrix.CORE[1], matrix.CORE[2]
    other_late = runs_of(LATE, ON_TIME, scenario=matrix.CORE[3])
    assert [needs_retry(r) for r in (late, failed, passed, mixed, other_late)] == [True, False, False, False, True]
    calls: list[tuple[list[str], int]] = []

    def run(scenarios, repeat):
        calls.append(([s.id for s in scenarios], repeat))
        return [runs_of(*[ON_TIME] * repeat, scenario=s) for s in scenarios]

    chosen = retry([late, failed, passed, mixed, other_late], run)
    assert chosen == [late, other_late]
    assert calls == [([matrix.CORE[1].id, matrix.CORE[3].id], 1)]  # one concurrent run of both, one run each
    assert late.retried == [LATE] and late.results == [ON_TIME]
    assert other_late.retried == [LATE] and other_late.results == [ON_TIME, ON_TIME]  # its passing run is kept
    assert not needs_retry(late)  # once only


def test_a_retry_that_passes_is_a_pass_that_says_why_it_was_needed():
    runs, calls = retried(runs_of(LATE), ON_TIME)
    decided = decide(runs, slow_machine=False)
    assert calls == [([SCENARIO.id], 1)]
    assert decided.outcome == GateOutcome.PASS
    assert decided.reason == f"passed on the gate's retry; the first run was {LATE.machine_late}"
    entry = scenario_entry(runs, decided)
    assert entry.retried is not None and entry.retried.reason == LATE.machine_late and entry.retried.runs == (LATE,)
    assert entry.runs == (ON_TIME,)


def test_a_retry_machine_late_again_is_inconclusive_with_both_sentences():
    again = run_of(0.048)
    runs, _ = retried(runs_of(LATE), again)
    decided = decide(runs, slow_machine=False)
    assert decided.outcome == GateOutcome.INCONCLUSIVE
    assert decided.reason == f"{again.machine_late}; on the gate's retry too (the first run: {LATE.machine_late})"
    assert decided.reason.startswith("machine late by 48.0 ms")


def test_a_retry_that_fails_otherwise_is_the_kernels_failure():
    runs, _ = retried(runs_of(LATE), WRONG_ERROR)
    decided = decide(runs, slow_machine=False)
    assert decided.outcome == GateOutcome.FAIL and "ECONNRESET" in decided.reason


def test_the_slow_machine_xfail_covers_only_runs_without_a_ledger():
    assert decide(runs_of(OBSERVER_LATE), slow_machine=True).outcome == GateOutcome.XFAIL
    assert decide(runs_of(LATE), slow_machine=True).outcome == GateOutcome.INCONCLUSIVE  # measured, not excused
    assert decide(runs_of(OBSERVER_LATE), slow_machine=False).outcome == GateOutcome.FAIL


def test_the_exit_status_puts_fail_and_error_over_inconclusive_over_pass():
    assert exit_status([]) == exit_status(["pass", "skip", "xfail", "xpass"]) == EXIT_PASS == 0
    assert exit_status(["pass", "inconclusive"]) == EXIT_INCONCLUSIVE == 3
    assert exit_status(["inconclusive", "fail"]) == exit_status(["inconclusive", "error"]) == EXIT_FAIL == 1
    assert exit_status(["inconclusive"], regression=True) == EXIT_FAIL


# ---------------------------------------------------------------- every report


def entry_of(runs: ScenarioRuns, slow: bool = False):
    return scenario_entry(runs, decide(runs, slow_machine=slow))


def document(*entries) -> GateDocument:
    return build(list(entries), kernel=KERNEL, started="2026-12-05T00:00:00Z", wall_s=9.0, options={"repeat": 1},
                 slow_machine=False)


def mixed_document() -> GateDocument:
    """Four scenarios: inconclusive (late twice), pass on the retry, fail, and an observer's pass."""
    inconclusive, _ = retried(runs_of(LATE, scenario=matrix.CORE[0]), run_of(0.048))
    passed, _ = retried(runs_of(LATE, scenario=matrix.CORE[1]), ON_TIME)
    failed = runs_of(WRONG_ERROR, scenario=matrix.CORE[2])
    observed = runs_of(run_of(0.0, ledger=False), scenario=matrix.CORE[3])
    return document(*(entry_of(r) for r in (inconclusive, passed, failed, observed)))


def test_the_document_counts_inconclusive_apart():
    doc = mixed_document()
    assert [e.outcome for e in doc.scenarios] == ["inconclusive", "pass", "fail", "pass"]
    assert doc.totals == {"pass": 2, "fail": 1, "xfail": 0, "xpass": 0, "skip": 0, "error": 0, "inconclusive": 1}
    assert exit_status(e.outcome for e in doc.scenarios) == EXIT_FAIL
    assert exit_status(e.outcome for e in doc.scenarios if e.outcome != "fail") == EXIT_INCONCLUSIVE


def test_tap_writes_inconclusive_as_a_kselftest_skip_counted_as_skip():
    doc = mixed_document()
    text = to_tap(doc)
    tap = parse_tap(text)  # strict: the Totals line agrees with the result lines
    first = tap.results[0]
    assert first.ok and first.directive == "SKIP" and first.reason.startswith("inconclusive: machine late by 48.0 ms")
    assert any(line.startswith("INCONCLUSIVE ") and "evidence: trace" in line for line in first.diagnostics)
    assert "# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0" in text
    assert any("passed on the gate's retry" in line for line in tap.results[1].diagnostics)
    assert "evidence: trace" in tap.results[2].diagnostics


def test_junit_writes_inconclusive_as_the_skip_the_plugin_reports():
    suite = ET.fromstring(to_junit(mixed_document())).find("testsuite")
    assert suite is not None and (suite.get("skipped"), suite.get("failures")) == ("1", "1")
    cases = suite.findall("testcase")
    skipped = cases[0].find("skipped")
    assert skipped is not None and skipped.get("type") == "pytest.skip"
    assert skipped.get("message", "").startswith("inconclusive: machine late by 48.0 ms")
    out = cases[1].findtext("system-out") or ""
    assert "evidence: trace" in out and "retried once by the gate: the first run was machine late" in out
    assert "evidence: observer (tracefs is not mounted here)" in (cases[3].findtext("system-out") or "")


@pytest.mark.skipif(sys.version_info < (3, 10), reason="kcidb-io needs Python 3.10")
def test_kcidb_says_done_for_inconclusive_and_nipa_skip():
    from kcidb_io.schema import LATEST

    from netkit.report.kcidb import kcidb_document

    doc = mixed_document()
    data = kcidb_document(doc, "netkit_lab")
    LATEST.validate_exactly(data)
    tests = data["tests"]
    assert [t["status"] for t in tests] == ["DONE", "PASS", "FAIL", "PASS"]
    assert tests[0]["comment"].startswith(f"{doc.scenarios[0].id}: inconclusive, not the kernel's failure: machine late")
    assert tests[0]["misc"]["evidence"] == "trace" and tests[1]["misc"]["retried"] == LATE.machine_late
    assert tests[3]["misc"]["evidence"] == "observer (tracefs is not mounted here)"
    nipa = nipa_document(doc, branch="net-next-2026-12-05--00-00")["results"]
    assert [r["result"] for r in nipa] == ["skip", "pass", "fail", "pass"]
    assert [r.get("retry") for r in nipa] == ["skip", "pass", None, None]


def test_html_counts_colours_and_explains_inconclusive():
    page = to_html(mixed_document())
    assert "1 inconclusive</span>" in page and "#fff5c2" in page  # the badge, the cell's colour
    assert "<b>inconclusive:</b> machine late by 48.0 ms" in page
    assert "<b>retried:</b> retried once by the gate" in page
    assert "<b>evidence:</b> observer (tracefs is not mounted here)" in page
    assert page.index('class="scenario o-fail"') < page.index('class="scenario o-inconclusive"') \
        < page.index('class="scenario o-pass"')


def test_html_draws_the_run_a_retry_replaced_beside_the_one_judged_on_one_axis():
    passed = mixed_document().scenarios[1]
    assert passed.retried is not None and passed.retried.runs == (LATE,)
    section = html_scenario.section(2, passed)
    svgs = re.findall(r'<svg class="timeline"[^>]*data-t0="([^"]+)" data-t1="([^"]+)"', section)
    assert len(svgs) == 2 and svgs[0] == svgs[1]  # the judged run, then the machine-late one, on the same seconds
    caption = section.index("the machine-late run the retry replaced")
    assert section.index('<svg class="timeline"') < caption < section.rindex('<svg class="timeline"')
    assert "the machine-late run" not in html_scenario.section(3, mixed_document().scenarios[2])  # no retry, no lane


def test_markdown_side_by_side_and_summary_show_inconclusive_and_the_evidence():
    doc = mixed_document()
    rows = to_markdown(doc).splitlines()
    assert "(inconclusive: machine late by 48.0 ms" in rows[4] and rows[4].endswith("; evidence: trace |")
    assert "(retried once by the gate: the first run was machine late" in rows[5]
    assert rows[7].endswith("; evidence: observer (tracefs is not mounted here) |")
    table = format_table([doc, doc])
    assert "inconclusive 4.144         inconclusive 4.144" in table and "pass 2, fail 1, inconclusive 1" in table
    summary = format_summary(doc)
    assert "totals: pass 2, fail 1, xfail 0, xpass 0, skip 0, error 0, inconclusive 1" in summary
    assert f"  INCONCLUSIVE {doc.scenarios[0].id}: machine late by 48.0 ms" in summary
    assert f"  PASS {doc.scenarios[1].id}: retried once by the gate" in summary
    assert ("judged without the timer ledger (1 of the 4 that ran):\n"
            "  1 x evidence: observer (tracefs is not mounted here)") in summary
    assert "evidence: trace\nmachine late" not in summary  # the failure is the kernel's: no machine-late line
    assert "FAIL " + doc.scenarios[2].id in summary and "evidence: trace" in summary


def test_merge_counts_inconclusive(tmp_path):
    doc = mixed_document()
    parts = []
    for k, scenarios in enumerate((doc.scenarios[:2], doc.scenarios[2:]), 1):
        part = dataclasses.replace(doc, scenarios=scenarios, totals={})
        path = tmp_path / f"part{k}.json"
        path.write_text(dump(part))
        parts.append(Part(str(path), GATE_SCHEMA, load(str(path))))
    merged = merge(parts, order=[e.id for e in doc.scenarios])
    assert merged.totals == doc.totals and merged.scenarios == doc.scenarios


# ---------------------------------------------------------------- gate diff


def test_inconclusive_is_never_a_regression_and_is_reported_as_what_it_is():
    inconclusive = mixed_document()
    passing = dataclasses.replace(inconclusive, scenarios=(
        dataclasses.replace(inconclusive.scenarios[0], outcome=GateOutcome.PASS, reason=None),
        *inconclusive.scenarios[1:]))
    failing = dataclasses.replace(passing, scenarios=(
        dataclasses.replace(passing.scenarios[0], outcome=GateOutcome.FAIL, reason="died late"),
        *passing.scenarios[1:]))
    for old, new in ((passing, inconclusive), (failing, inconclusive), (inconclusive, passing)):
        diff = compare(old, new)
        assert diff.regressions == []
        (change,) = diff.changes
        assert (change.what, change.old, change.new) == ("outcome", old.scenarios[0].outcome, new.scenarios[0].outcome)
    diff = compare(passing, inconclusive)
    assert diff.changes[0].note.startswith("inconclusive, not a regression: machine late by 48.0 ms")
    assert "pass -> inconclusive" in " ".join(format_diff(diff).split()) and "REGRESSION" not in format_diff(diff)
    assert compare(passing, failing).regressions  # the control: pass -> fail still is one


def zero_window_document(count: int, death_s: float) -> dict:
    """The issue's pair: ipv4-zero-window-link-down-1/1/3-ut3000, a UT 3000 death whose count the model allows as
    4 (nominal window) or 3 (the alternative one, a timer run late by a jiffy decides which run is fatal)."""
    sid = "ipv4-zero-window-link-down-1/1/3-ut3000"
    run = {
        "schema": "netkit.scenario-result/3", "id": sid, "expected_s": 3.204, "window_s": [3.2, 3.228],
        "alternative_window_s": [3.196, 3.232], "expected_count": 4, "alternative_count": 3,
        "measured_s": death_s, "death_s": death_s, "death_source": "observer", "death_timing": "inside",
        "late_by_s": None, "late_only": False, "error": "ETIMEDOUT", "expected_error": "ETIMEDOUT",
        "count_source": "TcpExt.TCPWinProbe", "count": count, "counters": {"TCPWinProbe": count},
        "verdict": "pass", "failures": [], "timeline": [], "wire": None, "evidence": "observer",
        "evidence_note": "tracefs is not mounted here", "machine_late": None, "rule_failures": [], "ledger": None,
    }
    entry = scenario_entry(runs_of(run_from_dict(run), scenario=next(s for s in matrix.BUILTIN if s.id == sid)),
                           decide(runs_of(run_from_dict(run)), slow_machine=False))
    return to_dict(document(entry))


def test_two_passing_runs_that_took_different_counts_the_model_allows_are_no_regression():
    """The issue's two gates of one commit: count 3 -> 4, each run inside its own window (3.224 s, then 3.220 s)."""
    old, new = zero_window_document(3, 3.224), zero_window_document(4, 3.220)
    diff = compare(from_dict(old), from_dict(new))
    assert diff.regressions == []
    assert [(c.what, c.old, c.new, c.note) for c in diff.changes] == [("count", 3, 4, "each an outcome the rule allows")]
    assert "0 regression(s), 1 change(s)" in format_diff(diff)
    beyond = copy.deepcopy(new)
    beyond["scenarios"][0]["runs"][0]["count"] = 5  # no outcome of the rule: a regression
    assert [(c.what, c.new) for c in compare(from_dict(old), from_dict(beyond)).regressions] == [("count", 5)]


# ---------------------------------------------------------------- the pytest plugin


class _Finished:
    def __init__(self, result):
        self._result = result

    def result(self):
        return self._result


class _Pool:
    """A ScenarioPool's two calls the plugin makes: the first result, and one more run."""

    def __init__(self, first, *more):
        self.first, self.more, self.started = first, list(more), 0

    def result(self, scenario):
        return self.first

    def start(self, scenario):
        self.started += 1
        return _Finished(self.more.pop(0))


def plugin_pool(first, *more):
    from types import SimpleNamespace

    from netkit.plugin.pool import PoolForTests

    pool = _Pool(first, *more)
    return PoolForTests(pool, SimpleNamespace(stash={})), pool  # type: ignore[arg-type]


def test_the_plugin_retries_a_machine_late_result_once_and_then_skips_it_as_inconclusive():
    late, again = keepalive_result(0.060), keepalive_result(0.048)
    tests, pool = plugin_pool(late, again)
    with pytest.raises(pytest.skip.Exception) as skipped:
        tests.result(SCENARIO)
    assert pool.started == 1
    reason = str(skipped.value)
    assert reason == (f"inconclusive: {again.machine_late}; on the retry too (the first run: {late.machine_late})")
    assert reason.startswith("inconclusive: machine late by 48.0 ms")


def test_the_plugin_gives_the_retrys_result_when_it_is_not_machine_late_and_never_retries_a_real_failure():
    on_time, late, wrong = keepalive_result(0.0), keepalive_result(0.060), keepalive_result(0.0, error="ECONNRESET")
    tests, pool = plugin_pool(late, on_time)
    assert tests.result(SCENARIO) is on_time and pool.started == 1
    tests, pool = plugin_pool(late, wrong)
    assert tests.result(SCENARIO) is wrong and pool.started == 1  # the retry failed otherwise: the test fails on it
    for first in (on_time, wrong, keepalive_result(0.060, ledger=False)):
        tests, pool = plugin_pool(first)
        assert tests.result(SCENARIO) is first and pool.started == 0


def test_tests_sharing_a_machine_late_scenario_share_its_one_retry():
    late, on_time = keepalive_result(0.060), keepalive_result(0.0)
    tests, pool = plugin_pool(late, on_time)
    assert tests.result(SCENARIO) is on_time and tests.result(SCENARIO) is on_time
    assert pool.started == 1  # the second test took the first one's retry: no second run, no pop from an empty list


# ---------------------------------------------------------------- netkit gate, end to end (the scenarios faked)


@pytest.mark.parametrize("retry_run, outcome, status", [
    (ON_TIME, "pass", EXIT_PASS), (run_of(0.048), "inconclusive", EXIT_INCONCLUSIVE), (WRONG_ERROR, "fail", EXIT_FAIL),
], ids=["retry-passes", "late-again", "retry-fails"])
def test_netkit_gate_retries_the_machine_late_scenario_and_exits_by_its_outcome(monkeypatch, tmp_path, capsys,
                                                                                retry_run, outcome, status):
    import netkit.gate.command as command
    from netkit.cli.main import build_parser

    calls: list[tuple[list[str], int]] = []

    def fake_run_gate(scenarios, *, repeat=1, on_progress=None, pcap_dir=None, max_workers=1):
        calls.append(([s.id for s in scenarios], repeat))
        late = LATE if len(calls) == 1 else retry_run
        return [runs_of(*[late if s.id.endswith("1/1/3") else ON_TIME] * repeat, scenario=s) for s in scenarios]

    monkeypatch.setattr(command, "run_gate", fake_run_gate)
    monkeypatch.setattr(command, "missing_privileges", lambda: None)
    path = tmp_path / "gate.json"
    args = build_parser().parse_args(["gate", "--only", "ipv4-idle-link-down-1/1/*", "--json", str(path)])
    assert args.func(args) == status
    assert calls[1] == (["ipv4-idle-link-down-1/1/3"], 1) and len(calls) == 2  # only the late one, once
    doc = load(str(path))
    entry = next(e for e in doc.scenarios if e.id == "ipv4-idle-link-down-1/1/3")
    assert entry.outcome == outcome and entry.retried is not None and entry.retried.reason == LATE.machine_late
    assert all(e.outcome == "pass" and e.retried is None for e in doc.scenarios if e is not entry)
    err = capsys.readouterr().err
    assert "netkit gate: retrying 1 scenario(s) the machine ran late (the kernel kept the rule): " \
           "ipv4-idle-link-down-1/1/3" in err


def test_the_progress_line_says_late_not_fail_for_a_scenario_the_gate_will_retry():
    import io

    from netkit.gate.progress import LiveProgress
    from netkit.gate.run import GateProgress

    lines = []
    for runs in (runs_of(LATE), runs_of(WRONG_ERROR), runs_of(LATE, WRONG_ERROR)):
        out = io.StringIO()
        LiveProgress(out, 1)(GateProgress(1, 0, 0, 1, 0.0, runs))
        lines.append(out.getvalue().split()[2])
    assert lines == ["LATE", "FAIL", "FAIL"]


def test_the_progress_line_says_xfail_for_a_known_difference_as_the_summary_will():
    import io

    from netkit.gate.progress import LiveProgress
    from netkit.gate.run import GateProgress

    lines = []
    for runs in (runs_of(WRONG_ERROR), runs_of(ON_TIME)):
        out = io.StringIO()
        LiveProgress(out, 1, {runs.scenario.id})(GateProgress(1, 0, 0, 1, 0.0, runs))
        lines.append(out.getvalue().split()[2])
    assert lines == ["xfail", "XPASS"]


def test_with_two_ledgers_a_changed_count_says_which_arming_differed_and_that_the_rule_allowed_both():
    old = document(entry_of(runs_of(ON_TIME)))
    more = keepalive_ledger(0.0).to_dict()
    more["armings"].append({**more["armings"][-1], "t_s": 4.096, "now": 2024, "expires": 2274, "bucket": 2280})
    new_run = dataclasses.replace(ON_TIME, count=4, ledger=Ledger.from_dict(more))
    diff = compare(old, document(entry_of(runs_of(new_run))))
    (change,) = diff.changes
    assert (change.what, change.old, change.new) == ("count", 3, 4)
    assert change.note == "ledger: 1 arming(s) more (250 jiffies); the rule allowed both (no rule failure in either)"
    assert change.regression  # 4 is no outcome of this rule: the ledger explains the change, it does not excuse it
    shifted = keepalive_ledger(0.0).to_dict()
    shifted["armings"][2]["expires"] += 1  # a planted rule error: one jiffy more than intvl * HZ
    wrong = dataclasses.replace(ON_TIME, count=4, ledger=Ledger.from_dict(shifted), rule_failures=("ledger: re-arm",))
    (change,) = compare(old, document(entry_of(runs_of(wrong)))).changes
    assert change.note == "ledger: arming 3 asked for 250 -> 251 jiffies; a rule failure: see the runs"
