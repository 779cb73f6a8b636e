"""Which collected tests are netkit's: the ``netkit`` marker, and the scenarios a test is parametrized with.

A test is a *netkit test* when it uses a netkit fixture (directly or through
another fixture: pytest's fixture closure) or is parametrized with a
:class:`netkit.Scenario`.  Each one gets the ``netkit`` marker as it is
collected, before ``-m`` deselects anything, so ``-m netkit`` and
``-m "not netkit"`` select and deselect them.  Only the tests still selected
once collection has finished -- after ``-k``, ``-m``, ``--deselect`` and any
other plugin's deselection -- make the plugin do anything: print its header
line, start scenarios, set deadlines.

Everything here is cheap and imports nothing of netkit's: the plugin module
is loaded in every pytest session of every project that installs netkit.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..scenario.spec import Scenario

MARKER = "netkit"
MARKER_HELP = (
    f"{MARKER}: a netkit test (uses a netkit fixture or is parametrized with a netkit Scenario); set by the netkit "
    f"plugin itself: select them with -m {MARKER}, leave them out with -m 'not {MARKER}'"
)
FIXTURES = frozenset({  # every fixture the plugin defines (netkit.plugin.labs, netkit.plugin.pool)
    "netkit_connection", "netkit_family", "netkit_lab", "netkit_middlebox", "netkit_pool", "netkit_routed_lab",
})
SCENARIO_MODULE = "netkit.scenario.spec"  # where netkit.Scenario is defined


def scenarios_of(item: pytest.Item) -> list[Scenario]:
    """The :class:`netkit.Scenario` values ``item`` is parametrized with (in parameter order).

    Read without importing netkit's scenarios: a value can only be a Scenario
    if something (the test module) imported the class already.
    """
    spec = sys.modules.get(SCENARIO_MODULE)
    callspec = getattr(item, "callspec", None)
    if spec is None or callspec is None:
        return []
    return [value for value in callspec.params.values() if isinstance(value, spec.Scenario)]


def uses_netkit_fixture(item: pytest.Item) -> bool:
    return not FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def is_netkit_test(item: pytest.Item) -> bool:
    """Does ``item`` use a netkit fixture, or is it parametrized with a netkit Scenario?"""
    return uses_netkit_fixture(item) or bool(scenarios_of(item))


def mark(item: pytest.Item) -> None:
    """Give a netkit test the ``netkit`` marker (at collection, so that ``-m`` sees it)."""
    if is_netkit_test(item) and item.get_closest_marker(MARKER) is None:
        item.add_marker(MARKER)


def netkit_tests(items: list[pytest.Item]) -> list[pytest.Item]:
    """The netkit tests among ``items`` (the ones the marker was given to, or a user put on)."""
    return [item for item in items if item.get_closest_marker(MARKER) is not None]
