"""Scenarios: the value (:mod:`.spec`), its run (:mod:`.run`, :mod:`.observe`, :mod:`.build`),
its frozen result (:mod:`.result`) and many at once (:mod:`.pool`).

``Scenario`` says what to prove: keepalive settings (and TCP_USER_TIMEOUT),
address family, fault, connection state, which side is tested and where its
keepalive values come from.  ``run_scenario`` builds a lab, proves it, tears
the lab down and returns a ``ScenarioResult`` that can be asserted, printed or
written as JSON.  :mod:`netkit.scenario.pool` runs any number of them at once.
"""

from ..errors import ScenarioCancelled
from ..evidence.events import Event, TimelineEvent
from ..evidence.verdict import PEER_SAME_MOMENT_S
from ..keepalive import SYSCTLS
from .result import SCHEMA, ConnectionDeath, Progress, ScenarioResult
from .run import failure_pcap_path, run_scenario
from .spec import KEEPALIVE_SOURCES, SIDES, STATES, Scenario

__all__ = [
    "KEEPALIVE_SOURCES", "PEER_SAME_MOMENT_S", "ConnectionDeath", "SCHEMA", "SIDES", "STATES", "SYSCTLS", "Event", "Progress",
    "Scenario", "ScenarioCancelled", "ScenarioResult", "TimelineEvent", "failure_pcap_path", "run_scenario",
]
