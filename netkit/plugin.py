"""netkit's pytest plugin: labs, connected socket pairs and concurrent scenarios as fixtures.

Installed through the ``pytest11`` entry point, so any project that installs
netkit has the fixtures without a conftest.py.

Fixtures (override the small ones to change the big ones, as with
pytest-httpserver):

- ``netkit_family`` -- "ipv4" (default) or "ipv6"; parametrize it to cover both.
- ``netkit_lab`` -- a fresh :class:`netkit.Lab` per test, torn down afterwards.
- ``netkit_connection`` -- a connected TCP pair in that lab (server side accepted).
- ``netkit_middlebox`` -- the router of ``netkit_routed_lab``: a
  :class:`netkit.lab.routed.MiddleboxConfig` (by default: conntrack
  established timeout 2 s, forgotten flows dropped, no NAT); override it.
- ``netkit_routed_lab`` -- client, router and server namespaces, the router a
  stateful middlebox (:class:`netkit.lab.routed.RoutedLab`), torn down afterwards.
- ``netkit_pool`` -- session-wide :class:`netkit.ScenarioPool`: submit many
  scenarios up front, assert each result in its own test; they run concurrently.

Every netkit fixture skips the test, with the reason and the command to use,
when the process lacks root / CAP_NET_ADMIN + CAP_SYS_ADMIN.

Options (each: command line, then environment, then ini -- one precedence):

- ``--netkit-keep-failed`` / ``NETKIT_KEEP_FAILED=1`` / ``netkit_keep_failed = true``
  keeps the namespaces of a failing test under /run/netns (for ``ip netns
  exec``) and names them in the failure report; ``netkit cleanup`` removes
  them later.
- ``--netkit-pcap-dir DIR`` / ``NETKIT_PCAP_DIR=DIR`` / ``netkit_pcap_dir = DIR``:
  every failed scenario writes its capture of the tested veth there as pcap
  (``<scenario id>-<lab>.pcap``), and so does every scenario a failing test
  asked the pool for; the failure report names the files.  Unset, they go to
  temporary files, named the same way in the report.

- ``--netkit-require-privileges`` / ``NETKIT_REQUIRE_PRIVILEGES=1`` /
  ``netkit_require_privileges = true``: a netkit test that cannot run for lack
  of privileges is an *error*, not a skip, so a CI job that lost its root
  cannot pass having proven nothing.  Without it such tests are skipped, and
  the terminal summary says in one line how many and why.

Under pytest-xdist (``-n N``) each xdist worker has its own pool, bounded to
1/N of the usual size, and starts a scenario when its test asks for it.

Use ``timeout_method = signal`` with pytest-timeout: its thread method calls
``os._exit`` and skips teardown.
"""

from __future__ import annotations

import socket
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .errors import CANNOT_RUN_HERE, FeatureMissing
from .kernel import kernel_info
from .lab.lab import Lab
from .lab.routed import MiddleboxConfig, RoutedLab
from .plugin_options import REQUIRE_PRIVILEGES_ENV, Settings, add_options, resolve
from .privileges import missing_privileges
from .scenario import Scenario, ScenarioResult, failure_pcap_path
from .scenario.pool import DEFAULT_WORKERS, ScenarioPool


@dataclass
class TestRecord:
    """What one test used: its labs, and the scenario results it asked the pool for (with their pcap paths)."""

    labs: list[Lab] = field(default_factory=list)
    results: list[ScenarioResult] = field(default_factory=list)


_SETTINGS_KEY = pytest.StashKey[Settings]()
MIN_WORKERS_PER_XDIST_WORKER = 4  # a test that submits a few scenarios itself still runs them at once
_SCENARIOS_KEY = pytest.StashKey[list[Scenario]]()  # every Scenario the selected tests are parametrized with
_RUNNING_KEY = pytest.StashKey[TestRecord]()  # config.stash: the record of the test being run
_RECORD_KEY = pytest.StashKey[TestRecord]()  # item.stash: that test's record



def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    # resolved once: a bad value fails at start-up, not mid-run -- as a usage error (exit 4), not a traceback
    try:
        config.stash[_SETTINGS_KEY] = resolve(config)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def settings(config: pytest.Config) -> Settings:
    return config.stash[_SETTINGS_KEY]


def pytest_report_header(config: pytest.Config) -> str:
    k = kernel_info()
    privileges = missing_privileges()
    chosen = settings(config)
    if privileges is None:
        state = "labs enabled"
    else:
        state = "labs ERROR (not privileged)" if chosen.require_privileges else "labs SKIPPED (not privileged)"
    return (f"netkit: kernel {k.release}, HZ={k.hz} (from {k.hz_source}); {state}; keep-failed={chosen.keep_failed}; "
            f"failed scenarios' pcap: {chosen.pcap_dir or 'temporary files'}")


def _require_privileges(config: pytest.Config) -> None:
    """Skip the test (or, with --netkit-require-privileges, make it an error) when labs cannot be built."""
    reason = missing_privileges()
    if reason is None:
        return
    if settings(config).require_privileges:
        pytest.fail(f"{reason} (--netkit-require-privileges makes this an error instead of a skip)", pytrace=False)
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """One line a CI log cannot hide: how many tests proved nothing because the run lacked privileges."""
    reason = missing_privileges()
    if reason is None:
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if reason in str(getattr(r, "longrepr", ""))]
    if not skipped:
        return
    terminalreporter.write_sep(
        "=", f"netkit: {len(skipped)} test(s) SKIPPED for lack of privileges: nothing they check was tested",
        yellow=True, bold=True,
    )
    terminalreporter.write_line(reason)
    terminalreporter.write_line(
        f"netkit: to make this an error instead of a skip: --netkit-require-privileges, "
        f"{REQUIRE_PRIVILEGES_ENV}=1 or ini netkit_require_privileges = true"
    )


@pytest.fixture
def netkit_family() -> str:
    """Name: netkit_family. Scope: function. Depends: nothing.

    The address family of ``netkit_connection``: "ipv4" by default. Cover both with
    ``@pytest.mark.parametrize("netkit_family", ["ipv4", "ipv6"])``.
    """
    return "ipv4"


@pytest.fixture
def netkit_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """Name: netkit_lab. Scope: function. Depends: root.

    A fresh two-namespace lab (server, client) joined by a veth pair, with
    IPv4 and IPv6 addresses; torn down after the test, whatever happened::

        def test_reach(netkit_lab):
            s = netkit_lab.server.socket("ipv4")
    """
    _require_privileges(request.config)
    with Lab() as lab:
        request.node.stash[_RECORD_KEY].labs.append(lab)
        yield lab


@pytest.fixture
def netkit_middlebox() -> MiddleboxConfig:
    """Name: netkit_middlebox. Scope: function. Depends: nothing.

    The router of ``netkit_routed_lab``: conntrack established timeout 2 s,
    a forgotten flow's packets dropped, no masquerade, no mid-stream pick-up.
    Override it (or parametrize it indirectly) for another router::

        @pytest.fixture
        def netkit_middlebox():
            return MiddleboxConfig(timeout_s=5, action="reject", masquerade=True)
    """
    return MiddleboxConfig(timeout_s=2)


@pytest.fixture
def netkit_routed_lab(request: pytest.FixtureRequest, netkit_middlebox: MiddleboxConfig) -> Iterator[RoutedLab]:
    """Name: netkit_routed_lab. Scope: function. Depends: netkit_middlebox, root, the nft program.

    Three namespaces -- client, router, server -- the router forwarding
    between two veth pairs and tracking connections with the
    ``netkit_middlebox`` settings, all inside its own namespace (nftables
    table ``inet nk_middlebox``); the same API as ``netkit_lab`` (``server``,
    ``client``, ``connect``) plus ``router``, ``conntrack(family)`` and
    ``conntrack_entry(family, ports)``; torn down after the test, whatever
    happened.  Skipped with the reason where the machine lacks nft or conntrack::

        def test_nat_forgets(netkit_routed_lab):
            server, client = netkit_routed_lab.connect("ipv4")
            assert netkit_routed_lab.conntrack("ipv4")[0].state == "ESTABLISHED"
    """
    _require_privileges(request.config)
    from .lab.faults import MIDDLEBOX_FORGETS

    reason = MIDDLEBOX_FORGETS.unsupported_reason()
    if reason:
        pytest.skip(reason)
    try:
        lab = RoutedLab(netkit_middlebox).__enter__()
    except FeatureMissing as exc:
        pytest.skip(str(exc))
    try:
        request.node.stash[_RECORD_KEY].labs.append(lab)
        yield lab
    finally:
        lab.close()


@dataclass
class Connection:
    """A connected TCP pair in a lab: ``server`` is the accepted socket."""

    lab: Lab
    family: str
    server: socket.socket
    client: socket.socket


@pytest.fixture
def netkit_connection(netkit_lab: Lab, netkit_family: str) -> Connection:
    """Name: netkit_connection. Scope: function. Depends: netkit_lab, netkit_family.

    A connected server/client TCP pair across the lab's veth::

        def test_keepalive(netkit_connection):
            KeepaliveSettings(1, 1, 3).apply(netkit_connection.server)
            netkit_connection.lab.client.set_link("down")
    """
    server, client = netkit_lab.connect(netkit_family)
    return Connection(netkit_lab, netkit_family, server, client)


class PoolForTests:
    """The session's ScenarioPool, turning "cannot run here" into a skip."""

    def __init__(self, pool: ScenarioPool, config: pytest.Config) -> None:
        self.pool = pool
        self.config = config

    def submit(self, *scenarios: Scenario) -> None:
        self.pool.submit(*scenarios)

    def wait_idle(self) -> None:
        """Wait until the session's scenarios have all ended: for a test that loads the machine itself
        (several gates at once, a timing benchmark) and must not spoil their timing, nor they its own."""
        self.pool.wait_idle()

    def result(self, scenario: Scenario) -> ScenarioResult:
        try:
            result = self.pool.result(scenario)
        except CANNOT_RUN_HERE as exc:
            pytest.skip(str(exc))
        running = self.config.stash.get(_RUNNING_KEY, None)
        if running is not None:  # so that a failing test's report can name this scenario's capture
            running.results.append(result)
        return result


def _xdist_workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers run this session (0 when this process is not one of them)."""
    workerinput = getattr(config, "workerinput", None)  # set by xdist in each worker process
    return int(workerinput.get("workercount", 1)) if workerinput is not None else 0


def _pool_size(config: pytest.Config) -> int:
    """The session pool's bound on worker processes; pytest-xdist's workers share one machine's bound."""
    sharing = _xdist_workers(config)
    return max(MIN_WORKERS_PER_XDIST_WORKER, DEFAULT_WORKERS // sharing) if sharing else DEFAULT_WORKERS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember every Scenario a selected test is parametrized with, for netkit_pool to start at once.

    Not under pytest-xdist: each worker collects every test but runs only the
    ones the controller hands it, so starting them all would run each scenario
    once per worker.  There a scenario starts when its test asks for it, and
    xdist's workers are the concurrency.
    """
    if _xdist_workers(config):
        config.stash[_SCENARIOS_KEY] = []
        return
    found: dict[Scenario, None] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        for value in (callspec.params.values() if callspec else ()):
            if isinstance(value, Scenario):
                found[value] = None
    config.stash[_SCENARIOS_KEY] = list(found)


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
    """
    _require_privileges(pytestconfig)
    chosen = settings(pytestconfig)
    with ScenarioPool(max_workers=_pool_size(pytestconfig), keep_failed=chosen.keep_failed, pcap_dir=chosen.pcap_dir) as pool:
        pool.submit(*pytestconfig.stash.get(_SCENARIOS_KEY, []))
        yield PoolForTests(pool, pytestconfig)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    record = item.stash[_RECORD_KEY] = TestRecord()
    item.config.stash[_RUNNING_KEY] = record


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if _RUNNING_KEY in item.config.stash:
        del item.config.stash[_RUNNING_KEY]


def _pcap_lines(item: pytest.Item) -> list[str]:
    """Write the capture of every scenario the failing test used (failed ones wrote theirs already); name them."""
    lines = []
    record = item.stash.get(_RECORD_KEY, TestRecord())
    for result in {id(r): r for r in record.results}.values():  # each once, in order
        path = result.pcap
        if path is None and result.pcap_data:
            path = result.write_pcap(failure_pcap_path(result.scenario, result.lab, settings(item.config).pcap_dir))
        if path:
            lines.append(f"{result.scenario.id} ({result.verdict}): {path}  (tcpdump -nr {path})")
            lines.append(f"    wire: {result.wire_summary()}")
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failing test: name the packet captures of its scenarios; keep its labs (if asked) and say where."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    pcaps = _pcap_lines(item)
    if pcaps:
        report.sections.append(("netkit: packet captures", "\n".join(pcaps)))
    labs = item.stash.get(_RECORD_KEY, TestRecord()).labs
    if not labs or not settings(item.config).keep_failed:
        return
    lines = []
    for lab in labs:
        for name in lab.keep():
            lines.append(f"ip netns exec {name} ss -tino")
    lines.append("remove them with: netkit cleanup  (once this pytest run has ended)")
    report.sections.append(("netkit: namespaces kept for inspection", "\n".join(lines)))
