"""JUnit XML from a gate document: read back with junitparser, the way a CI system reads it."""

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from netkit.document.codec import run_from_dict
from netkit.report.junit import classname, to_junit
from netkit.report.markdown import failure_message

junitparser = pytest.importorskip("junitparser")

OLD_EVIDENCE = "evidence: observer (recorded before netkit kept a timer ledger)"  # every run of a /1 or /2 document
DOC = Path(__file__).parent / "data" / "gate-document.json"


def load() -> dict:
    return json.loads(DOC.read_text())


def suite_of(xml: str):
    (suite,) = list(junitparser.JUnitXml.fromstring(xml))
    return suite


def cases_by_name(suite) -> dict:
    return {case.name: case for case in suite}


def test_well_formed_with_the_pytest_xunit2_shape():
    root = ET.fromstring(to_junit(load()))
    assert root.tag == "testsuites" and root.get("name") == "netkit.gate"
    (suite,) = root
    assert suite.tag == "testsuite" and suite.get("name") == "netkit.gate"
    assert set(suite.attrib) >= {"tests", "failures", "errors", "skipped", "time", "timestamp", "hostname"}
    assert suite[0].tag == "properties" and all(child.tag == "testcase" for child in suite[1:])


def test_counts_as_pytest_counts_them():
    doc = load()
    suite = suite_of(to_junit(doc))
    totals = doc["totals"]
    assert suite.tests == len(doc["scenarios"]) == 8
    assert suite.failures == totals["fail"] == 1
    assert suite.errors == totals["error"] == 1
    assert suite.skipped == totals["skip"] + totals["xfail"] == 2  # pytest counts xfail as skipped
    assert suite.time == pytest.approx(doc["wall_s"])
    assert suite.timestamp == doc["started"]


def test_properties_say_where_it_ran():
    suite = suite_of(to_junit(load()))
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["kernel.release"] == "6.18.44-fc-v595"
    assert properties["kernel.hz"] == "250"
    assert properties["netkit"] == "0.1.0"
    assert properties["machine.cpus"] == "2"
    assert properties["machine.virtualization"] == "kvm"
    assert properties["machine.slow"] == "false"


def test_one_testcase_per_scenario_with_classname_state_fault():
    doc = load()
    cases = list(suite_of(to_junit(doc)))
    assert [c.name for c in cases] == [s["id"] for s in doc["scenarios"]]
    assert [c.classname for c in cases] == [f"netkit.gate.{s['state']}.{s['fault']}" for s in doc["scenarios"]]
    assert cases[0].time == pytest.approx(4.6)


def test_failure_message_names_rule_window_measured_error_and_count():
    doc = load()
    case = cases_by_name(suite_of(to_junit(doc)))["ipv6-idle-link-down-1/1/3"]
    (failure,) = case.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == (
        "expected death at 4.000 s, window [3.996, 4.136] s (tcp_keepalive_timer ...); measured 3.500 s; "
        "error ETIMEDOUT (expected ETIMEDOUT); tcpi_probes 2 (expected 3)"
    )
    assert failure.text == doc["scenarios"][0]["runs"][0]["explain"].rstrip() + "\n" + OLD_EVIDENCE


def test_error_skip_and_xfail_map_as_pytest_maps_them():
    doc = load()
    cases = cases_by_name(suite_of(to_junit(doc)))
    by_id = {s["id"]: s for s in doc["scenarios"]}
    (error,) = cases["ipv4-unacked-blackhole-1/1/3-ut1500"].result
    assert isinstance(error, junitparser.Error)
    assert error.message == by_id["ipv4-unacked-blackhole-1/1/3-ut1500"]["reason"]
    (skipped,) = cases["ipv4-idle-netem-loss-1/1/3"].result
    assert isinstance(skipped, junitparser.Skipped) and skipped.type == "pytest.skip"
    assert skipped.message == by_id["ipv4-idle-netem-loss-1/1/3"]["reason"]
    (xfail,) = cases["ipv6-unacked-blackhole-1/1/3-ut1500"].result
    assert isinstance(xfail, junitparser.Skipped) and xfail.type == "pytest.xfail"
    assert xfail.message.startswith("IPv6 retransmissions run one RTO longer")
    assert cases["ipv4-idle-blackhole-1/1/3"].result == []  # pass
    assert cases["ipv4-idle-peer-reboot-1/1/3"].result == []  # xpass passes, as pytest without strict
    assert "XPASS" in cases["ipv4-idle-peer-reboot-1/1/3"].system_out


def test_timeline_in_system_out_one_event_per_line():
    doc = load()
    case = cases_by_name(suite_of(to_junit(doc)))["ipv4-idle-blackhole-1/1/3"]
    evidence, *lines = case.system_out.splitlines()  # how the run was judged, then its timeline
    timeline = doc["scenarios"][1]["runs"][0]["timeline"]
    assert evidence == OLD_EVIDENCE and len(lines) == len(timeline)
    assert lines[3].split() == ["1.024", "s", "[wire]"] + timeline[3]["what"].split()
    assert "[sampled]" in cases_by_name(suite_of(to_junit(doc)))["ipv4-idle-link-down-1/1/3"].system_out


def test_markup_and_characters_xml_cannot_carry_are_escaped():
    doc = load()
    nasty = 'a<b>&"c\']]>\x1b[31m\x00'
    scenario = doc["scenarios"][0]
    scenario["id"] = "ipv6-" + nasty
    scenario["runs"][0]["explain"] = "explain " + nasty
    scenario["runs"][0]["error"] = "E<&>"
    doc["scenarios"][3]["reason"] = "skip " + nasty
    xml = to_junit(doc)
    ET.fromstring(xml)  # well-formed despite ESC and NUL
    cases = list(suite_of(xml))
    readable = 'a<b>&"c\']]>#x1B[31m#x00'
    assert cases[0].name == "ipv6-" + readable
    assert cases[0].result[0].text == "explain " + readable + "\n" + OLD_EVIDENCE
    assert "error E<&> (expected ETIMEDOUT)" in cases[0].result[0].message
    assert cases[3].result[0].message == "skip " + readable


def test_several_runs_name_how_many_failed():
    doc = load()
    scenario = doc["scenarios"][0]
    good = copy.deepcopy(doc["scenarios"][2]["runs"][0])
    scenario["runs"] = [good, scenario["runs"][0], good]
    suite = suite_of(to_junit(doc))
    failure = list(suite)[0].result[0]
    assert failure.message.startswith("1/3 runs failed; run 2: expected death at 4.000 s")
    assert failure.text.startswith("run 2/3:\n")
    assert "run 1/3: pass" in list(suite)[0].system_out


def test_alternative_window_and_count_and_tcpext_source():
    doc = load()
    scenario = copy.deepcopy(doc["scenarios"][7])
    assert run_from_dict(scenario["runs"][0]).count == 4  # TcpExt.TCPWinProbe -> counters["TCPWinProbe"]
    scenario["outcome"] = "fail"
    scenario["runs"][0]["verdict"] = "fail"
    assert failure_message(scenario) == (
        "expected death at 3.060 s, window [3.056, 3.316] or [2.996, 3.056] s (tcp_probe_timer ...); "
        "measured 3.064 s; error ETIMEDOUT (expected ETIMEDOUT); TcpExt.TCPWinProbe 4 (expected 4 or 3)"
    )


def test_missing_optional_keys_and_unknown_extra_keys_are_fine():
    doc = {"schema": "netkit-gate/1", "scenarios": [{"id": "x", "outcome": "fail", "group": "idle/blackhole",
                                                     "runs": [{"verdict": "fail", "brand_new": 1}]}], "new": {}}
    suite = suite_of(to_junit(doc, hostname="lab1"))
    assert suite.hostname == "lab1"
    (case,) = list(suite)
    assert case.classname == "netkit.gate.idle.blackhole" == classname(doc["scenarios"][0])
    assert "measured no death" in case.result[0].message
    assert to_junit({}).count("<testcase") == 0
