"""Scenarios: the value (:mod:`.spec`), its run (:mod:`.run`, :mod:`.observe`, :mod:`.build`),
its frozen result (:mod:`.result`) and many at once (:mod:`.pool`).

``Scenario`` says what to prove: keepalive settings (and TCP_USER_TIMEOUT),
address family, fault, connection state, which side is tested and where its
keepalive values come from.  ``run_scenario`` builds a lab, proves it, tears
the lab down and returns a ``ScenarioResult`` that can be asserted, printed or
written as JSON.  :mod:`netkit.scenario.pool` runs any number of them at once.

The value and the result are pure and imported here; the run, which touches
the kernel, is imported when ``run_scenario`` or ``failure_pcap_path`` is
first used (:mod:`netkit.lazy`), so a scenario is built without pyroute2.
"""

from typing import TYPE_CHECKING

from ..errors import ScenarioCancelled
from ..evidence.events import Event, TimelineEvent
from ..evidence.verdict import PEER_SAME_MOMENT_S
from ..keepalive import KEEPALIVE_SYSCTLS as SYSCTLS
from ..lazy import lazy_names
from .result import SCHEMA, ConnectionDeath, Progress, ScenarioResult
from .spec import KEEPALIVE_SOURCES, SIDES, STATES, Scenario

if TYPE_CHECKING:
    from .run import failure_pcap_path, run_scenario

if not TYPE_CHECKING:  # hidden from type checkers: they see the names above, and a typo stays an error
    __getattr__, __dir__ = lazy_names(__name__, {".run": ("failure_pcap_path", "run_scenario")})

__all__ = [
    "KEEPALIVE_SOURCES", "PEER_SAME_MOMENT_S", "ConnectionDeath", "SCHEMA", "SIDES", "STATES", "SYSCTLS", "Event", "Progress",
    "Scenario", "ScenarioCancelled", "ScenarioResult", "TimelineEvent", "failure_pcap_path", "run_scenario",
]
