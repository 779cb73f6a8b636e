"""netkit's pytest plugin: labs, connected socket pairs and concurrent scenarios as fixtures.

Installed through the ``pytest11`` entry point, so any project that installs
netkit has the fixtures without a conftest.py.

Fixtures (override the small ones to change the big ones, as with
pytest-httpserver):

- ``netkit_family`` -- "ipv4" (default) or "ipv6"; parametrize it to cover both.
- ``netkit_lab`` -- a fresh :class:`netkit.Lab` per test, torn down afterwards.
- ``netkit_connection`` -- a connected TCP pair in that lab (server side accepted).
- ``netkit_pool`` -- session-wide :class:`netkit.ScenarioPool`: submit many
  scenarios up front, assert each result in its own test; they run concurrently.

Every netkit fixture skips the test, with the reason and the command to use,
when the process lacks root / CAP_NET_ADMIN + CAP_SYS_ADMIN.

Option (command line, then environment, then ini -- one precedence):
``--netkit-keep-failed`` / ``NETKIT_KEEP_FAILED=1`` / ``netkit_keep_failed = true``
keeps the namespaces of a failing test under /run/netns (for ``ip netns exec``)
and names them in the failure report; ``netkit cleanup`` removes them later.

Use ``timeout_method = signal`` with pytest-timeout: its thread method calls
``os._exit`` and skips teardown.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .doctor import missing_privileges
from .errors import FeatureMissing
from .kernel import kernel_info
from .lab import Lab
from .retransmission import NotModelled
from .pool import ScenarioPool
from .scenario import Scenario, ScenarioResult

KEEP_FAILED_HELP = (
    "keep the network namespaces of failing tests under /run/netns for `ip netns exec` "
    "(their names are printed in the failure report; remove them with `netkit cleanup`)"
)
KEEP_FAILED_ENV = "NETKIT_KEEP_FAILED"
_LABS_ATTR = "_netkit_labs"
_SCENARIOS_KEY = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netkit")
    group.addoption("--netkit-keep-failed", action="store_true", default=None, help=KEEP_FAILED_HELP)
    parser.addini("netkit_keep_failed", KEEP_FAILED_HELP, type="bool", default=False)


def keep_failed(config: pytest.Config) -> bool:
    """The option's value: command line, then environment, then ini."""
    if config.getoption("netkit_keep_failed") is not None:
        return True
    env = os.environ.get(KEEP_FAILED_ENV)
    if env is not None:
        if env.lower() in ("1", "true", "yes", "on"):
            return True
        if env.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"Invalid value {env!r} from {KEEP_FAILED_ENV}: use 1 or 0")
    return bool(config.getini("netkit_keep_failed"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netkit: the test builds netkit labs (needs root; skipped otherwise)")
    keep_failed(config)  # a bad environment value fails at start-up, not mid-run


def pytest_report_header(config: pytest.Config) -> str:
    k = kernel_info()
    privileges = missing_privileges()
    state = "labs enabled" if privileges is None else "labs SKIPPED (not root)"
    return f"netkit: kernel {k.release}, HZ={k.hz} (from {k.hz_source}); {state}; keep-failed={keep_failed(config)}"


def _require_privileges() -> None:
    reason = missing_privileges()
    if reason:
        pytest.skip(reason)


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
    _require_privileges()
    with Lab() as lab:
        getattr(request.node, _LABS_ATTR).append(lab)
        yield lab


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

    def __init__(self, pool: ScenarioPool) -> None:
        self.pool = pool

    def submit(self, *scenarios) -> None:  # type: ignore[no-untyped-def]
        self.pool.submit(*scenarios)

    def result(self, scenario) -> ScenarioResult:  # type: ignore[no-untyped-def]
        try:
            return self.pool.result(scenario)
        except (FeatureMissing, NotModelled) as exc:
            pytest.skip(str(exc))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember every Scenario a selected test is parametrized with, for netkit_pool to start at once."""
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
    _require_privileges()
    with ScenarioPool(keep_failed=keep_failed(pytestconfig)) as pool:
        pool.submit(*pytestconfig.stash.get(_SCENARIOS_KEY, []))
        yield PoolForTests(pool)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    setattr(item, _LABS_ATTR, [])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On a failing test, keep its labs (if asked) while they still exist, and say where."""
    outcome = yield
    report = outcome.get_result()
    labs = getattr(item, _LABS_ATTR, [])
    if report.when != "call" or not report.failed or not labs or not keep_failed(item.config):
        return
    lines = []
    for lab in labs:
        for name in lab.keep():
            lines.append(f"ip netns exec {name} ss -tino")
    lines.append("remove them with: netkit cleanup  (once this pytest run has ended)")
    report.sections.append(("netkit: namespaces kept for inspection", "\n".join(lines)))
