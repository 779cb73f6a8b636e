"""Many connections, one fault: every connection must die inside the one window.

The pure tests (no root) pin the setting's validation, the id, the JSON
(``connections`` only when N > 1) and the judging of every connection; the
root tests run 20 connections per family through the session's pool.
"""

import json

import pytest
from test_result import RESULT_KEYS

from netkit import KeepaliveSettings, Scenario, ScenarioResult, SettingError
from netkit.kernel import KernelInfo
from netkit.model import keepalive_death
from netkit.scenario.result import ConnectionDeath

KERNEL = KernelInfo("test", 250, "test")
K = KeepaliveSettings(1, 1, 3)  # 1/1/3 at HZ=250: window [3.996, 4.136] s, 3 probes, ETIMEDOUT
CONNECTIONS = 20
SCALE = [Scenario(K, family=family, fault="blackhole", connections=CONNECTIONS) for family in ("ipv4", "ipv6")]
CONNECTION_KEYS = ["index", "measured_s", "error", "count", "fault_at_s", "wire_rst_s", "wire_probes"]


def _result(connections=(), **measured):
    scenario = Scenario(K, connections=max(1, len(connections)))
    measured = {"measured_s": 4.1, "error": "ETIMEDOUT", "probes": 3, "fault_at_s": 0.004,
                "fault_deadline_s": 0.5, **measured}
    return ScenarioResult(scenario, KERNEL, keepalive_death(K, KERNEL), connections=tuple(connections), **measured)


def _deaths(n, changed=None):
    """n connections that died as the rule says; ``changed`` maps an index to changed fields."""
    found = []
    for i in range(n):
        fields = {"measured_s": 4.1, "error": "ETIMEDOUT", "count": 3, "fault_at_s": 0.004, **(changed or {}).get(i, {})}
        found.append(ConnectionDeath(i, **fields))
    return found


# -- the setting --------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1001, 2.0, "20", True, None])
def test_connections_outside_1_to_1000_is_a_setting_error_naming_the_field_and_range(value):
    with pytest.raises(SettingError) as raised:
        Scenario(K, connections=value)
    assert raised.value.field == "connections" and "1..1000" in str(raised.value)


@pytest.mark.parametrize("state", ["unacked", "zero-window"])
def test_many_connections_are_refused_for_the_data_states(state):
    with pytest.raises(SettingError, match="only for the idle state"):
        Scenario(K, state=state, connections=2)
    assert Scenario(K, state=state, connections=1).connections == 1


def test_the_id_names_the_connections_only_when_more_than_one():
    assert Scenario(K).id == Scenario(K, connections=1).id == "ipv4-idle-link-down-1/1/3"
    assert Scenario(K, connections=20).id == "ipv4-idle-link-down-1/1/3-x20"
    assert Scenario(K, connections=1000, side="client").id.endswith("-client-side-x1000")
    assert Scenario(K, connections=20) != Scenario(K) and len({Scenario(K, connections=2), Scenario(K)}) == 2


# -- the record ---------------------------------------------------------------------


def test_one_connection_keeps_the_pinned_json_and_text():
    result = _result()
    assert list(result.to_dict()) == RESULT_KEYS
    assert "connections" not in result.explain()
    assert result.verdict == "pass", result.explain()


def test_many_connections_add_one_last_key_listing_every_death():
    result = _result(_deaths(CONNECTIONS))
    data = result.to_dict()
    assert list(data) == RESULT_KEYS + ["connections"]
    assert data["connections"]["count"] == CONNECTIONS and data["connections"]["passed"] == CONNECTIONS
    assert [list(d) for d in data["connections"]["deaths"]] == [CONNECTION_KEYS] * CONNECTIONS
    assert [d["index"] for d in data["connections"]["deaths"]] == list(range(CONNECTIONS))
    json.dumps(data)
    assert result.verdict == "pass", result.explain()
    assert f"connections: {CONNECTIONS}, {CONNECTIONS} died inside the window" in result.explain()


def test_one_late_connection_fails_the_scenario_and_is_named():
    deaths = _deaths(CONNECTIONS)
    deaths[7] = ConnectionDeath(7, 4.21, "ETIMEDOUT", 3, 0.004, wire_rst_s=4.2)  # the kernel itself late
    deaths[8] = ConnectionDeath(8, 4.2, "ETIMEDOUT", 3, 0.004, wire_rst_s=4.096)  # only the observer late: passes
    deaths[9] = ConnectionDeath(9, 3.5, "ETIMEDOUT", 3, 0.004)
    result = _result(deaths)
    assert result.verdict == "fail"
    (failure,) = [f for f in result.failures if f.rule == "connections: death"]
    assert str(failure).startswith(f"2 of {CONNECTIONS} connections died outside [3.996, 4.136] s with 3 (1 EARLY)")
    assert "#7 at 4.200 s (the kernel's RST on the wire)" in str(failure) and "#9 at 3.500 s (EARLY)" in str(failure)
    assert "#8" not in str(failure)
    assert failure.early
    assert result.to_dict()["connections"]["passed"] == CONNECTIONS - 2


def test_wrong_count_error_fault_and_no_death_each_say_how_many_and_which():
    deaths = _deaths(CONNECTIONS)
    deaths[3] = ConnectionDeath(3, 4.1, "ETIMEDOUT", 2, 0.004)
    deaths[4] = ConnectionDeath(4, 4.1, "ENETUNREACH", 3, 0.004)
    deaths[5] = ConnectionDeath(5, 4.1, "ETIMEDOUT", 3, 0.7)
    deaths[6] = ConnectionDeath(6, None, None, None, 0.004)
    messages = {f.rule: str(f) for f in _result(deaths).failures}
    assert messages["connections: tcpi_probes"] == (
        f"1 of {CONNECTIONS} connections died with tcpi_probes other than 3: #3 2 at 4.100 s")
    assert messages["connections: error"] == (
        f"1 of {CONNECTIONS} connections died with an error other than ETIMEDOUT: #4 ENETUNREACH")
    assert messages["connections: the fault"].startswith(f"the fault hit 1 of {CONNECTIONS} connections more than 0.500 s")
    assert messages["connections: death"].startswith(f"1 of {CONNECTIONS} connections did not die within 4.136 s")
    assert "#6" in messages["connections: death"]


def test_a_long_list_is_cut_after_ten_names():
    deaths = [ConnectionDeath(i, 4.3, "ETIMEDOUT", 3, 0.004) for i in range(CONNECTIONS)]
    (failure,) = [f for f in _result(deaths).failures if f.rule == "connections: death"]
    assert str(failure).endswith(f"and {CONNECTIONS - 10} more")


def test_the_connections_are_judged_once_and_the_record_stays_frozen():
    result = _result(_deaths(3, {1: {"measured_s": 4.5}}))
    assert result.judge() == result.failures and result.verdict == "fail"
    with pytest.raises(AttributeError):
        result.connections = ()  # type: ignore[misc]


# -- on this kernel -----------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCALE, ids=lambda s: s.id)
def test_every_one_of_many_connections_dies_inside_the_window(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    p = result.prediction
    assert result.verdict == "pass", result.explain()
    assert len(result.connections) == CONNECTIONS, result.explain()
    for c in result.connections:
        assert c.measured_s is not None and p.window_s[0] <= c.measured_s <= p.window_s[1], result.explain()
        assert c.count == K.cnt and c.error == "ETIMEDOUT", result.explain()
        assert c.wire_rst_s is not None and p.window_s[0] <= c.wire_rst_s <= p.window_s[1], result.explain()
        assert c.wire_probes == K.cnt, result.explain()
    assert result.keepalive_counter == K.cnt * CONNECTIONS, result.explain()  # the namespace counted every probe
    assert result.to_dict()["connections"]["passed"] == CONNECTIONS
