"""The gate's typed records and their codec: one loader and dumper, a round trip, old documents, stored facts as stored.

Pure, no root: ``gate-document-v1-full.json`` is a whole ``netkit gate --json``
document written by netkit-gate/1 (before the judged facts and event kinds
were stored), on this machine's kernel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netkit.document.codec import dump, from_dict, load, run_from_dict, run_to_dict, to_dict
from netkit.document.records import GATE_SCHEMA, GateDocument, GateRun
from netkit.enums import DeathSource, EventKind, GateOutcome, Timing
from netkit.evidence.death import check_death, count_of, judged_death
from netkit.gate import matrix
from netkit.gate.diff import compare
from netkit.gate.document import build, scenario_entry
from netkit.gate.outcome import decide
from netkit.gate.run import ScenarioRuns
from netkit.gate.summary import format_summary
from netkit.kernel import KernelInfo
from netkit.report.html import to_html
from netkit.report.junit import to_junit
from netkit.report.markdown import run_sentence, to_markdown
from netkit.report.side_by_side import format_table, html_table
from netkit.report.tap import to_tap
from netkit.report.tapparse import parse_tap

DATA = Path(__file__).parent / "data"
V1 = DATA / "gate-document-v1-full.json"
EXAMPLE = DATA / "gate-document.json"


def v1() -> GateDocument:
    return load(str(V1))


def test_the_old_schema_loads_and_is_upgraded():
    raw = json.loads(V1.read_text())
    assert raw["schema"] == "netkit-gate/1"
    doc = v1()
    assert doc.schema == GATE_SCHEMA == "netkit.gate/3"
    assert len(doc.scenarios) == len(raw["scenarios"])
    assert [e.outcome for e in doc.scenarios] == [e["outcome"] for e in raw["scenarios"]]
    assert all(isinstance(e.outcome, GateOutcome) for e in doc.scenarios)


def test_round_trip_through_json(tmp_path):
    for doc in (v1(), from_dict(json.loads(EXAMPLE.read_text()))):
        assert from_dict(to_dict(doc)) == doc
        path = tmp_path / "doc.json"
        path.write_text(dump(doc))
        assert load(str(path)) == doc
        assert json.loads(dump(doc)) == to_dict(doc)


def test_keys_this_netkit_does_not_model_are_kept():
    data = json.loads(V1.read_text())
    data["brand_new"] = {"x": 1}
    data["scenarios"][0]["runs"][0]["wire"]["brand_new"] = [1, 2]
    again = to_dict(from_dict(data))
    assert again["brand_new"] == {"x": 1}
    assert again["scenarios"][0]["runs"][0]["wire"]["brand_new"] == [1, 2]
    assert again["scenarios"][0]["runs"][0]["wire"]["events"] == data["scenarios"][0]["runs"][0]["wire"]["events"]


def test_an_old_run_gets_its_judged_facts_from_the_single_definitions():
    raw = json.loads(V1.read_text())
    checked = 0
    for entry, typed in zip(raw["scenarios"], v1().scenarios, strict=True):
        for data, run in zip(entry["runs"], typed.runs, strict=True):
            death_s, source = judged_death(data["kernel_death_s"], data["measured_s"])
            assert (run.death_s, run.death_source) == (death_s, source)
            assert run.count == count_of(data["count_source"], data["probes"], data["retransmits"], data["counters"])
            outcomes = [(tuple(data["window_s"]), data["expected_count"])]
            if data["alternative_window_s"]:
                outcomes.append((tuple(data["alternative_window_s"]), data["alternative_count"]))
            assert run.death_timing == check_death(outcomes, death_s).timing
            assert all(e.kind is EventKind.OTHER for e in run.timeline)  # /1 stored no kind: never guessed
            checked += 1
    assert checked > 100
    assert any(r.death_source is DeathSource.WIRE for e in v1().scenarios for r in e.runs)


def test_stored_facts_are_read_as_stored():
    run = run_from_dict({"verdict": "fail", "measured_s": 4.0, "window_s": [3.996, 4.136], "expected_count": 3,
                         "count_source": "tcpi_probes", "probes": 3, "error": "ETIMEDOUT",
                         "expected_error": "ETIMEDOUT", "failures": ["died late"],
                         "death_s": 4.3, "death_source": "wire", "death_timing": "late", "late_by_s": 0.164,
                         "late_only": True, "count": 2,
                         "timeline": [{"t_s": 1.0, "what": "anything", "source": "wire", "kind": "probe"}]})
    assert (run.death_s, run.death_source, run.death_timing) == (4.3, DeathSource.WIRE, Timing.LATE)
    assert (run.count, run.late_only, run.late_by_s) == (2, True, 0.164)
    assert run.timeline[0].kind is EventKind.PROBE
    assert run_from_dict(run_to_dict(run)) == run
    runs = ScenarioRuns(matrix.CORE[0], window_s=(3.996, 4.136), expected_s=4.0, results=[run])
    decided = decide(runs, slow_machine=True)  # late-only as stored, though measured_s is inside the window
    assert decided.outcome is GateOutcome.XFAIL and "late by 164 ms" in decided.reason


def test_the_aggregate_and_the_sentence_both_give_the_judged_time():
    run = run_from_dict({"verdict": "pass", "measured_s": 4.110, "kernel_death_s": 4.096, "expected_s": 4.0,
                         "window_s": [3.996, 4.136], "error": "ETIMEDOUT", "expected_error": "ETIMEDOUT",
                         "count_source": "tcpi_probes", "probes": 3, "expected_count": 3})
    assert run.death_s == 4.096 and run.death_source is DeathSource.WIRE
    runs = ScenarioRuns(matrix.CORE[0], window_s=(3.996, 4.136), expected_s=4.0, results=[run])
    entry = scenario_entry(runs, decide(runs, slow_machine=False))
    assert entry.measured_s is not None and entry.measured_s.median == 4.096
    assert "measured 4.096 s" in run_sentence(run)


def test_every_report_reads_an_old_document():
    doc = v1()
    assert to_markdown(doc).count("\n") == 4 + len(doc.scenarios)
    assert parse_tap(to_tap(doc)).counts()["pass"] == doc.totals["pass"]
    assert to_junit(doc).count("<testcase") == len(doc.scenarios)
    assert to_html(doc).count('<section class="scenario') == len(doc.scenarios)
    assert "netkit gate: kernel 6.18.44" in format_summary(doc)
    assert "6.18.44-fc-v1272 HZ=250 (host)" in format_table([doc, doc])
    assert html_table([doc, doc]).startswith("<!DOCTYPE html>")
    # the reports take the JSON as data too, and say the same
    raw = json.loads(V1.read_text())
    assert to_markdown(raw) == to_markdown(doc) and to_tap(raw) == to_tap(doc)


def test_gate_diff_reads_an_old_document_against_a_new_one(tmp_path):
    new = tmp_path / "new.json"
    new.write_text(dump(v1()))
    assert compare(v1(), load(str(new))).changes == []
    done = subprocess.run([sys.executable, "-m", "netkit.cli", "gate", "diff", str(V1), str(new)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "no changes" in done.stdout, done.stdout + done.stderr


def test_a_built_document_round_trips():
    run = run_from_dict({"verdict": "pass", "measured_s": 4.096, "window_s": [3.996, 4.136], "expected_s": 4.0,
                         "count_source": "tcpi_probes", "probes": 3, "expected_count": 3, "explain": "x"})
    runs = ScenarioRuns(matrix.CORE[0], window_s=(3.996, 4.136), expected_s=4.0, results=[run])
    doc = build([scenario_entry(runs, decide(runs, slow_machine=False))], kernel=KernelInfo("6.18.0-test", 250, "pinned"),
                started="2026-11-29T00:00:00Z", wall_s=5.0, options={"repeat": 1}, slow_machine=False)
    assert from_dict(to_dict(doc)) == doc
    assert isinstance(doc.scenarios[0].runs[0], GateRun)


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_event_kind_loads(kind):
    run = run_from_dict({"timeline": [{"t_s": 0.0, "what": "x", "kind": kind.value}]})
    assert run.timeline[0].kind is kind


def test_the_timeline_draws_the_judged_death_and_its_stored_timing():
    doc = json.loads(EXAMPLE.read_text())
    scenario = doc["scenarios"][2]
    scenario["runs"][0].update(measured_s=4.300, kernel_death_s=4.296, death_s=4.296, death_source="wire",
                               death_timing="late", late_by_s=0.16, late_only=True, count=3)
    html = to_html({**doc, "scenarios": [scenario]})
    assert "connection dead at 4.296 s" in html and "(0.160 s LATE)" in html
    scenario["runs"][0].update(death_timing="inside", late_by_s=None)  # the run's judgement, not the picture's
    assert "LATE)" not in to_html({**doc, "scenarios": [scenario]})
