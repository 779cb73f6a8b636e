"""The gate document for the kernel CIs: a KCIDB v5 submission (validated by kcidb-io) and a NIPA result file.

Pure, no root.  ``kcidb-io`` is a test dependency only (the ``test`` extra):
netkit writes KCIDB's JSON itself and never imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from pathlib import Path

import jsonschema  # kcidb-io's dependency
import pytest
from kcidb_io.schema import LATEST

from netkit.cli.main import build_parser
from netkit.document.codec import from_dict
from netkit.document.records import GateDocument, GateRun, GuestRecord, Measured, ScenarioEntry
from netkit.enums import GateOutcome
from netkit.errors import InputError
from netkit.gate import kernel_ci
from netkit.report.kcidb import LOG_EXCERPT_MAX, kcidb_document, kcidb_paths, status
from netkit.report.nipa import namify, nipa_document, result

DOC = Path(__file__).parent / "data" / "gate-document.json"
ORIGIN = "netkit_lab"


def sample() -> GateDocument:
    """The reports' sample document: one scenario of every outcome."""
    return from_dict(json.loads(DOC.read_text()))


def with_scenarios(*scenarios: ScenarioEntry, **changes: object) -> GateDocument:
    return dataclasses.replace(sample(), scenarios=scenarios, **changes)


# ---------------------------------------------------------------------------------------------------------------
# KCIDB


def test_the_sample_document_is_a_valid_kcidb_submission_of_the_latest_schema():
    data = kcidb_document(sample(), ORIGIN)
    LATEST.validate_exactly(data)
    assert data["version"] == {"major": LATEST.major, "minor": LATEST.minor} == {"major": 5, "minor": 3}
    assert len(data["tests"]) == len(sample().scenarios)


def test_each_outcome_has_its_documented_status():
    assert {o: status(o) for o in GateOutcome} == {
        "pass": "PASS", "fail": "FAIL", "xfail": "PASS", "xpass": "PASS", "skip": "SKIP", "error": "ERROR",
        "inconclusive": "DONE"}  # completed and measured, no verdict on the code: not ERROR, not MISS
    assert status("flaky") == "ERROR"  # a newer gate's outcome: inconclusive, never a pass
    tests = {t["misc"]["netkit_id"]: t for t in kcidb_document(sample(), ORIGIN)["tests"]}
    for scenario in sample().scenarios:
        assert tests[scenario.id]["status"] == status(scenario.outcome)
        assert tests[scenario.id]["misc"]["outcome"] == scenario.outcome
    assert tests["ipv6-unacked-blackhole-1/1/3-ut1500"]["comment"].startswith(
        "ipv6-unacked-blackhole-1/1/3-ut1500: XFAIL, a known difference: IPv6 retransmissions")
    assert "XPASS, the known failure did not occur" in tests["ipv4-idle-peer-reboot-1/1/3"]["comment"]


def test_an_unknown_outcome_is_an_error_and_still_valid():
    odd = dataclasses.replace(sample().scenarios[0], outcome="flaky")
    data = kcidb_document(with_scenarios(odd), ORIGIN)
    LATEST.validate_exactly(data)
    assert data["tests"][0]["status"] == "ERROR"


def test_paths_use_kcidbs_characters_stay_distinct_and_the_netkit_id_is_kept():
    ids = ["ipv4-idle-link-down-1/1/3", "ipv4-idle-link-down-1_1_3", "a.b c", "", "ipv6-unacked-blackhole-1/1/3-retries2=3"]
    paths = kcidb_paths(ids)
    assert paths[:3] == ["netkit.ipv4-idle-link-down-1_1_3", "netkit.ipv4-idle-link-down-1_1_3-2", "netkit.a_b_c"]
    assert len(set(paths)) == len(ids)
    assert all(LATEST.path_re.match(p) for p in paths)
    base = sample().scenarios[0]
    doc = with_scenarios(*(dataclasses.replace(base, id=i) for i in ids))
    data = kcidb_document(doc, ORIGIN)
    LATEST.validate_exactly(data)
    assert [t["misc"]["netkit_id"] for t in data["tests"]] == ids
    assert len({t["id"] for t in data["tests"]}) == len(ids)


def test_ids_default_to_the_kernel_release_and_the_document_carries_that_build_and_checkout():
    data = kcidb_document(sample(), ORIGIN)
    release = sample().kernel.release
    assert data["checkouts"][0]["id"] == data["builds"][0]["checkout_id"] == f"{ORIGIN}:{release}"
    assert data["builds"][0]["id"] == f"{ORIGIN}:{release}"
    assert {t["build_id"] for t in data["tests"]} == {f"{ORIGIN}:{release}"}
    test = data["tests"][0]
    assert test["id"] == f"{ORIGIN}:{release}:2026-11-29T08:40:00Z:netkit.ipv6-idle-link-down-1_1_3"
    assert test["origin"] == ORIGIN and test["start_time"] == "2026-11-29T08:40:00Z"


def test_a_ci_jobs_build_id_is_used_as_given_and_its_objects_are_left_to_the_ci():
    data = kcidb_document(sample(), ORIGIN, checkout_id="kernelci:c1", build_id="kernelci:b:42")
    LATEST.validate_exactly(data)
    assert "builds" not in data and "checkouts" not in data
    assert {t["build_id"] for t in data["tests"]} == {"kernelci:b:42"}
    assert data["tests"][0]["id"].startswith(f"{ORIGIN}:kernelci:b:42:")
    own = kcidb_document(sample(), ORIGIN, build_id=f"{ORIGIN}:b7")
    assert own["tests"][0]["id"].startswith(f"{ORIGIN}:b7:")
    only_checkout = kcidb_document(sample(), ORIGIN, checkout_id="kernelci:c1")
    LATEST.validate_exactly(only_checkout)
    assert "checkouts" not in only_checkout and only_checkout["builds"][0]["checkout_id"] == "kernelci:c1"


def test_the_number_is_the_judged_death_median_and_duration_the_wall_time():
    runs = tuple(GateRun(verdict="pass", death_s=d) for d in (4.2, 4.096, 4.1))
    scenario = dataclasses.replace(sample().scenarios[1], runs=runs, measured_s=Measured(4.096, 4.1, 4.2),
                                   duration_s=15.5)
    test = kcidb_document(with_scenarios(scenario), ORIGIN)["tests"][0]
    assert test["number"] == {"value": 4.1, "unit": "s"}
    assert test["duration"] == 15.5
    assert test["misc"]["measured_s"] == {"min": 4.096, "median": 4.1, "max": 4.2} and test["misc"]["runs"] == 3
    skipped = next(t for t in kcidb_document(sample(), ORIGIN)["tests"] if t["status"] == "SKIP")
    assert "number" not in skipped and "log_excerpt" not in skipped


def test_the_environment_says_hz_cpus_and_whether_the_kernel_ran_emulated():
    host = kcidb_document(sample(), ORIGIN)["tests"][0]["environment"]
    assert host["comment"] == "HZ=250, 2 CPUs, on the host, machine virtualization kvm"
    assert host["misc"]["emulated"] is False and host["misc"]["hz"] == 250 and host["misc"]["cpus"] == 2
    guest = dataclasses.replace(sample(), guest=GuestRecord(kernel="debian:6.1", accel="tcg", slow=True))
    env = kcidb_document(guest, ORIGIN)["tests"][0]["environment"]
    assert env["comment"].startswith("HZ=250, 2 CPUs, emulated (TCG)")
    assert env["misc"]["emulated"] is True and env["misc"]["accel"] == "tcg"
    assert "hostname" not in json.dumps(kcidb_document(sample(), ORIGIN))


def test_the_failure_explanation_is_the_log_excerpt_cut_to_kcidbs_limit():
    tests = {t["misc"]["netkit_id"]: t for t in kcidb_document(sample(), ORIGIN)["tests"]}
    assert tests["ipv6-idle-link-down-1/1/3"]["log_excerpt"].startswith("FAIL ipv6-idle-link-down-1/1/3: died EARLY")
    assert "log_excerpt" not in tests["ipv4-idle-blackhole-1/1/3"]
    assert tests["ipv4-unacked-blackhole-1/1/3-ut1500"]["log_excerpt"]  # an error: its reason
    long = "x" * (LOG_EXCERPT_MAX * 2) + "\0"
    failing = dataclasses.replace(sample().scenarios[0], runs=(GateRun(verdict="fail", explain=long),))
    data = kcidb_document(with_scenarios(failing), ORIGIN)
    LATEST.validate_exactly(data)
    excerpt = data["tests"][0]["log_excerpt"]
    assert len(excerpt) == LOG_EXCERPT_MAX and excerpt.endswith("the gate's JSON document has the rest]")
    too_long = {**data, "tests": [{**data["tests"][0], "log_excerpt": "x" * (LOG_EXCERPT_MAX + 1)}]}
    with pytest.raises(jsonschema.ValidationError):  # the limit is the schema's, not one netkit made up
        LATEST.validate_exactly(too_long)


# ---------------------------------------------------------------------------------------------------------------
# NIPA


def collector_reads(data: dict) -> list[tuple[str, str, str | None, bool]]:
    """What NIPA's contest/results-collector.py takes from a result file (result_flatten, insert_result_psql)."""
    for key in ("executor", "branch", "start", "end", "results"):
        assert key in data, key
    datetime.datetime.fromisoformat(data["start"]), datetime.datetime.fromisoformat(data["end"])
    assert len(data["branch"]) <= 80 and len(data["executor"]) <= 80 and data["branch"][-17:]
    flat = []
    for test in data["results"]:
        flat.append((test["group"], test["test"], None, test["result"].lower() == "pass"))
        for case in test.get("results", []):
            flat.append((test["group"], test["test"], case["test"], case["result"].lower() == "pass"))
    return flat


def test_the_nipa_file_has_the_fetchers_shape():
    data = nipa_document(sample(), branch="net-next-2026-12-04--18-00", link="https://ci.example.org/netkit/1")
    assert list(data) == ["executor", "branch", "start", "end", "link", "results"]
    assert data["executor"] == "netkit" and data["branch"] == "net-next-2026-12-04--18-00"
    assert data["start"] == "2026-11-29 08:40:00+00:00" and data["end"] == "2026-11-29 08:40:13+00:00"
    for one in data["results"]:
        assert set(one) <= {"test", "group", "result", "time", "link"}
        assert one["group"] == "netkit" and one["result"] in ("pass", "skip", "fail")
        assert one["link"] == "https://ci.example.org/netkit/1"
    assert data["results"][0] == {"test": "ipv6-idle-link-down-1-1-3", "group": "netkit", "result": "fail",
                                  "time": 4.6, "link": "https://ci.example.org/netkit/1"}
    flat = collector_reads(json.loads(json.dumps(data)))
    assert [(g, t, ok) for g, t, _, ok in flat][:2] == [("netkit", "ipv6-idle-link-down-1-1-3", False),
                                                        ("netkit", "ipv4-idle-blackhole-1-1-3", True)]
    bare = nipa_document(sample(), branch="b", executor="lab-netkit")
    assert "link" not in bare and all("link" not in r for r in bare["results"]) and bare["executor"] == "lab-netkit"


def test_each_outcome_is_what_nipas_ktap_parser_makes_of_netkits_tap_line():
    assert {o: result(o) for o in GateOutcome} == {
        "pass": "pass", "xfail": "pass", "xpass": "pass", "skip": "skip", "fail": "fail", "error": "fail",
        "inconclusive": "skip"}  # its TAP line is "ok ... # SKIP inconclusive: ...", which NIPA reads as skip
    assert result("flaky") == "fail"


def test_names_are_namified_as_nipa_does_and_stay_distinct():
    assert namify("ipv6-unacked-blackhole-1/1/3-retries2=3") == "ipv6-unacked-blackhole-1-1-3-retries2-3"
    assert namify("a//b..") == "a-b" and namify("") == "no-name"
    base = sample().scenarios[0]
    doc = with_scenarios(*(dataclasses.replace(base, id=i) for i in ("x-1/1/3", "x-1-1-3", "x 1 1 3")))
    assert [r["test"] for r in nipa_document(doc, branch="b")["results"]] == ["x-1-1-3", "x-1-1-3-2", "x-1-1-3-3"]


# ---------------------------------------------------------------------------------------------------------------
# The gate's options


def gate_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["gate", *argv])


def test_the_options_check_and_write_both_files_per_kernel():
    args = gate_args("--kcidb", "k.json", "--kcidb-origin", ORIGIN, "--nipa", "n.json")
    assert kernel_ci.check(args, environ={"BRANCH": "net-next-2026-12-04--18-00"}) == ["k.json", "n.json"]
    assert args.nipa_branch == "net-next-2026-12-04--18-00"
    files = dict(kernel_ci.reports(args, sample(), lambda path: f"{path}.debian-6.1"))
    assert set(files) == {"k.json.debian-6.1", "n.json.debian-6.1"}
    LATEST.validate_exactly(json.loads(files["k.json.debian-6.1"]))
    assert json.loads(files["n.json.debian-6.1"])["executor"] == "netkit"
    given = gate_args("--nipa", "n.json", "--nipa-branch", "mine")
    kernel_ci.check(given, environ={"BRANCH": "theirs"})
    assert given.nipa_branch == "mine"
    with pytest.raises(InputError, match="--nipa needs the netdev branch"):
        kernel_ci.check(gate_args("--nipa", "n.json"), environ={})


def test_the_gates_help_names_the_kernel_ci_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--kcidb FILE", "--kcidb-origin ORIGIN", "--kcidb-checkout-id ID", "--kcidb-build-id ID",
                   "--nipa FILE", "--nipa-branch NAME", "--nipa-executor NAME", "--nipa-link URL"):
        assert option in text
    assert "default: <origin>:<kernel release>" in text and "default: $BRANCH" in text
