"""A person's expected death time instead of the model's: the window ``netkit check-client --expect S`` and a
gate cell's ``expect_s`` judge by.

The kernel's rule still decides everything else the run is judged on (the
error, the probe or retransmission count, the timer ledger's armings); only
the time is the person's.  The window is ``[S - 1 jiffy, S + L]``: early by
one jiffy, as every netkit window, and late by the lateness ``L`` the model
allows its own prediction for those settings (the timer wheel's rounding of
each run plus the measurement's jiffies), capped by packetdrill's
max(4 ms, 12.5 %) -- or by packetdrill's bound alone where no prediction is
known.  So an expectation that is the model's own prediction passes exactly
when the model's window does, and one a second off fails, EARLY or LATE.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import NotModelled
from ..kernel import KernelInfo
from .prediction import DeathPrediction, Window
from .wheel import packetdrill_bound_s


def window_for_expectation(expect_s: float, p: DeathPrediction | None, kernel: KernelInfo) -> tuple[Window, str]:
    """[S - 1 jiffy, S + lateness]: the lateness of the model's prediction for the settings, else packetdrill's bound."""
    low = round(expect_s - kernel.jiffy_s, 6)
    if p is None:
        late = packetdrill_bound_s(expect_s)
        how = (f"no keepalive settings could be inferred, so late by packetdrill's bound max(4 ms, 12.5 %) = "
               f"{late * 1000:.0f} ms, early by one jiffy ({kernel.jiffy_s * 1000:g} ms)")
    else:
        late = min(p.window_s[1] - p.expected_s, packetdrill_bound_s(expect_s))
        how = (f"early by one jiffy ({kernel.jiffy_s * 1000:g} ms); late by the timer wheel's rounding of the "
               f"{len(p.timer_runs_s)} timer runs of the settings plus 2 jiffies, capped at 12.5 %: "
               f"{late * 1000:.0f} ms")
    return (low, round(expect_s + late, 6)), how


def expected_by_person(p: DeathPrediction, expect_s: float, kernel: KernelInfo) -> DeathPrediction:
    """The model's prediction with its time replaced by ``expect_s`` (one window: the person names one time).

    A survival (``alive_until_s``: nothing dies) has no time to replace: NotModelled, so the gate skips the cell.
    """
    if p.alive_until_s is not None:
        raise NotModelled(f"expect_s {expect_s:g}: the kernel's rule says this connection survives "
                          f"({p.rule}), so there is no death time to expect")
    window, how = window_for_expectation(expect_s, p, kernel)
    return replace(p, expected_s=expect_s, window_s=window, alternative_window_s=None, alternative_count=None,
                   rule=(f"the expected death at {expect_s:g} s (expect_s; window {how}); the kernel's rule, which "
                         f"judges the error and the count, predicts {p.expected_s:g} s: {p.rule}"))


__all__ = ["expected_by_person", "window_for_expectation"]
