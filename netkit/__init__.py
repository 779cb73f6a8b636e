"""netkit: prove, on a real Linux kernel, how and when TCP connections die.

The pieces, one module per concept:

- :mod:`netkit.namespaces` -- fd-held network namespaces, work inside them
- :mod:`netkit.lab` -- two namespaces joined by a veth pair
- :mod:`netkit.keepalive` -- keepalive settings: validate, apply, read back
- :mod:`netkit.model` -- the kernel's rule and timer-wheel window
- :mod:`netkit.faults` -- ways to break the path
- :mod:`netkit.tcpinfo`, :mod:`netkit.counters` -- the kernel's own figures
- :mod:`netkit.capture` -- wire evidence: packet capture in the lab, classified, as pcap
- :mod:`netkit.diag` -- TCP sockets of any process in a lab namespace (sock_diag)
- :mod:`netkit.check_server` -- ``netkit check-server``: a real server's keepalive, measured
- :mod:`netkit.scenario` -- a scenario value, its run, its result as data
- :mod:`netkit.plugin` -- pytest fixtures; :mod:`netkit.cli` -- the command
"""

from .errors import (
    EnvironmentUnusable, FeatureMissing, KernelRefused, NameCollision, NetkitError, NotModelled, SettingError,
)
from .keepalive import KeepaliveSettings
from .lab import Lab
from .model import DeathPrediction, keepalive_death
from .scenario import Scenario, ScenarioResult, run_scenario
from .scenario.pool import ScenarioPool, run_many

__version__ = "0.1.0"

__all__ = [
    "DeathPrediction", "EnvironmentUnusable", "FeatureMissing", "KeepaliveSettings", "KernelRefused", "Lab",
    "NameCollision", "NetkitError", "NotModelled", "Scenario", "ScenarioPool", "ScenarioResult", "SettingError",
    "keepalive_death", "run_many", "run_scenario",
]
