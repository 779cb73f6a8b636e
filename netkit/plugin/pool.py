"""The plugin's session-wide scenario pool: every parametrized scenario started at once, each result asserted alone.

``netkit_pool`` wraps one :class:`netkit.scenario.pool.ScenarioPool` per
session (per xdist worker, bounded to 1/N of the usual size).  Once
collection has finished (:func:`remember_scenarios`, from
``pytest_collection_finish``: after ``-k``, ``-m`` and every plugin have
deselected what they deselect) the plugin notes every :class:`netkit.Scenario`
a selected test is parametrized with, so that the pool starts them all on
first use and a whole matrix takes about as long as its longest scenario.  A
deselected test's scenario is never started.  netkit's heavy modules (the
scenario pool, pyroute2) are imported when the pool is first used.

A result that is *machine late* (its timer ledger measured the softirq's
lateness, and without it the run passes: not the kernel's failure) runs once
more, as the gate retries it (:mod:`netkit.gate.retry`); machine late again,
the test is skipped, its reason ``inconclusive: machine late ...`` (the
plugin's docstring says why a skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ..errors import CANNOT_RUN_HERE
from .collection import scenarios_of
from .options import settings, skip_unless_privileged
from .record import RUNNING_KEY

if TYPE_CHECKING:  # imported when the pool is first used: the plugin module loads in every pytest session
    from ..scenario import Scenario, ScenarioResult
    from ..scenario.pool import ScenarioPool

MIN_WORKERS_PER_XDIST_WORKER = 4  # a test that submits a few scenarios itself still runs them at once
SCENARIOS_KEY: pytest.StashKey[list[Scenario]] = pytest.StashKey()  # every Scenario the selected tests are parametrized with


class PoolForTests:
    """The session's ScenarioPool, turning "cannot run here" into a skip."""

    def __init__(self, pool: ScenarioPool, config: pytest.Config) -> None:
        self.pool = pool
        self.config = config
        self._retries: dict[Scenario, ScenarioResult] = {}  # one retry per scenario, whichever tests share it
        self._submitted: dict[Scenario, None] = {}  # every scenario given to the pool, in order (each once)

    @property
    def submitted(self) -> list[Scenario]:
        """Every scenario the pool was given (started at once, or asked for by a test), in order."""
        return list(self._submitted)

    def submit(self, *scenarios: Scenario) -> None:
        self.pool.submit(*scenarios)
        self._submitted.update(dict.fromkeys(scenarios))

    def wait_idle(self) -> None:
        """Wait until the session's scenarios have all ended: for a test that loads the machine itself
        (several gates at once, a timing benchmark) and must not spoil their timing, nor they its own."""
        self.pool.wait_idle()

    def result(self, scenario: Scenario) -> ScenarioResult:
        """The scenario's result; machine late, its retry's; machine late again, the test is skipped (inconclusive)."""
        from ..gate.retry import inconclusive_reason
        from ..scenario.spec import require_scenario

        self._submitted[require_scenario(scenario, "netkit_pool.result()")] = None  # the pool submits it, once
        try:
            result = self._note(self.pool.result(scenario))
            if result.machine_late:
                if scenario not in self._retries:
                    self._retries[scenario] = self.pool.start(scenario).result()
                retry = self._note(self._retries[scenario])
                if retry.machine_late:
                    pytest.skip(f"inconclusive: {inconclusive_reason(retry.machine_late)}; on the retry too "
                                f"(the first run: {inconclusive_reason(result.machine_late)})")
                result = retry
        except CANNOT_RUN_HERE as exc:
            pytest.skip(str(exc))
        return result

    def _note(self, result: ScenarioResult) -> ScenarioResult:
        running = self.config.stash.get(RUNNING_KEY, None)
        if running is not None:  # so that a failing test's report can name this scenario's capture
            running.results.append(result)
        return result


def xdist_workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers run this session (0 when this process is not one of them)."""
    workerinput = getattr(config, "workerinput", None)  # set by xdist in each worker process
    return int(workerinput.get("workercount", 1)) if workerinput is not None else 0


def pool_size(config: pytest.Config) -> int:
    """The session pool's bound on worker processes; pytest-xdist's workers share one machine's bound."""
    from ..scenario.pool import DEFAULT_WORKERS

    sharing = xdist_workers(config)
    return max(MIN_WORKERS_PER_XDIST_WORKER, DEFAULT_WORKERS // sharing) if sharing else DEFAULT_WORKERS


def remember_scenarios(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember every Scenario a selected test is parametrized with, for netkit_pool to start at once.

    Not under pytest-xdist: each worker collects every test but runs only the
    ones the controller hands it, so starting them all would run each scenario
    once per worker.  There a scenario starts when its test asks for it, and
    xdist's workers are the concurrency.
    """
    if xdist_workers(config):
        config.stash[SCENARIOS_KEY] = []
        return
    found: dict[Scenario, None] = {}
    for item in items:
        found.update(dict.fromkeys(scenarios_of(item)))
    config.stash[SCENARIOS_KEY] = list(found)


@pytest.fixture(scope="session")
def netkit_pool(pytestconfig: pytest.Config) -> Iterator[PoolForTests]:
    """Name: netkit_pool. Scope: session. Depends: root.

    Every :class:`netkit.Scenario` that a selected test is parametrized with
    is started when the pool is first used, all at once, so a whole session's
    matrix takes about as long as its longest scenario.  Others can be
    submitted up front explicitly; then assert each result in its own test::

        MATRIX = [Scenario(KeepaliveSettings(1, 1, c)) for c in (3, 5)]

        @pytest.fixture(scope="module", autouse=True)
        def _start(netkit_pool):
            netkit_pool.submit(*MATRIX)

        @pytest.mark.parametrize("scenario", MATRIX, ids=lambda s: s.id)
        def test_dies_on_time(netkit_pool, scenario):
            result = netkit_pool.result(scenario)
            assert result.verdict == "pass", result.explain()

    A test that uses it and is parametrized with scenarios gets a
    pytest-timeout deadline from their predictions, unless it has a timeout
    of the user's (:mod:`netkit.plugin.deadlines`).  ``submitted`` lists
    every scenario the pool was given, in order.
    """
    from ..scenario.pool import ScenarioPool

    skip_unless_privileged(pytestconfig)
    chosen = settings(pytestconfig)
    with ScenarioPool(max_workers=pool_size(pytestconfig), keep_failed=chosen.keep_failed, pcap_dir=chosen.pcap_dir) as pool:
        for_tests = PoolForTests(pool, pytestconfig)
        for_tests.submit(*pytestconfig.stash.get(SCENARIOS_KEY, []))
        yield for_tests
