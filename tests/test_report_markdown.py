"""docs/measured.md's measured table from a gate document."""

import copy
import json
from pathlib import Path

from netkit.report.markdown import HEADER, table_row, to_markdown

OLD_EVIDENCE = "; evidence: observer (recorded before netkit kept a timer ledger)"  # a run of schema /1 or /2
DOC = Path(__file__).parent / "data" / "gate-document.json"


def load() -> dict:
    return json.loads(DOC.read_text())


def scenario_like_readme(runs: int, measured: list, **run_fields) -> dict:
    """A passing keepalive scenario with ``runs`` runs dying at ``measured`` (cycled)."""
    doc = load()
    scenario = copy.deepcopy(doc["scenarios"][2])  # ipv4-idle-link-down-1/1/3, pass
    run = scenario["runs"][0]
    run.update(run_fields)
    scenario["runs"] = [dict(copy.deepcopy(run), measured_s=measured[i % len(measured)]) for i in range(runs)]
    ordered = sorted(measured[i % len(measured)] for i in range(runs))
    scenario["measured_s"] = {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}
    for key in ("expected_s", "window_s"):
        if key in run_fields:
            scenario[key] = run_fields[key]
    scenario["id"] = run_fields.get("id", scenario["id"])
    return scenario


def test_rows_match_the_readme_format():
    assert table_row(scenario_like_readme(6, [4.096])) == (
        "| ipv4-idle-link-down-1/1/3 | 4.000 | [3.996, 4.136] | 4.096 / 4.096 / 4.096 | ETIMEDOUT "
        "| tcpi_probes: [3] (exp 3) | 6/6 pass" + OLD_EVIDENCE + " |"
    )
    alternative = scenario_like_readme(
        3, [3.072, 3.076, 3.076], id="ipv4-idle-link-down-1/1/3-ut3050", expected_s=4.0, window_s=[3.996, 4.136],
        alternative_window_s=[3.05, 3.104], probes=2, alternative_count=2,
    )
    assert table_row(alternative) == (
        "| ipv4-idle-link-down-1/1/3-ut3050 | 4.000 | [3.996, 4.136] or [3.050, 3.104] | 3.072 / 3.076 / 3.076 "
        "| ETIMEDOUT | tcpi_probes: [2] (exp 3 or 2) | 3/3 pass" + OLD_EVIDENCE + " |"
    )


def test_skip_is_one_merged_row():
    skip = load()["scenarios"][3]
    assert table_row(skip) == (
        "| ipv4-idle-netem-loss-1/1/3 | skipped: fault netem-loss is not available here: the kernel has no sch_netem "
        "(CONFIG_NET_SCH_NETEM) |||||"
    )


def test_whole_table_for_the_example():
    text = to_markdown(load())
    lines = text.splitlines()
    assert lines[0].startswith("Measured on this kernel (6.18.44-fc-v595, HZ=250, 2 cores, kvm), each scenario run 1")
    assert lines[0].endswith("3 pass, 1 fail, 1 xfail, 1 xpass, 1 skip, 1 error.")
    assert lines[2] == HEADER == "| cell | expected (s) | window (s) | measured min/median/max (s) | error | count | verdict |"
    assert lines[3] == "|---|---|---|---|---|---|---|"
    assert lines[4] == ("| ipv6-idle-link-down-1/1/3 | 4.000 | [3.996, 4.136] | 3.500 / 3.500 / 3.500 | ETIMEDOUT "
                        "| tcpi_probes: [2] (exp 3) | 0/1 pass" + OLD_EVIDENCE + " |")
    assert lines[8].startswith("| ipv4-unacked-blackhole-1/1/3-ut1500 | error: no result 30.0 s after its deadline")
    assert lines[8].endswith(" |||||")
    assert "tcpi_retransmits: [4] (exp 3) | 0/1 pass (xfail: IPv6 retransmissions" in lines[9]
    assert lines[10].endswith("| 1/1 pass (xpass: the peer's RST sometimes arrives after a second probe)" + OLD_EVIDENCE + " |")
    assert "| [3.056, 3.316] or [2.996, 3.056] |" in lines[11]
    assert "| TcpExt.TCPWinProbe: [4] (exp 4 or 3) |" in lines[11]
    assert len(lines) == 4 + len(load()["scenarios"])
    assert to_markdown(load(), heading=False).splitlines()[0] == HEADER


def test_repeats_show_distinct_counts_and_errors():
    scenario = scenario_like_readme(3, [4.096, 4.1, 3.5])
    scenario["runs"][2].update(probes=2, error="ECONNRESET", verdict="fail")
    row = table_row(scenario)
    assert "| 3.500 / 4.096 / 4.100 | ETIMEDOUT, ECONNRESET | tcpi_probes: [2, 3] (exp 3) | 2/3 pass" + OLD_EVIDENCE + " |" in row


def test_cells_cannot_break_the_table():
    scenario = load()["scenarios"][3]
    scenario["reason"] = "a | b\nc"
    assert table_row(scenario) == "| ipv4-idle-netem-loss-1/1/3 | skipped: a \\| b c |||||"


def test_missing_optional_keys():
    assert to_markdown({}).splitlines()[0].startswith("Measured on this kernel (?")
    row = table_row({"id": "x", "outcome": "fail", "runs": [{"verdict": "fail"}]})
    assert row == "| x | — | — | no death | — | count: [] (exp —) | 0/1 pass" + OLD_EVIDENCE + " |"
