"""pytest-timeout deadlines from predictions: a netkit test that waits for scenarios cannot hang.

A test that uses ``netkit_pool`` and is parametrized with scenarios waits for
their results.  Each scenario's run is bounded by the rule: its watch gives up
past the predicted death (:func:`netkit.scenario.observe.give_up_after_s`),
after waiting up to ``idle + intvl`` for the keepalive probe answered before
the fault, plus building and tearing down its lab.  The test's deadline is
that, twice -- the first run and the retry of a machine-late one -- each
perhaps queued behind the pool's backlog (every selected scenario's run,
spread over the pool's workers), plus the start of the pool itself.  It is
a bound against a hang, not a precision check: precision is the verdict's.

The deadline is given to pytest-timeout as a ``timeout`` marker with
``method="signal"`` (its thread method calls ``os._exit``: no fixture
teardown, no failure report).  A timeout the user chose wins: a ``timeout``
marker on the test (or its class or module), ``--timeout``, or
``PYTEST_TIMEOUT`` (``--timeout 0`` turns every timeout off, netkit's too).
The ini ``timeout`` is a project-wide default, and for these tests the
deadline from the prediction replaces it, longer or shorter.  Without
pytest-timeout (``-p no:timeout``) nothing is set.

Imported only when a selected netkit test needs a deadline: it imports the
model and the scenario's observer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from ..errors import NetkitError
from .collection import scenarios_of

if TYPE_CHECKING:
    from ..kernel import KernelInfo
    from ..scenario.spec import Scenario

POOL_START_S = 10.0  # the session's pool: a forkserver that imports netkit.scenario.run, then its workers
RUN_OVERHEAD_S = 10.0  # one run besides its wait: build the lab, connect, break the path, judge, tear down
RUNS = 2  # the first run and, machine late, its retry (netkit.plugin.pool)
TIMEOUT_METHOD = "signal"
TIMEOUT_ENV = "PYTEST_TIMEOUT"


def run_bound_s(scenario: Scenario, kernel: KernelInfo) -> float:
    """How long one run of ``scenario`` may take at most: its lead-in, its watch's give-up time, its lab."""
    from ..model.predict import predict
    from ..scenario.observe import give_up_after_s

    try:
        prediction = predict(scenario, kernel)
    except NetkitError:  # NotModelled and the like: the run refuses before it builds a lab
        return RUN_OVERHEAD_S
    lead_s = scenario.keepalive.idle + scenario.keepalive.intvl  # the answered probe the fault waits for
    return lead_s + give_up_after_s(prediction) + RUN_OVERHEAD_S


def user_timeout_set(config: pytest.Config) -> bool:
    """Did the user choose a timeout for this run (``--timeout``, ``PYTEST_TIMEOUT``)?  The ini default does not count."""
    return config.getoption("timeout", None) is not None or bool(os.environ.get(TIMEOUT_ENV))


def deadline_items(config: pytest.Config, items: Sequence[pytest.Item]) -> list[pytest.Item]:
    """The selected tests that get a deadline: they use ``netkit_pool``, have scenarios, and no timeout of the user's."""
    if not config.pluginmanager.hasplugin("timeout") or user_timeout_set(config):
        return []
    return [item for item in items
            if "netkit_pool" in getattr(item, "fixturenames", ()) and scenarios_of(item)
            and item.get_closest_marker("timeout") is None]


def set_deadlines(config: pytest.Config, items: Sequence[pytest.Item], pool_size: int) -> None:
    """Give every selected test that waits for scenarios a pytest-timeout deadline from their predictions."""
    chosen = deadline_items(config, items)
    if not chosen:
        return
    from ..kernel import kernel_info

    kernel = kernel_info()
    bounds: dict[Scenario, float] = {}
    for item in items:
        for scenario in scenarios_of(item):
            if scenario not in bounds:
                bounds[scenario] = run_bound_s(scenario, kernel)
    backlog_s = sum(bounds.values()) / max(1, pool_size)
    for item in chosen:
        own_s = sum(bounds[s] for s in dict.fromkeys(scenarios_of(item)))
        deadline_s = POOL_START_S + RUNS * (backlog_s + own_s)
        item.add_marker(pytest.mark.timeout(round(deadline_s, 1), method=TIMEOUT_METHOD))
