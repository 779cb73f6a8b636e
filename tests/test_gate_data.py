"""The gate's pure layers, without root: the matrix as data, matrix files, outcomes, the document, diffs.

Run records are written here by hand, with the keys a scenario result's
``to_dict()`` has, so each rule is checked against numbers a reader can see.
"""

from __future__ import annotations

import copy
import json

import pytest

from netkit.document.codec import GateDocumentError, from_dict, load, run_from_dict, to_dict
from netkit.document.records import GATE_SCHEMA, SCENARIO_KEYS, TOP_KEYS
from netkit.errors import InputError, NotModelled
from netkit.gate import matrix
from netkit.gate.diff import compare, format_diff
from netkit.gate.document import build, scenario_entry
from netkit.gate.matrix_file import MatrixFileError, load_matrix
from netkit.gate.outcome import Known, KnownFileError, decide, load_known
from netkit.gate.run import ScenarioRuns
from netkit.keepalive import KeepaliveSettings
from netkit.kernel import KernelInfo
from netkit.model.predict import predict
from netkit.scenario import Scenario

PINNED = KernelInfo("6.18.0-test", 250, "pinned in the test")


def test_the_builtin_matrix_has_stable_unique_ids():
    ids = [s.id for s in matrix.BUILTIN]
    assert len(ids) == len(set(ids)) == 178
    for pinned in ("ipv4-idle-link-down-1/1/3", "ipv6-idle-link-down-1/1/10", "ipv4-idle-link-down-1/1/3-ut3050",
                   "ipv6-idle-link-down-2/1/2-via-sysctl", "ipv4-idle-blackhole-1/1/3-client-side",
                   "ipv6-unacked-blackhole-1/1/3-retries2=3", "ipv4-zero-window-peer-reboot-1/1/3-ut3000",
                   "ipv4-syn-sent-blackhole-syn1-ut10000", "ipv6-syn-sent-blackhole-syn1-via-sysctl",
                   "ipv6-syn-recv-blackhole-syn2", "ipv4-unacked-blackhole-1/1/3-retries2=6-tcp_rto_max_ms=1000",
                   "ipv6-zero-window-blackhole-1/1/3-retries2=3-tcp_rto_min_us=50000", "ipv6-idle-local-drop-2/1/2",
                   "ipv4-unacked-local-drop-1/1/3-ut3000-route_rto_min=300ms", "ipv6-syn-sent-local-drop-syn1"):
        assert pinned in ids


def test_only_selects_by_glob_and_refuses_a_pattern_that_matches_nothing():
    chosen = matrix.select(matrix.BUILTIN, ["ipv6-idle-*-1/1/3", "ipv4-zero-window-blackhole-*"])
    assert {s.id for s in chosen} >= {"ipv6-idle-blackhole-1/1/3", "ipv4-zero-window-blackhole-1/1/3-ut1000"}
    assert all(s.id.startswith(("ipv6-idle-", "ipv4-zero-window-blackhole-")) for s in chosen)
    with pytest.raises(InputError, match="--only 'ipv5-\\*' matches no scenario id"):
        matrix.select(matrix.BUILTIN, ["ipv5-*"])


def test_a_matrix_file_multiplies_its_lists(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[scenario]]\nkeepalive = [[60, 10, 6], [2, 1, 2]]\nfamily = ["ipv4", "ipv6"]\n'
                    'fault = ["link-down", "blackhole"]\n\n[[scenario]]\nkeepalive = [1, 1, 3]\nuser_timeout_ms = 2500\n'
                    'state = "unacked"\nretries2 = 3\n')
    ids = [s.id for s in load_matrix(str(path))]
    assert len(ids) == 2 * 2 * 2 + 1
    assert ids[0] == "ipv4-idle-link-down-60/10/6" and ids[-1] == "ipv4-unacked-link-down-1/1/3-ut2500-retries2=3"


def test_a_matrix_file_sets_the_rtos_bounds(tmp_path):
    path = tmp_path / "rto.toml"
    path.write_text('[[scenario]]\nkeepalive = [1, 1, 3]\nstate = ["unacked", "zero-window"]\nretries2 = 6\n'
                    'rto_max_ms = 5000\nrto_max_via = "sysctl"\nrto_min_us = 50000\n')
    assert [s.id for s in load_matrix(str(path))] == [
        "ipv4-unacked-link-down-1/1/3-retries2=6-tcp_rto_max_ms=5000-tcp_rto_min_us=50000",
        "ipv4-zero-window-link-down-1/1/3-retries2=6-tcp_rto_max_ms=5000-tcp_rto_min_us=50000"]


def test_a_matrix_files_expect_s_is_judged_instead_of_the_models_time(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[[scenario]]\nkeepalive = [1, 1, 3]\nexpect_s = 5\n'
                    '\n[[scenario]]\nkeepalive = [1, 1, 3]\nexpect_s = 4.0\n')
    later, model_time = load_matrix(str(path))
    assert (later.id, model_time.id) == ("ipv4-idle-link-down-1/1/3-expect5s", "ipv4-idle-link-down-1/1/3-expect4s")
    model = predict(Scenario(KeepaliveSettings(1, 1, 3)), PINNED)
    same = predict(model_time, PINNED)
    assert (same.expected_s, same.window_s) == (model.expected_s, model.window_s) == (4.0, (3.996, 4.136))
    p = predict(later, PINNED)  # the model's lateness (136 ms), one jiffy early: the death at 4 s is EARLY
    assert p.expected_s == 5 and p.window_s == (4.996, 5.136) and p.alternative_window_s is None
    assert (p.expected_count, p.expected_error, p.schedule) == (model.expected_count, "ETIMEDOUT", model.schedule)
    assert p.rule.startswith("the expected death at 5 s (expect_s;") and "predicts 4 s" in p.rule
    with pytest.raises(NotModelled, match="survives .* so there is no death time to expect"):  # the gate skips it
        predict(Scenario(KeepaliveSettings(1, 1, 3), fault="local-drop", expect_s=5), PINNED)


@pytest.mark.parametrize("text, line, says", [
    ('[[scenario]]\nkeepalive = [1, 1, 3]\nexpect_s = 0\n', 3, "key 'expect_s': invalid expect_s 0: give the expected "
     "death time in seconds, above 0"),
    ('[[scenario]]\nkeepalive = [1, 1, 3]\n\n[[scenario]]\nkeepalive = [1, 1, 3]\nfault = "blakhole"\n', 6,
     "[[scenario]] #2, key 'fault': unknown fault 'blakhole'"),
    ('[[scenario]]\nkeepalive = [1, 1, 200]\n', 2, "key 'keepalive': invalid cnt (TCP_KEEPCNT) 200"),
    ('[[scenario]]\nkeepalive = [1, 1, 3]\nfamly = "ipv4"\n', 3, "key 'famly': unknown key"),
    ('[[scenario]]\nkeepalive = [1, 1]\n', 2, "key 'keepalive': [1, 1] is not [idle, intvl, cnt]"),
    ('[[scenario]]\nfamily = "ipv4"\n', 1, "missing key 'keepalive'"),
    ('[[scenario]]\nkeepalive = [1, 1, 3]\nstate = "dead"\n', 3, "key 'state'"),
    ('[[scenario]]\nkeepalive = [1, 1, 3]\nuser_timeout_ms = -5\n', 3, "key 'user_timeout_ms'"),
    ('[settings]\nx = 1\n', 1, "unknown top-level key 'settings'"),
    ('[[scenario]]\nkeepalive = [1, 1, 3]\nstate = "unacked"\nretries2 = 3\nrto_max_ms = 500\n', 5,
     "key 'rto_max_ms': invalid rto_max_ms (TCP_RTO_MAX_MS, net.ipv4.tcp_rto_max_ms) 500: use a whole number 1000..120000"),
], ids=["expect-zero", "fault", "cnt", "unknown-key", "short-keepalive", "no-keepalive", "state", "user-timeout", "top-level",
        "rto-max"])
def test_a_bad_matrix_file_names_file_line_and_key(tmp_path, text, line, says):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(MatrixFileError) as caught:
        load_matrix(str(path))
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert says in str(caught.value)


@pytest.mark.parametrize("text, says", [
    ("[[scenario]\n", "not valid TOML"), ("", "no [[scenario]] table"), (None, "cannot read it"),
])
def test_an_unreadable_matrix_file_says_why(tmp_path, text, says):
    path = tmp_path / "m.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(MatrixFileError, match=says.replace("[", r"\[")):
        load_matrix(str(path))


def run_record(measured=4.096, error="ETIMEDOUT", probes=3, window=(3.996, 4.136), failures=(), alternative=None):
    """A scenario result as data (the keys of ScenarioResult.to_dict() that the gate reads)."""
    return {
        "id": "ipv4-idle-link-down-1/1/3", "expected_s": 4.0, "window_s": list(window), "measured_s": measured,
        "error": error, "expected_error": "ETIMEDOUT", "probes": probes, "retransmits": 0,
        "count_source": "tcpi_probes", "expected_count": 3, "alternative_window_s": alternative,
        "alternative_count": 2 if alternative else None, "counters": {"TCPKeepAlive": probes},
        "verdict": "fail" if failures else "pass", "failures": list(failures), "timeline": [], "wire": None,
        "explain": "explained",
    }


def scenario_runs(*records, skipped=None, errors=()):
    runs = ScenarioRuns(matrix.CORE[0], repeat=max(1, len(records)), window_s=(3.996, 4.136), expected_s=4.0)
    runs.results.extend(run_from_dict(r) for r in records)
    runs.skipped = skipped
    runs.errors.extend(errors)
    return runs


LATE = run_record(measured=4.300, failures=["died late: 4.300 s, outside [3.996, 4.136] s with 3"])
EARLY = run_record(measured=3.500, probes=2, failures=["died EARLY: 3.500 s < window start 3.996 s"])
LATE_WRONG_ERROR = run_record(measured=4.300, error="ECONNRESET", failures=["died late", "error ECONNRESET"])
KNOWN = Known("ipv4-idle-*", "6.18.*", "xfail", "IPv4 idle deaths differ on this kernel", "https://example.invalid/1")


@pytest.mark.parametrize("runs, slow, known, outcome, says", [
    (scenario_runs(run_record()), False, None, "pass", None),
    (scenario_runs(run_record(), LATE), False, None, "fail", "died late"),
    (scenario_runs(LATE), True, None, "xfail", "late by 164 ms past the window's end, on a slow machine"),
    (scenario_runs(EARLY), True, None, "fail", "died EARLY"),
    (scenario_runs(LATE_WRONG_ERROR), True, None, "fail", "died late"),
    (scenario_runs(LATE), False, KNOWN, "xfail", "known difference: IPv4 idle deaths differ"),
    (scenario_runs(run_record()), False, KNOWN, "xpass", "known difference no longer seen"),
    (scenario_runs(skipped="no sch_netem"), False, None, "skip", "no sch_netem"),
    (scenario_runs(errors=["hung"]), False, None, "error", "hung"),
], ids=["pass", "one-repeat-failed", "slow-late", "slow-early", "slow-wrong-error", "known-fail", "known-pass",
        "skip", "error"])
def test_each_outcome_is_decided_in_one_place(runs, slow, known, outcome, says):
    decided = decide(runs, slow_machine=slow, known=known)
    assert decided.outcome == outcome
    if says:
        assert says in decided.reason


def test_slow_machine_lateness_is_measured_against_the_last_window():
    """With two predicted outcomes, a run is late only past both windows; lateness counts from the later end."""
    record = run_record(measured=4.200, failures=["died late"], alternative=[3.050, 3.104])
    decided = decide(scenario_runs(record), slow_machine=True)
    assert decided.outcome == "xfail" and "late by 64 ms" in decided.reason


def test_known_differences_file(tmp_path):
    path = tmp_path / "known.toml"
    path.write_text('[[known]]\nscenario = "ipv6-*-peer-gone-*"\nkernel = "6.1.*"\noutcome = "xfail"\n'
                    'reason = "ENETUNREACH"\nlink = "https://example.invalid"\n')
    (known,) = load_known(str(path))
    assert known.matches("ipv6-idle-peer-gone-1/1/3", "6.1.0-26-amd64")
    assert not known.matches("ipv6-idle-peer-gone-1/1/3", "6.12.1")
    path.write_text('[[known]]\nscenario = "x"\noutcome = "pass"\nreason = "r"\n')
    with pytest.raises(KnownFileError, match="outcome 'pass': use \"xfail\" or \"skip\""):
        load_known(str(path))


def document(*entries, hz=250, release="6.18.0-test"):
    """A gate document as its JSON (what a file holds), to doctor; ``from_dict`` reads it back."""
    return to_dict(build(list(entries), kernel=KernelInfo(release, hz, "pinned"), started="2026-11-29T00:00:00Z", wall_s=5.0,
                 options={"repeat": 1}, slow_machine=False))


def entry(runs):
    return scenario_entry(runs, decide(runs, slow_machine=False))


def test_the_document_keys_are_pinned():
    doc = document(entry(scenario_runs(run_record())))
    assert tuple(doc) == TOP_KEYS and doc["schema"] == GATE_SCHEMA == "netkit.gate/3"
    assert tuple(doc["scenarios"][0]) == SCENARIO_KEYS
    assert doc["totals"] == {"pass": 1, "fail": 0, "xfail": 0, "xpass": 0, "skip": 0, "error": 0, "inconclusive": 0}
    assert doc["scenarios"][0]["measured_s"] == {"min": 4.096, "median": 4.096, "max": 4.096}


def test_a_doctored_baseline_is_a_regression_naming_error_and_count():
    baseline = document(entry(scenario_runs(run_record())))
    new = copy.deepcopy(baseline)
    new["scenarios"][0]["runs"][0]["error"] = "ECONNRESET"
    new["scenarios"][0]["runs"][0]["count"] = 4  # the count as the run stored it (netkit.evidence.death.count_of)
    diff = compare(from_dict(baseline), from_dict(new))
    assert {(c.what, c.old, c.new) for c in diff.regressions} == {("error", "ETIMEDOUT", "ECONNRESET"), ("count", 3, 4)}
    text = format_diff(diff)
    assert "ETIMEDOUT -> ECONNRESET" in " ".join(text.split()) and "REGRESSION" in text


def test_a_count_that_moves_between_the_rules_two_outcomes_is_a_change_not_a_regression():
    """TCP_USER_TIMEOUT on a late timer run: the prediction allows 3 (nominal) or 2 (one interval earlier)."""
    alternative = (2.996, 3.136)
    baseline = document(entry(scenario_runs(run_record(alternative=alternative))))
    other_outcome = copy.deepcopy(baseline)
    other_outcome["scenarios"][0]["runs"][0]["count"] = 2
    diff = compare(from_dict(baseline), from_dict(other_outcome))
    assert [(c.what, c.old, c.new, c.regression) for c in diff.changes] == [("count", 3, 2, False)]
    assert "each an outcome the rule allows" in format_diff(diff)
    outside = copy.deepcopy(baseline)
    outside["scenarios"][0]["runs"][0]["count"] = 4  # no outcome of the rule: a regression even if the run passed
    assert [(c.what, c.new) for c in compare(from_dict(baseline), from_dict(outside)).regressions] == [("count", 4)]
    assert [(c.what, c.old) for c in compare(from_dict(outside), from_dict(baseline)).regressions] == [("count", 4)]


def test_an_unchanged_run_and_a_shift_inside_the_window_are_no_change():
    baseline = document(entry(scenario_runs(run_record(measured=4.096))))
    inside = document(entry(scenario_runs(run_record(measured=4.000))))  # 96 ms: less than the window's 140 ms
    assert compare(from_dict(baseline), from_dict(baseline)).changes == []
    assert compare(from_dict(baseline), from_dict(inside)).changes == []


def test_a_shift_wider_than_the_window_is_reported_but_is_no_regression():
    baseline = document(entry(scenario_runs(run_record(measured=4.000))))
    moved = document(entry(scenario_runs(run_record(measured=4.200, failures=["died late"]))), hz=1000)
    diff = compare(from_dict(baseline), from_dict(moved))
    kinds = {c.what: c for c in diff.changes}
    assert kinds["timing"].note.startswith("moved +200 ms") and "HZ changed" in kinds["timing"].note
    assert kinds["outcome"].regression and not kinds["timing"].regression
    assert any("HZ differs (250 -> 1000)" in note for note in diff.notes)


def test_added_and_removed_scenarios_are_listed():
    a = document(entry(scenario_runs(run_record())))
    b = copy.deepcopy(a)
    b["scenarios"][0]["id"] = "ipv6-idle-link-down-1/1/3"
    assert {(c.what, c.scenario) for c in compare(from_dict(a), from_dict(b)).changes} == {
        ("removed", "ipv4-idle-link-down-1/1/3"), ("added", "ipv6-idle-link-down-1/1/3")}


@pytest.mark.parametrize("content, says", [
    ('{"schema": "netkit-gate/1", "scen', "not JSON (truncated?)"),
    ('{"results": []}', "not a netkit gate document"),
    ('{"schema": "netkit-gate/0"}', "schema 'netkit-gate/0'; this netkit reads 'netkit-gate/1'"),
    ('{"schema": "netkit-gate/1", "scenarios": []}', "incomplete gate document"),
    ('[1, 2]', "not a netkit gate document"),
])
def test_a_file_that_is_not_a_gate_document_is_refused(tmp_path, content, says):
    path = tmp_path / "doc.json"
    path.write_text(content)
    with pytest.raises(GateDocumentError) as caught:
        load(str(path))
    assert says in str(caught.value)


def test_a_saved_document_loads_back(tmp_path):
    doc = document(entry(scenario_runs(run_record())))
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    assert load(str(path)) == from_dict(doc)


def test_a_run_past_its_deadline_is_an_error_with_its_progress_so_far(tmp_path):
    """One hung worker cannot hang the gate: past the run's give-up time its scenario is an error, with the journal."""
    import concurrent.futures
    import time

    from netkit.gate.run import _collect, _Run

    journal = tmp_path / "0-0.log"
    journal.write_text(f"{time.monotonic() - 30:.3f} started\n1.024 s: count 1 (expected death at 4.000 s)\n")
    runs = scenario_runs()
    hung: concurrent.futures.Future = concurrent.futures.Future()  # never completes, like a hung worker's
    started = time.monotonic()
    _collect({hung: _Run(runs, str(journal), give_up_s=5.0)}, [runs], None)
    assert time.monotonic() - started < 2
    decided = decide(runs, slow_machine=False)
    assert decided.outcome == "error"
    assert "no result 5 s after it started (its worker hung)" in decided.reason
    assert "progress so far: 1.024 s: count 1 (expected death at 4.000 s)" in decided.reason


class _Terminal:
    def __init__(self, tty):
        self.text, self.tty = "", tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return self.tty


def test_progress_is_one_line_per_scenario_in_a_log_and_one_updating_line_on_a_terminal():
    from netkit.gate.progress import LiveProgress
    from netkit.gate.run import GateProgress

    finished = scenario_runs(run_record())
    for tty in (False, True):
        out = _Terminal(tty)
        progress = LiveProgress(out, total=3)
        progress(GateProgress(0, 2, 1, 0, 9.5))
        progress(GateProgress(1, 1, 1, 0, 4.0, just_finished=finished))
        progress.finish()
        if tty:
            assert "\r\x1b[K" in out.text and "longest due in" in out.text
        else:
            assert out.text == "gate: [1/3] pass  ipv4-idle-link-down-1/1/3 died at 4.096 s\n"  # no escape codes in a log
