"""The plugin stays out of the way: deselected tests start nothing, unrelated sessions import and print nothing,
the ``netkit`` marker selects netkit's tests, and a test that waits for scenarios gets a deadline from their predictions."""

import json
import sys

import pytest

from netkit import KeepaliveSettings, Scenario
from netkit.kernel import kernel_info
from netkit.plugin import deadlines
from netkit.privileges import missing_privileges

pytest_plugins = ["pytester"]
needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

ALPHA = Scenario(KeepaliveSettings(1, 1, 1))
BETA = Scenario(KeepaliveSettings(1, 1, 2))

SCENARIO_TESTS = '''
import pytest
from netkit import KeepaliveSettings, Scenario

ALPHA = Scenario(KeepaliveSettings(1, 1, 1))
BETA = Scenario(KeepaliveSettings(1, 1, 2))

@pytest.mark.parametrize("scenario", [ALPHA], ids=["alpha"])
def test_alpha(netkit_pool, scenario):
    assert netkit_pool.result(scenario).verdict == "pass"
    assert netkit_pool.submitted == [ALPHA]  # beta, deselected, was never given to the pool

@pytest.mark.parametrize("scenario", [BETA], ids=["beta"])
def test_beta(netkit_pool, scenario):
    assert netkit_pool.result(scenario).verdict == "pass"

def test_plain():
    pass
'''

# Records every scenario any ScenarioPool starts, whatever path started it, and what the plugin remembered to start.
RECORDING_CONFTEST = '''
import json
import netkit.scenario.pool as scenario_pool
from netkit.plugin.pool import SCENARIOS_KEY

_start = scenario_pool.ScenarioPool.start
STARTED = []

def start(self, scenario):
    STARTED.append(scenario.id)
    return _start(self, scenario)

scenario_pool.ScenarioPool.start = start

def pytest_sessionfinish(session):
    remembered = [s.id for s in session.config.stash.get(SCENARIOS_KEY, [])]
    with open("record.json", "w") as f:
        json.dump({"started": STARTED, "remembered": remembered}, f)
'''


def record_of(pytester):
    return json.loads((pytester.path / "record.json").read_text())


@pytest.mark.parametrize("selection", [["-k", "alpha"], ["--deselect", "test_scenarios.py::test_beta[beta]"]])
def test_a_deselected_scenario_is_not_remembered(pytester, selection):
    """Without running anything (--collect-only, no root needed): only the selected test's scenario is remembered."""
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_scenarios=SCENARIO_TESTS)
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider", *selection)
    assert result.ret == 0, result.stdout.str()
    assert record_of(pytester) == {"started": [], "remembered": [ALPHA.id]}


def test_not_netkit_remembers_no_scenario(pytester):
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_scenarios=SCENARIO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not netkit")
    result.assert_outcomes(passed=1, deselected=2)
    assert record_of(pytester) == {"started": [], "remembered": []}


@needs_root
def test_a_deselected_scenario_test_starts_no_scenario(pytester, assert_no_leftovers):
    """For real: the pool runs alpha, and beta -- deselected by -k -- is never started (it was before issue 25)."""
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(test_scenarios=SCENARIO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "alpha")
    result.assert_outcomes(passed=1, deselected=2)
    assert record_of(pytester) == {"started": [ALPHA.id], "remembered": [ALPHA.id]}
    assert_no_leftovers()


# -- nothing imported, measured or printed in a session without netkit tests --------------------------------------

HEAVY_PREFIXES = ("pyroute2", "netkit.lab", "netkit.scenario", "netkit.model", "netkit.gate", "netkit.kernel")
MODULES_CONFTEST = f'''
import json
import sys

def pytest_sessionfinish(session):
    heavy = sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2" or m.startswith({HEAVY_PREFIXES!r}))
    with open("modules.json", "w") as f:
        json.dump({{"heavy": heavy, "plugin_loaded": "netkit.plugin" in sys.modules}}, f)
'''


def test_a_session_without_netkit_tests_imports_and_prints_nothing_of_netkit(pytester):
    pytester.makeconftest(MODULES_CONFTEST)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not [line for line in result.stdout.lines if line.startswith("netkit")], result.stdout.str()
    modules = json.loads((pytester.path / "modules.json").read_text())
    assert modules == {"heavy": [], "plugin_loaded": True}


def test_the_header_line_comes_with_a_netkit_test(pytester):
    pytester.makepyfile("def test_family(netkit_family): assert netkit_family == 'ipv4'\ndef test_plain(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    k = kernel_info()
    result.stdout.fnmatch_lines([f"netkit: kernel {k.release}, HZ={k.hz} (from {k.hz_source}); labs *"])
    for quiet in (["-q"], ["--no-header"], ["-k", "plain"]):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *quiet)
        assert "netkit: kernel" not in result.stdout.str(), (quiet, result.stdout.str())


# -- the marker ----------------------------------------------------------------------------------------------------

MARKED_TESTS = '''
import pytest
from netkit import KeepaliveSettings, Scenario

@pytest.fixture
def my_lab(netkit_lab):
    return netkit_lab

def test_plain():
    pass

def test_lab(netkit_lab):
    pass

def test_through_my_fixture(my_lab):
    pass

def test_pool(netkit_pool):
    pass

def test_routed(netkit_routed_lab):
    pass

def test_connection(netkit_connection):
    pass

@pytest.mark.parametrize("scenario", [Scenario(KeepaliveSettings(1, 1, 3))], ids=["s"])
def test_scenario_value(scenario):
    pass

@pytest.mark.netkit
def test_marked_by_hand():
    pass
'''
NETKIT_TESTS = ["test_lab", "test_through_my_fixture", "test_pool", "test_routed", "test_connection",
                "test_scenario_value[s]", "test_marked_by_hand"]


def collected(pytester, *args):
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--strict-markers", "-p", "no:cacheprovider", *args)
    assert result.ret == 0, result.stdout.str()
    return [line.split("::", 1)[1] for line in result.stdout.lines if "::" in line]


def test_the_netkit_marker_selects_and_deselects_netkit_tests(pytester):
    pytester.makepyfile(MARKED_TESTS)
    assert collected(pytester, "-m", "netkit") == NETKIT_TESTS
    assert collected(pytester, "-m", "not netkit") == ["test_plain"]
    assert "@pytest.mark.netkit: a netkit test" in pytester.runpytest_subprocess("--markers").stdout.str()


# -- deadlines -----------------------------------------------------------------------------------------------------

DEADLINE_TESTS = '''
import pytest
from netkit import KeepaliveSettings, Scenario

ALPHA = Scenario(KeepaliveSettings(1, 1, 1))
BETA = Scenario(KeepaliveSettings(1, 1, 2))

@pytest.mark.parametrize("scenario", [ALPHA, BETA], ids=["alpha", "beta"])
def test_pool(netkit_pool, scenario):
    pass

@pytest.mark.timeout(7)
@pytest.mark.parametrize("scenario", [ALPHA], ids=["alpha"])
def test_own_timeout(netkit_pool, scenario):
    pass

def test_pool_without_scenario(netkit_pool):
    pass

@pytest.mark.parametrize("scenario", [ALPHA], ids=["alpha"])
def test_scenario_without_pool(scenario):
    pass
'''
# What pytest-timeout itself will apply to each test (its own reading of markers, options, environment and ini).
TIMEOUTS_CONFTEST = '''
import json
import pytest_timeout

def pytest_sessionfinish(session):
    found = {}
    for item in session.items:
        settings = pytest_timeout._get_item_settings(item)
        found[item.name] = [settings.timeout, settings.method]
    with open("timeouts.json", "w") as f:
        json.dump(found, f)
'''


def timeouts(pytester, *args, ini=None):
    pytester.makeconftest(TIMEOUTS_CONFTEST)
    pytester.makepyfile(DEADLINE_TESTS)
    if ini:
        pytester.makeini(ini)
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return json.loads((pytester.path / "timeouts.json").read_text())


def expected_deadline_s(scenario):
    from netkit.scenario.pool import DEFAULT_WORKERS  # the pool's size outside pytest-xdist

    bounds = {s: deadlines.run_bound_s(s, kernel_info()) for s in (ALPHA, BETA)}
    backlog = sum(bounds.values()) / DEFAULT_WORKERS
    return round(deadlines.POOL_START_S + deadlines.RUNS * (backlog + bounds[scenario]), 1)


def test_a_pool_test_gets_a_deadline_from_its_prediction(pytester):
    found = timeouts(pytester)
    assert found["test_pool[alpha]"] == [expected_deadline_s(ALPHA), "signal"]
    assert found["test_pool[beta]"] == [expected_deadline_s(BETA), "signal"]
    # 1/1/2 dies a second later than 1/1/1: its deadline is 2 x 1 s longer
    assert found["test_pool[beta]"][0] - found["test_pool[alpha]"][0] == pytest.approx(2.0, abs=0.15)
    assert found["test_own_timeout[alpha]"] == [7.0, "signal"]  # the user's marker wins
    assert found["test_pool_without_scenario"][0] is None  # no prediction: the user's settings (none here)
    assert found["test_scenario_without_pool[alpha]"][0] is None


def test_the_deadline_follows_the_prediction():
    """A longer keepalive gives a longer bound: its lead-in, its predicted death and its give-up time grow."""
    k = kernel_info()
    short = deadlines.run_bound_s(Scenario(KeepaliveSettings(1, 1, 3)), k)
    long_ = deadlines.run_bound_s(Scenario(KeepaliveSettings(10, 5, 3)), k)
    # 10 + 5 x 3 = 25 s death instead of 4 s: +21 s, the give-up margin half of that (+10.5 s), lead-in +13 s;
    # the later window also ends later by the timer wheel's coarser rounding of longer timers (under 2 s)
    assert 21 + 10.5 + 13 <= long_ - short <= 21 + 10.5 + 13 + 2


@pytest.mark.parametrize("how", ["option", "environment", "zero"])
def test_a_timeout_the_user_chose_for_the_run_wins(pytester, monkeypatch, how):
    args = []
    if how == "option":
        args = ["--timeout", "33"]
    elif how == "zero":
        args = ["--timeout", "0"]
    else:
        monkeypatch.setenv("PYTEST_TIMEOUT", "33")
    found = timeouts(pytester, *args)
    expected = 0.0 if how == "zero" else 33.0
    assert found["test_pool[alpha]"][0] == expected
    assert found["test_own_timeout[alpha]"][0] == 7.0


def test_the_ini_timeout_is_a_default_the_deadline_replaces(pytester):
    found = timeouts(pytester, ini="[pytest]\ntimeout = 120\ntimeout_method = thread\n")
    assert found["test_pool[alpha]"] == [expected_deadline_s(ALPHA), "signal"]
    assert found["test_pool_without_scenario"] == [120.0, "thread"]


def test_without_pytest_timeout_no_deadline_and_no_error(pytester):
    pytester.makepyfile(DEADLINE_TESTS)
    result = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider", "-p", "no:timeout")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*5 tests collected*"])


def test_the_plugin_module_imports_nothing_heavy():
    """In this process too: importing the plugin adds no pyroute2 (checked in a fresh interpreter)."""
    import subprocess

    code = ("import sys, netkit.plugin; heavy = [m for m in sys.modules if m.split('.')[0] == 'pyroute2' or "
            f"m.startswith({HEAVY_PREFIXES!r})]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
