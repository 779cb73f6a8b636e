"""The timing model: the kernel's rules and the timer-wheel window, as arithmetic (no I/O).

- :mod:`.wheel` -- how late a timer runs; the window built from it
- :mod:`.prediction` -- :class:`DeathPrediction`, what the kernel should do
- :mod:`.keepalive` -- idle connections: ``tcp_keepalive_timer``
- :mod:`.schedule` -- the keepalive timer's runs, which an idle prediction carries
- :mod:`.rto` -- the retransmission timer's backoff, deadline and clamp (shared)
- :mod:`.retransmission` -- data outstanding: ``tcp_retransmit_timer``
- :mod:`.persist` -- a closed window or no route: ``tcp_probe_timer``
- :mod:`.neighbour` -- data into a dead link: the neighbour entry's failure, replayed with the RTO timer
- :mod:`.local_drop` -- the tested side's own qdisc refuses: TCP's resource probes, every 500 ms
- :mod:`.fault_rule` -- a fault's twist to the rule, as data
- :mod:`.predict` -- the dispatch: a scenario in, its one prediction out
"""

from .fault_rule import DataPath, FaultRule
from .keepalive import keepalive_death, reset_at_first_probe
from .persist import zero_window_death
from .predict import not_modelled_reason, predict
from .prediction import DeathPrediction
from .retransmission import unacked_death
from .rto import default_rto_s
from .schedule import KeepaliveSchedule, keepalive_schedule
from .wheel import (
    MEASUREMENT_JIFFIES,
    latest_death_s,
    packetdrill_bound_s,
    wheel_granularity_s,
    wheel_level,
    window,
)

__all__ = [
    "MEASUREMENT_JIFFIES", "DataPath", "DeathPrediction", "FaultRule", "KeepaliveSchedule", "default_rto_s",
    "keepalive_death", "keepalive_schedule", "latest_death_s", "not_modelled_reason", "packetdrill_bound_s", "predict",
    "reset_at_first_probe", "unacked_death", "wheel_granularity_s", "wheel_level", "window", "zero_window_death",
]
