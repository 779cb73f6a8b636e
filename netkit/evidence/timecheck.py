"""One time checker, one failure record (in the spirit of packetdrill's ``verify_time``).

Every timing assertion netkit makes -- a scenario's death, the wire's probe
spacing and first probe, the peer's death beside the tested side's,
check-server's death against its window -- goes through :func:`check_time`.
It returns None when the measured time falls inside one of the windows, else
a :class:`Failure` that names the rule, what was expected, what was measured
and the evidence, and carries the sentence for the log.  Nothing here does
I/O; nothing here keeps state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Window = tuple[float, float]
Actual = float | Window | None  # a moment, a bracket (last seen alive .. first seen dead), or nothing

DEFAULT_LATE = "timing error: expected {what} within {windows} but it happened at {actual:.3f} s"
DEFAULT_MISSING = "timing error: expected {what} within {windows} but it never happened"


@dataclass(frozen=True)
class Failure:
    """One thing that did not match the rule: which rule, expected, measured, evidence, and the sentence."""

    rule: str  # the check or kernel rule that was broken
    expected: str
    measured: str
    evidence: str = ""
    message: str = ""  # the sentence for a CI log; built from the fields when empty
    early: bool = False  # a time failure below every window: always a real failure, never lateness

    def __str__(self) -> str:
        if self.message:
            return self.message
        text = f"{self.rule}: expected {self.expected}, measured {self.measured}"
        return text + (f" ({self.evidence})" if self.evidence else "")


def windows_text(windows: Sequence[Window], labels: Sequence[object] | None = None) -> str:
    """``[a, b] s`` or ``[a, b] s with 3 or [c, d] s with 2``."""
    parts = [f"[{low:.3f}, {high:.3f}] s" for low, high in windows]
    if labels is not None:
        parts = [f"{part} with {label}" for part, label in zip(parts, labels, strict=True)]
    return " or ".join(parts)


def _windows(window: Window | Sequence[Window]) -> list[Window]:
    """One window or several, as a list of (low, high)."""
    if len(window) == 2 and all(isinstance(x, (int, float)) for x in window):
        low, high = window
        return [(float(low), float(high))]  # type: ignore[arg-type]
    return [(float(w[0]), float(w[1])) for w in window]  # type: ignore[index]


def check_time(
    what: str,
    window: Window | Sequence[Window],
    actual: Actual,
    *,
    rule: str = "",
    evidence: str = "",
    labels: Sequence[object] | None = None,
    early: str | None = None,
    late: str | None = None,
    missing: str | None = None,
) -> Failure | None:
    """None if ``actual`` lies in one of the windows (a bracket: if it overlaps one), else the failure.

    ``early``/``late``/``missing`` are the sentence templates (``str.format``
    fields: ``what``, ``actual`` (a bracket's ``first`` .. ``last``), ``low``,
    ``high``, ``windows``) when a front end keeps its own wording; the
    default is packetdrill's shape.
    """
    windows_ = _windows(window)
    low = min(w[0] for w in windows_)
    high = max(w[1] for w in windows_)
    text = windows_text(windows_, labels)
    fields = {"what": what, "low": low, "high": high, "windows": text}
    expected = f"{what} within {text}"
    if actual is None:
        message = (missing or DEFAULT_MISSING).format(actual=float("nan"), **fields)
        return Failure(rule or what, expected, "never", evidence, message)
    first, last = actual if isinstance(actual, tuple) else (actual, actual)
    if any(first <= w_high and w_low <= last for w_low, w_high in windows_):
        return None
    is_early = last < low
    template = (early if is_early else late) or DEFAULT_LATE
    measured = f"{first:.3f} s" if first == last else f"{first:.3f}..{last:.3f} s"
    message = template.format(actual=last, first=first, last=last, **fields)
    return Failure(rule or what, expected, measured, evidence, message, early=is_early)
