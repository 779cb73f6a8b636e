"""Evidence and its judging, without I/O: frames, classified segments, wire evidence, time checks, the verdict.

- :mod:`.frames`, :mod:`.classify`, :mod:`.wire` -- what the tested veth showed
- :mod:`.pcap` -- the capture as a classic pcap file
- :mod:`.events` -- the one timeline event type
- :mod:`.timecheck` -- ``check_time``: the one timing checker and its failure record
- :mod:`.death` -- the judged death (time and source), the count, the death's window check, late-only
- :mod:`.verdict` -- a scenario's measurement judged against its prediction
"""

from .events import Event
from .timecheck import Failure, check_time

__all__ = ["Event", "Failure", "check_time"]
