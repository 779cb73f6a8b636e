"""netkit: prove, on a real Linux kernel, how and when TCP connections die.

The layers, one package per concept (pure ones do no I/O and need no root):

- :mod:`netkit.model` -- pure: the kernel's rules and the timer-wheel window; one prediction per scenario
- :mod:`netkit.evidence` -- pure: frames, wire evidence, ``check_time`` and the verdict
- :mod:`netkit.report` -- pure: a result as text and JSON; a gate document as JUnit, TAP, HTML, Markdown
- :mod:`netkit.lab` -- the kernel: namespaces, the veth lab, faults, capture, sock_diag, counters
- :mod:`netkit.scenario` -- a scenario value, its run, its frozen result, the pool
- :mod:`netkit.check` -- audits of real programs (``netkit check-server``)
- :mod:`netkit.gate` -- the regression gate: the matrix as data, concurrent runs, outcomes, the document, diffs
- :mod:`netkit.cli` -- the command; :mod:`netkit.plugin` -- pytest fixtures
- :mod:`netkit.keepalive`, :mod:`netkit.kernel`, :mod:`netkit.enums`, :mod:`netkit.errors`, :mod:`netkit.faults`,
  :mod:`netkit.tcpsocket`, :mod:`netkit.exitcodes`, :mod:`netkit.waiting`, :mod:`netkit.privileges` -- small shared values

The contracts in ``pyproject.toml`` (``[tool.importlinter]``, checked by
``scripts/test``) keep the pure layers from importing the kernel-touching
ones.  The names below are imported when first used (:mod:`netkit.lazy`), so
``import netkit.model`` loads no lab and no pyroute2.
"""

from typing import TYPE_CHECKING

from .errors import (
    EnvironmentUnusable,
    FeatureMissing,
    KernelRefused,
    NameCollision,
    NetkitError,
    NotModelled,
    SettingError,
    UnknownChoice,
)
from .keepalive import KeepaliveSettings
from .lazy import lazy_names

if TYPE_CHECKING:
    from .kernel import KernelInfo
    from .lab.lab import Lab
    from .model import DeathPrediction, keepalive_death
    from .scenario import Scenario, ScenarioResult, run_scenario
    from .scenario.pool import ScenarioPool, run_many

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic]), and `netkit --version`
# and the gate document's "netkit" field import it.  A plain literal, so that the build reads it without importing.
__version__ = "0.1.0"

if not TYPE_CHECKING:  # hidden from type checkers: they see the names above, and a typo stays an error
    __getattr__, __dir__ = lazy_names(__name__, {
        ".kernel": ("KernelInfo",),
        ".lab.lab": ("Lab",),
        ".model": ("DeathPrediction", "keepalive_death"),
        ".scenario": ("Scenario", "ScenarioResult", "run_scenario"),
        ".scenario.pool": ("ScenarioPool", "run_many"),
    })

__all__ = [
    "DeathPrediction", "EnvironmentUnusable", "FeatureMissing", "KeepaliveSettings", "KernelInfo", "KernelRefused", "Lab",
    "NameCollision", "NetkitError", "NotModelled", "Scenario", "ScenarioPool", "ScenarioResult", "SettingError",
    "UnknownChoice", "keepalive_death", "run_many", "run_scenario",
]
