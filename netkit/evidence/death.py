"""The death as judged, once: when it happened and by whose clock, its count, and where it fell against its windows.

These are the single definitions every consumer reads: the scenario's
result record computes them when it is judged, and the gate document's
loader calls the same functions for documents written before they were
stored.  Pure: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..enums import CountSource, DeathSource, Timing
from .timecheck import Failure, Window, check_time

Outcomes = Sequence[tuple[Window, "int | None"]]  # (window, the count that goes with it), the nominal one first


def judged_death(wire_s: float | None, observer_s: float | None,
                 trace_s: float | None = None) -> tuple[float | None, DeathSource | None]:
    """The death time a verdict judges, and its source: the kernel's own moment where there is one.

    The observer reads ``tcpi_last_ack_recv`` when it wakes, so its figure
    carries its own wake-up lateness; a frame that marks the death carries
    the kernel's moment, and the timer ledger's CLOSE transition inside the
    fatal run is the death itself (it comes first: a retransmission death
    sends no frame).  No observed death (``observer_s`` None) is no death,
    whatever the wire or the trace shows.
    """
    if observer_s is None:
        return None, None
    if trace_s is not None:
        return trace_s, DeathSource.TRACE
    if wire_s is None:
        return observer_s, DeathSource.OBSERVER
    return wire_s, DeathSource.WIRE


def count_of(source: str, probes: int | None, retransmits: int | None, counters: Mapping[str, int]) -> int | None:
    """The figure a prediction's ``count_source`` names, from the kernel's figures at death."""
    kind = CountSource(source)
    if kind is CountSource.PROBES:
        return probes
    if kind is CountSource.RETRANSMITS:
        return retransmits
    return counters.get(kind.counter or "")


@dataclass(frozen=True)
class DeathCheck:
    """Where the judged death fell: inside a window, early, late (and by how much past the last window), or none."""

    timing: Timing
    late_by_s: float | None = None  # past the end of the latest window, when late after every window
    failure: Failure | None = None  # check_time's record, when not inside


def check_death(outcomes: Outcomes, death_s: float | None, what: str = "death", **sentences: str) -> DeathCheck:
    """``death_s`` against the outcomes' windows, through :func:`check_time` (``sentences``: its templates)."""
    if death_s is None:
        return DeathCheck(Timing.NONE)
    windows = [window for window, _ in outcomes]
    failure = check_time(what, windows, death_s, labels=[n for _, n in outcomes], **sentences)
    if failure is None:
        return DeathCheck(Timing.INSIDE)
    if failure.early:
        return DeathCheck(Timing.EARLY, failure=failure)
    past = round(death_s - max(high for _, high in windows), 6)
    return DeathCheck(Timing.LATE, past if past > 0 else None, failure)  # between two windows: late, not past them


def fits(outcomes: Outcomes, death_s: float, count: int | None) -> bool:
    """Does the death match one outcome in both time and count (:func:`check_time` against that count's windows)?"""
    windows = [window for window, n in outcomes if n == count]
    return bool(windows) and check_time("death", windows, death_s) is None


def late_only(check: DeathCheck, outcomes: Outcomes, count: int | None, error: str | None,
              expected_error: str | None) -> bool:
    """Did the run miss only by dying after every window (``check``, :func:`check_death`'s), with the predicted
    error and one of the predicted counts?"""
    if error != expected_error or count not in [n for _, n in outcomes]:
        return False
    return check.late_by_s is not None
