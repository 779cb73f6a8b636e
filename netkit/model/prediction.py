"""A prediction as data: what the kernel should do, serialisable, comparable, printable."""

from __future__ import annotations

from dataclasses import dataclass

from ..enums import Clock, CountSource
from .schedule import KeepaliveSchedule

Window = tuple[float, float]


@dataclass(frozen=True)
class DeathPrediction:
    """What the kernel should do, as data: serialisable, comparable, printable.

    The nominal outcome: death inside ``window_s`` with ``count_source`` (a
    TCP_INFO field or TcpExt counter) reading ``expected_count``.  Where timer
    lateness can change which timer run is the fatal one, the
    ``alternative_window_s``/``alternative_count`` pair is the other outcome
    (e.g. TCP_USER_TIMEOUT just after a nominal keepalive run: one interval
    earlier with one probe less).  A measurement must match one outcome in
    both time and count: judged by :mod:`netkit.evidence.death` (``fits``,
    ``check_death``), through the one time checker.

    ``schedule`` is the keepalive timer's schedule the prediction was made
    from (idle connections; None for every other rule), so that what judges
    the wire reads the same timer runs instead of asking the model again.
    """

    rule: str
    expected_s: float
    window_s: Window
    expected_count: int
    expected_error: str
    count_source: CountSource = CountSource.PROBES
    alternative_window_s: Window | None = None
    alternative_count: int | None = None
    peer_expected_error: str | None = None  # the peer's socket dies too (one-way: the final RST reaches it)
    measured_from: Clock = Clock.LAST_RECEIVED  # the clock the times count on
    timer_runs_s: tuple[float, ...] = ()  # arm delays of the timer runs whose lateness adds up
    alive_until_s: float | None = None  # not a death: the connection must still be alive (and carry data) this long
    last_segment: str = "probe-reply"  # what armed the keepalive timer before the fault (keepalive_schedule's kinds)
    schedule: KeepaliveSchedule | None = None  # the keepalive runs it was made from (idle); None: no keepalive rule
    rto_s: float | None = None  # the RTO it was made from (tcpi_rto: icsk_rto), where a write timer backs off from it
    expected_backoff: int | None = None  # tcpi_backoff at death, where the rule fixes it (a local drop's: 0)

    def outcomes(self) -> list[tuple[Window, int]]:
        found = [(self.window_s, self.expected_count)]
        if self.alternative_window_s is not None and self.alternative_count is not None:
            found.append((self.alternative_window_s, self.alternative_count))
        return found

    def counts(self) -> list[int]:
        """Every count an outcome allows, ascending."""
        return sorted({n for _, n in self.outcomes()})
