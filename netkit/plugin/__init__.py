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

**Machine late: retried once, then skipped as inconclusive.**  A scenario
whose timer ledger shows it failed only because the machine ran the kernel's
timers late (``ScenarioResult.machine_late``) runs once more, as the gate and
NIPA retry it; if it is machine late again, ``netkit_pool.result()`` skips
the test with a reason starting ``inconclusive: machine late ...``.  Why a
skip: a *fail* would blame the kernel for a busy CI runner (the ledger shows
the kernel kept the rule), and the job that gets paged for nothing learns to
ignore the suite; an *xfail* says "a known failure of the code", which this
is not, and ``xfail_strict`` or a later fix would make it XPASS noise; a
*pass* would claim a proof that was not made.  A skip is pytest's "could not
judge here", with the reason in every report (``-rs``, JUnit ``<skipped>``),
and it is exactly what the gate's TAP, JUnit and NIPA outputs say for the
same case.  A rule mismatch, an early death or a wrong error is never
machine late: those fail at once.

Under pytest-xdist (``-n N``) each xdist worker has its own pool, bounded to
1/N of the usual size, and starts a scenario when its test asks for it.

**The ``netkit`` marker.**  Every test that uses a netkit fixture (directly,
or through a fixture of yours that depends on one) or is parametrized with a
:class:`netkit.Scenario` is marked ``netkit`` as it is collected: ``-m netkit``
runs only them, ``-m "not netkit"`` everything else.  A test that reaches a
fixture only through ``request.getfixturevalue()`` is not seen; mark it
yourself (``@pytest.mark.netkit``).

**Only what stays selected.**  The plugin acts once collection has finished
(``pytest_collection_finish``), on the tests that ``-k``, ``-m``,
``--deselect`` and every other plugin left selected: a deselected test's
scenario is never started, and no lab is built for it.

**Nothing until a netkit test is collected.**  The plugin loads in every
pytest session of every project that installs netkit, so loading it imports
no pyroute2, no lab and no scenario code, and measures nothing.  Its header
line (kernel, HZ, privileges, options) is printed after collection, and only
when a netkit test was selected (not with ``-q`` or ``--no-header``, nor by
pytest-xdist's controller, which collects nothing itself); HZ is read from the
kernel config, or measured over 0.5 s only then.  The labs and the pool are
imported when a fixture first needs them.

**Deadlines (pytest-timeout).**  A test that uses ``netkit_pool`` and is
parametrized with scenarios cannot hang: it gets a pytest-timeout deadline
from their predictions -- each run's lead-in, its predicted death and the
observer's give-up time, its lab's set-up and teardown, twice (a machine-late
run is retried), behind the pool's backlog, plus the pool's start -- as the
marker ``timeout(deadline, method="signal")``.  A timeout you chose wins: a
``timeout`` marker on the test (or its class or module), ``--timeout``, or
``PYTEST_TIMEOUT`` (``--timeout 0`` turns every timeout off); the ini
``timeout`` is a project-wide default, which these deadlines replace.  Other
netkit tests keep whatever timeout you configured.  Use ``timeout_method =
signal`` with pytest-timeout for them too: its thread method calls
``os._exit`` and skips teardown (kept namespaces, failure reports).

This module holds the hooks; the fixtures are defined in :mod:`.labs` and
:mod:`.pool` and imported here, where pytest finds them (the plugin is this
module); the options in :mod:`.options`, a test's record and its failure
report in :mod:`.record`, the marker and what counts as a netkit test in
:mod:`.collection`, the deadlines in :mod:`.deadlines`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from . import collection, record
from .labs import Connection, netkit_connection, netkit_family, netkit_lab, netkit_middlebox, netkit_routed_lab
from .options import REQUIRE_PRIVILEGES_ENV, SETTINGS_KEY, add_options, resolve, settings
from .pool import PoolForTests, netkit_pool, pool_size, remember_scenarios

__all__ = [  # the fixtures, here so that pytest finds them in the plugin module
    "Connection", "PoolForTests", "netkit_connection", "netkit_family", "netkit_lab", "netkit_middlebox", "netkit_pool",
    "netkit_routed_lab",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", collection.MARKER_HELP)
    # resolved once: a bad value fails at start-up, not mid-run -- as a usage error (exit 4), not a traceback
    try:
        config.stash[SETTINGS_KEY] = resolve(config)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_itemcollected(item: pytest.Item) -> None:
    """The ``netkit`` marker, given as each test is collected: before ``-m`` deselects anything."""
    collection.mark(item)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What the selected tests need -- and only they: -k, -m and every plugin's deselection are done by now."""
    config = session.config
    selected = collection.netkit_tests(session.items)
    remember_scenarios(config, selected)
    if selected and config.pluginmanager.hasplugin("timeout"):
        from .deadlines import set_deadlines

        set_deadlines(config, selected, pool_size(config))


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> str | None:
    """netkit's header line -- kernel, HZ, privileges, options -- when (and only when) a netkit test is selected."""
    if not collection.netkit_tests(items) or config.get_verbosity() < 0 or config.getoption("no_header", False):
        return None
    from ..kernel import kernel_info
    from ..privileges import missing_privileges

    k = kernel_info()
    chosen = settings(config)
    if missing_privileges() is None:
        state = "labs enabled"
    else:
        state = "labs ERROR (not privileged)" if chosen.require_privileges else "labs SKIPPED (not privileged)"
    return (f"netkit: kernel {k.release}, HZ={k.hz} (from {k.hz_source}); {state}; keep-failed={chosen.keep_failed}; "
            f"failed scenarios' pcap: {chosen.pcap_dir or 'temporary files'}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """One line a CI log cannot hide: how many tests proved nothing because the run lacked privileges."""
    skipped_reports = terminalreporter.stats.get("skipped", [])
    if not skipped_reports:
        return
    from ..privileges import missing_privileges

    reason = missing_privileges()
    if reason is None:
        return
    skipped = [r for r in skipped_reports if reason in str(getattr(r, "longrepr", ""))]
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    record.start(item)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    record.finish(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failing test: name the packet captures of its scenarios; keep its labs (if asked) and say where."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    report.sections.extend(record.failure_sections(item))
