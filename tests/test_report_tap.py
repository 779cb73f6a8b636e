"""kselftest-style TAP from a gate document, and the strict parser that reads it back."""

import json
import re
from pathlib import Path

import pytest

from netkit.report.tap import tap_description, tap_nothing_can_run, to_tap
from netkit.report.tapparse import TapError, parse_tap

DOC = Path(__file__).parent / "data" / "gate-document.json"


def load() -> dict:
    return json.loads(DOC.read_text())


# The result-line formats of tools/testing/selftests/kselftest.h, with the test name
# placed before the directive as ksft_test_result_code() does.
KSELFTEST_FORMS = {
    "pass": re.compile(r"^ok \d+ netkit\.\S+ # time=\d+ms$"),
    "fail": re.compile(r"^not ok \d+ netkit\.\S+ # time=\d+ms$"),
    "skip": re.compile(r"^ok \d+ netkit\.\S+ # SKIP \S.*$"),  # "ok %u # SKIP "
    "xfail": re.compile(r"^ok \d+ netkit\.\S+ # XFAIL \S.*$"),  # "ok %u # XFAIL "
    "xpass": re.compile(r"^ok \d+ netkit\.\S+ # XPASS \S.*$"),  # "ok %u # XPASS "
    "error": re.compile(r"^not ok \d+ netkit\.\S+ # error \S.*$"),  # "not ok %u # error "
}


def test_example_document_as_tap():
    doc = load()
    text = to_tap(doc)
    lines = text.splitlines()
    assert lines[:2] == ["TAP version 13", f"1..{len(doc['scenarios'])}"]
    assert lines[-1] == "# Totals: pass:3 fail:1 xfail:1 xpass:1 skip:1 error:1"
    results = [line for line in lines if line.startswith(("ok ", "not ok "))]
    assert len(results) == len(doc["scenarios"])
    for number, (line, scenario) in enumerate(zip(results, doc["scenarios"], strict=True), 1):
        assert KSELFTEST_FORMS[scenario["outcome"]].match(line), line
        assert line.split()[1 if line.startswith("ok") else 2] == str(number)
    assert results[0] == "not ok 1 netkit.ipv6-idle-link-down-1/1/3 # time=4600ms"
    assert results[1] == "ok 2 netkit.ipv4-idle-blackhole-1/1/3 # time=5196ms"
    assert results[3] == ("ok 4 netkit.ipv4-idle-netem-loss-1/1/3 # SKIP fault netem-loss is not available here: "
                          "the kernel has no sch_netem (CONFIG_NET_SCH_NETEM)")
    others = [line for line in lines[2:] if line not in results]
    assert others and all(line.startswith("# ") or line == "#" for line in others)


def test_to_tap_parses_strictly_and_agrees_with_the_document_totals():
    doc = load()
    run = parse_tap(to_tap(doc))
    assert run.version == 13 and run.plan == len(doc["scenarios"])
    assert run.totals == doc["totals"] == run.counts()
    assert [r.outcome for r in run.results] == [s["outcome"] for s in doc["scenarios"]]
    assert [r.description for r in run.results] == ["netkit." + s["id"] for s in doc["scenarios"]]
    failed = run.results[0]
    assert failed.time_ms == 4600 and not failed.ok
    first = doc["scenarios"][0]["runs"][0]  # its explain precedes it, then how it was judged
    assert failed.diagnostics == first["explain"].rstrip().splitlines() + [
        "evidence: observer (recorded before netkit kept a timer ledger)"]
    assert run.results[4].directive == "error" and run.results[4].reason == doc["scenarios"][4]["reason"]
    assert run.results[5].reason.startswith("IPv6 retransmissions run one RTO longer")


def test_nothing_can_run():
    text = tap_nothing_can_run("not root\nand no sudo")
    assert text == "TAP version 13\n1..0 # SKIP not root and no sudo\n"
    run = parse_tap(text)
    assert run.plan == 0 and run.results == [] and run.plan_skip_reason == "not root and no sudo"


def test_ids_and_reasons_are_made_tap_safe():
    doc = load()
    doc["scenarios"][1]["id"] = "ipv4 #1\nweird"
    doc["scenarios"][3]["reason"] = "no netem # really\nsecond line"
    doc["scenarios"][0]["runs"][0]["explain"] = "first\n\nTotals: pass:9 fail:9 xfail:9 xpass:9 skip:9 error:9\nlast"
    run = parse_tap(to_tap(doc))
    assert run.results[1].description == tap_description("ipv4 #1\nweird") == "netkit.ipv4 _1 weird"
    assert run.results[3].reason == "no netem # really second line"
    assert run.results[0].diagnostics == ["first", "", "  Totals: pass:9 fail:9 xfail:9 xpass:9 skip:9 error:9", "last",
                                             "evidence: observer (recorded before netkit kept a timer ledger)"]


def test_an_outcome_this_version_does_not_know_is_not_ok():
    doc = {"scenarios": [{"id": "x", "outcome": "exploded", "reason": "new outcome", "runs": []}]}
    run = parse_tap(to_tap(doc))
    assert not run.results[0].ok and run.totals["fail"] == 1


def test_empty_document():
    assert parse_tap(to_tap({})).plan == 0


def test_parser_accepts_kselftest_variants():
    run = parse_tap(
        "TAP version 13\n"
        "# a message for test 1\n"
        "ok 1 # SKIP classic kselftest.h form without a name\n"
        "not ok 2 name # TODO not done\n"
        "ok 3 - dashed name #  free comment after two spaces\n"
        "ok 4 name # XPASS\n"
        "#\n"
        "1..4\n"
        "# Totals: pass:1 fail:0 xfail:1 xpass:1 skip:1 error:0\n"
    )
    assert [r.outcome for r in run.results] == ["skip", "xfail", "pass", "xpass"]
    assert run.results[0].description == "" and run.results[0].diagnostics == ["a message for test 1"]
    assert run.results[2].description == "dashed name" and run.results[2].comment == "free comment after two spaces"
    assert run.diagnostics == [""]


def test_bail_out_excuses_a_short_plan():
    run = parse_tap("TAP version 13\n1..3\nok 1 a\nBail out! lab broke\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n")
    assert run.bail_out == "lab broke" and len(run.results) == 1


GOOD = "TAP version 13\n1..2\nok 1 a # time=1ms\nnot ok 2 b # time=2ms\n# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0\n"


@pytest.mark.parametrize(
    "text, line_no, words",
    [
        ("", 1, "empty"),
        ("1..1\nok 1 a\n", 1, "TAP version 13"),
        ("TAP version 12\n1..0\n", 1, "TAP version 13"),
        ("TAP version 13\nTAP version 13\n1..0\n", 2, "duplicate version"),
        ("TAP version 13\nok 1 a\n", 3, "no plan"),
        ("TAP version 13\n1..2\nok 1 a\n", 2, "plan 1..2 but 1 results"),
        ("TAP version 13\n1..1\n1..1\nok 1 a\n", 3, "duplicate plan"),
        ("TAP version 13\n1..2\nok 2 a\nok 1 b\n", 3, "out of order"),
        ("TAP version 13\n1..2\nok 1 a\nok 1 b\n", 4, "duplicated"),
        ("TAP version 13\n1..1\nhello\nok 1 a\n", 3, "not a TAP line"),
        ("TAP version 13\n1..1\n  ok 1 a\n", 3, "not a TAP line"),
        ("TAP version 13\n1..1\n\nok 1 a\n", 3, "not a TAP line"),
        ("TAP version 13\n1..1\n#no space\nok 1 a\n", 3, "not a TAP line"),
        ("TAP version 13\n1..1\nok 1 a # FOO reason\n", 3, "unknown directive 'FOO'"),
        ("TAP version 13\n1..1\nok 1 a # skip lower case\n", 3, "unknown directive 'skip'"),
        ("TAP version 13\n1..1\nnot ok 1 a # XFAIL reason\n", 3, "XFAIL is reported on an 'ok' line"),
        ("TAP version 13\n1..1\nok 1 a # error reason\n", 3, "error is reported on a 'not ok' line"),
        ("TAP version 13\n1..1\nok 1 a #SKIP\n", 3, "one space"),
        ("TAP version 13\n1..1\nok 1 a#b\n", 3, "one space"),
        ("TAP version 13\n1..1 # SKIP why\nok 1 a\n", 2, "1..0"),
        ("TAP version 13\nok 1 a\n1..1\nok 2 b\n", 4, "trailing plan"),
        (GOOD.replace("pass:1 fail:1", "pass:2 fail:0"), 5, "Totals disagree with the results (pass 2 != 1, fail 0 != 1)"),
        (GOOD.replace(" error:0", ""), 5, "malformed Totals"),
        (GOOD + "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0\n", 6, "duplicate Totals"),
        (GOOD.replace("1..2", "1..3") + "ok 3 c\n", 6, "after the Totals line"),
        ("TAP version 13\n1..1\nBail out! x\nok 1 a\n", 4, "Bail out!"),
    ],
)
def test_every_rule_broken_once_names_its_line(text, line_no, words):
    with pytest.raises(TapError) as caught:
        parse_tap(text)
    assert caught.value.line_no == line_no, caught.value
    assert words in caught.value.msg
    assert str(caught.value).startswith(f"line {line_no}: ")


def test_the_good_stream_used_above_is_good():
    assert parse_tap(GOOD).counts() == {"pass": 1, "fail": 1, "xfail": 0, "xpass": 0, "skip": 0, "error": 0}
