"""The result record (frozen, judged once, a pinned JSON schema) and the one time checker. No root needed."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest

import netkit.report
from netkit import KeepaliveSettings, Scenario, ScenarioResult
from netkit.enums import DeathSource, EventKind, Timing
from netkit.evidence import Event, check_time
from netkit.evidence.death import check_death, late_only
from netkit.evidence.wire import WireEvidence
from netkit.kernel import KernelInfo
from netkit.model import keepalive_death
from netkit.scenario import SCHEMA, ConnectionDeath

# The --json keys, in order.  Changing one is a schema change: bump SCHEMA and say so in docs/cli.md ("The demo's JSON").
RESULT_KEYS = [
    "schema", "kernel", "hz", "id", "family", "keepalive", "keepalive_via", "side", "fault", "state", "rule",
    "expected_s", "window_s", "measured_s", "kernel_death_s", "observer_late_s", "death_s", "death_source",
    "death_timing", "late_by_s", "late_only", "error", "expected_error", "probes", "retransmits", "count_source", "count",
    "expected_count", "alternative_window_s", "alternative_count", "keepalive_counter", "counters",
    "measured_from", "retries2", "peer_error", "peer_expected_error", "peer_lag_s", "fault_at_s", "timeline",
    "wire", "pcap", "verdict", "failures", "kept_namespaces", "rule_failures", "evidence", "evidence_note",
    "machine_late", "ledger",
]
WIRE_KEYS = [
    "interface", "visible", "note", "frames", "drops", "connection_segments", "anchor", "anchor_ns", "probes_s",
    "unanswered_probes", "answered_probes", "spacing_s", "first_probe_s", "rst_s", "peer_rst_s",
    "retransmissions_s", "zero_window_probes_s", "events", "kernel", "error",
]

# 1/1/3 after an answered probe: death expected 4 s after the last segment received.  By hand, per HZ:
# 4 timer runs (1 s each = HZ jiffies: level 1 (8 jiffies) below 504 jiffies, level 2 (64) from there),
# plus 2 measurement jiffies, early by 1 jiffy; capped at 12.5 % (0.5 s), never reached here.
WINDOWS_1_1_3 = {
    100: (3.99, 4.34),  # 4 x 80 ms + 20 ms
    250: (3.996, 4.136),  # 4 x 32 ms + 8 ms
    300: (4 - 1 / 300, 4 + 4 * 8 / 300 + 2 / 300),  # 4 x 26.7 ms + 6.7 ms
    1000: (3.999, 4.258),  # 4 x 64 ms + 2 ms
}


def _result(hz, **measured):
    kernel = KernelInfo("test", hz, "test")
    scenario = Scenario(KeepaliveSettings(1, 1, 3))
    return ScenarioResult(scenario, kernel, keepalive_death(scenario.keepalive, kernel), **measured)


def test_json_keys_are_pinned_by_the_schema():
    data = _result(250, measured_s=4.1, error="ETIMEDOUT", probes=3, counters={"TCPKeepAlive": 3},
                   wire=WireEvidence(events=[Event(0.5, "x", "wire")])).to_dict()
    assert data["schema"] == SCHEMA == "netkit.scenario-result/3"
    assert list(data) == RESULT_KEYS
    assert list(data["wire"]) == WIRE_KEYS
    assert data["wire"]["events"] == [{"t_s": 0.5, "what": "x", "kind": "other"}]  # wire events never had a source key
    json.dumps(data)  # serialisable as it is


def _wire(rst_s, visible=True):
    """A 1/1/3 death's wire, consistent with the rule but for the RST's moment."""
    return WireEvidence(visible=visible, probes_s=[1.0, 2.0, 3.0], spacing_s=[1.0, 1.0], first_probe_s=1.0,
                        unanswered_probes=3, rst_s=rst_s)


def _dead(measured_s, wire):
    return _result(250, measured_s=measured_s, error="ETIMEDOUT", probes=3, counters={"TCPKeepAlive": 3}, wire=wire)


def test_an_observer_woken_late_does_not_fail_a_kernel_on_time_and_its_lateness_is_reported():
    result = _dead(4.160, _wire(4.010))  # window [3.996, 4.136]: the observer is 24 ms past it, the kernel inside
    assert result.verdict == "pass", result.explain()
    assert (result.kernel_death_s, result.observer_late_s, result.death_s) == (4.010, 0.15, 4.010)
    assert ("the kernel's RST on the wire at 4.010 s (the time judged); the observer read 4.160 s, 150.0 ms later"
            in result.explain())
    data = result.to_dict()
    assert (data["measured_s"], data["kernel_death_s"], data["observer_late_s"]) == (4.160, 4.010, 0.15)


def test_a_kernel_late_on_the_wire_fails_whatever_the_observer_read():
    result = _dead(4.100, _wire(4.150))
    assert result.verdict == "fail"
    assert "died late: 4.150 s, outside [3.996, 4.136] s with 3 (the kernel's RST on the wire)" in result.explain()


def test_an_observer_reading_before_the_window_fails_even_with_the_kernel_on_time():
    result = _dead(3.900, _wire(4.010))
    assert result.verdict == "fail"
    assert "the observer saw the death EARLY: 3.900 s < window start 3.996 s" in result.explain()


@pytest.mark.parametrize("wire", [None, _wire(None), _wire(4.010, visible=False)], ids=["no-capture", "no-rst", "hidden"])
def test_without_the_kernel_s_timestamp_the_observer_s_reading_is_judged(wire):
    result = _dead(4.160, wire)
    assert result.kernel_death_s is None and result.observer_late_s is None and result.death_s == 4.160
    assert "died late: 4.160 s, outside [3.996, 4.136] s with 3" in result.explain()


def test_the_judged_facts_are_stored_in_the_record_and_written_as_they_are():
    on_time = _dead(4.160, _wire(4.010))
    assert (on_time.death_s, on_time.death_source, on_time.count) == (4.010, DeathSource.WIRE, 3)
    assert (on_time.death_timing, on_time.late_by_s, on_time.late_only) == (Timing.INSIDE, None, False)
    late = _dead(4.100, _wire(4.150))  # window [3.996, 4.136]: the kernel 14 ms late, the error and count right
    assert (late.death_timing, late.late_by_s, late.late_only) == (Timing.LATE, 0.014, True)
    data = json.loads(late.to_json())
    assert {k: data[k] for k in ("death_s", "death_source", "death_timing", "late_by_s", "late_only", "count")} == {
        "death_s": 4.150, "death_source": "wire", "death_timing": "late", "late_by_s": 0.014, "late_only": True,
        "count": 3}
    observed = _dead(4.160, None)
    assert (observed.death_s, observed.death_source, observed.death_timing) == (4.160, DeathSource.OBSERVER, Timing.LATE)
    alive = _result(250).to_dict()
    assert [alive[k] for k in ("death_s", "death_source", "death_timing", "late_by_s", "late_only", "count")] == [
        None, None, "none", None, False, None]


def test_a_connection_the_observer_never_saw_die_is_not_dead_whatever_the_wire_shows():
    assert ConnectionDeath(1, None, None, None, wire_rst_s=4.0).death_s is None
    assert ConnectionDeath(1, 4.2, "ETIMEDOUT", 3, wire_rst_s=4.0).death_s == 4.0
    assert ConnectionDeath(1, 4.2, "ETIMEDOUT", 3).death_s == 4.2


def test_timeline_events_carry_their_kind():
    death = Event(4.1, "connection dead: ETIMEDOUT, state CLOSE", kind=EventKind.DEATH)
    data = _result(250, measured_s=4.1, error="ETIMEDOUT", probes=3, timeline=(death,)).to_dict()
    assert data["timeline"] == [{"t_s": 4.1, "what": death.what, "source": "", "kind": "death"}]


@pytest.mark.parametrize("module", ["json", "text", "middlebox"])
def test_the_reports_import_the_scenario_for_type_checking_only(module):
    """scenario.result imports the reports; they must not import it back (no cycle)."""
    tree = ast.parse((Path(netkit.report.__file__).parent / f"{module}.py").read_text())
    checking = [node for node in ast.walk(tree) if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    only_checked = {id(n) for block in checking for n in ast.walk(block)}
    at_run_time = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and id(n) not in only_checked
                   and (n.module or "").startswith("scenario")]
    assert at_run_time == []


@pytest.mark.parametrize("hz", sorted(WINDOWS_1_1_3))
def test_failure_message_states_rule_window_measurement_and_probes(hz):
    low, high = WINDOWS_1_1_3[hz]
    result = _result(hz, measured_s=3.5, error="ETIMEDOUT", probes=2, counters={"TCPKeepAlive": 2})
    message = result.explain()
    assert result.verdict == "fail"
    assert f"died EARLY: 3.500 s < window start {low:.3f} s" in message
    assert "tcp_keepalive_timer" in message
    assert f"window [{low:.3f}, {high:.3f}] s" in message and "2 probes (tcpi_probes)" in message
    assert "tcpi_probes = 2 at death, expected 3" in message


@pytest.mark.parametrize("hz", sorted(WINDOWS_1_1_3))
def test_a_death_inside_the_hand_computed_window_passes(hz):
    low, high = WINDOWS_1_1_3[hz]
    for measured in (low, (low + high) / 2, high):
        result = _result(hz, measured_s=round(measured, 6), error="ETIMEDOUT", probes=3)
        assert result.verdict == "pass", result.explain()
    assert _result(hz, measured_s=round(high + 0.001, 6), error="ETIMEDOUT", probes=3).verdict == "fail"


def test_the_record_is_frozen_and_judging_twice_changes_nothing():
    result = _result(250, measured_s=3.5, error="ETIMEDOUT", probes=2)
    first = result.judge()
    assert result.judge() == first == result.failures and len(first) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.measured_s = 4.0
    kept = dataclasses.replace(result, kept_namespaces=("nk-1-a-server",))
    assert kept.failures == result.failures and result.kept_namespaces == ()


def test_check_time_returns_a_failure_record_naming_what_was_expected():
    assert check_time("death", (3.9, 4.1), 4.0) is None
    late = check_time("death", (3.9, 4.1), 4.25, rule="tcp_keepalive_timer", evidence="3 probes")
    assert late is not None and not late.early
    assert (late.rule, late.measured, late.evidence) == ("tcp_keepalive_timer", "4.250 s", "3 probes")
    assert str(late) == "timing error: expected death within [3.900, 4.100] s but it happened at 4.250 s"
    early = check_time("death", [(3.0, 3.1), (3.9, 4.1)], 2.5)
    assert early is not None and early.early
    assert check_time("death", [(3.0, 3.1), (3.9, 4.1)], 3.05) is None  # either outcome
    assert check_time("death", (3.9, 4.1), 3.5) is not None  # between outcomes: not early, still wrong
    assert check_time("death", (3.9, 4.1), (3.8, 3.95)) is None  # a bracket that meets the window
    assert check_time("death", (3.9, 4.1), None).measured == "never"


def test_enum_members_are_their_strings_for_dicts_json_and_ids():
    from netkit.enums import Family, State

    assert Family.IPV6 == "ipv6" and {"ipv6": 1}[Family.IPV6] == 1 and {Family.IPV6: 1}["ipv6"] == 1
    assert json.dumps([State.ZERO_WINDOW]) == '["zero-window"]' and f"{State.ZERO_WINDOW}" == "zero-window"
    scenario = Scenario(KeepaliveSettings(1, 1, 3), "ipv6", "blackhole", "zero-window")
    assert scenario.state is State.ZERO_WINDOW and scenario == Scenario(KeepaliveSettings(1, 1, 3), Family.IPV6,
                                                                       "blackhole", State.ZERO_WINDOW)
    assert scenario.id == "ipv6-zero-window-blackhole-1/1/3"


def test_late_is_past_every_window_only_then_is_it_late_by_something():
    outcomes = [((3.0, 3.1), 2), ((3.9, 4.1), 3)]
    between, after = check_death(outcomes, 3.5), check_death(outcomes, 4.25)
    assert (between.timing, between.late_by_s) == (Timing.LATE, None)  # wrong, but not merely late
    assert (after.timing, after.late_by_s) == (Timing.LATE, 0.15)
    assert check_death(outcomes, 2.9).timing is Timing.EARLY and check_death(outcomes, None).timing is Timing.NONE

    def late(death_s, count, error):
        return late_only(check_death(outcomes, death_s), outcomes, count, error, "ETIMEDOUT")

    assert late(4.25, 3, "ETIMEDOUT") and late(4.25, 2, "ETIMEDOUT")
    assert not late(3.5, 3, "ETIMEDOUT") and not late(4.25, 4, "ETIMEDOUT")
    assert not late(4.25, 3, "EPIPE") and not late(None, 3, None)
