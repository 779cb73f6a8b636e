"""Judging the timer ledger: the rule checked to the jiffy, and the machine's lateness taken out of the times.

Three questions, kept apart (docs/rules.md, "The timer ledger"):

- **The rule, exact** (:func:`rule_failures`): every bucket the kernel queued
  a re-arm in is the timer wheel's rounding of its expiry
  (``calc_index``: ``((expires >> shift) + 1) << shift``, the level from the
  delay), and every keepalive re-arm that followed a probe asked for
  ``intvl * HZ`` jiffies (``keepalive_intvl_when``): as many of them as
  probes went unanswered.  No tolerance.  Only the handler's own re-arms are
  held to the level exactly: there the timer base's clock is the run's
  jiffy; an arming made by a system call may find the base's clock behind
  ``jiffies`` (``forward_timer_base`` stops at the next expiry), so its level
  may be the next one up.
- **The machine** (:func:`on_time`): each run's lateness is measured
  (:mod:`.ledger`); the measured times -- the probes and the RST on the wire,
  the kernel's death, the observer's reading -- moved back by the lateness
  their run carried give what an idle machine would have shown.
- **The verdict** (``ScenarioResult``): a run that fails only as measured and
  passes once the lateness is taken out is *machine late*, not the kernel's
  failure; an early death or a rule mismatch fails however loaded the
  machine was.

``RULE_SHIFT_JIFFIES`` is a test-only hook: it moves the model's keepalive
re-arm by that many jiffies, so a test proves the ledger catches a rule error
of one jiffy that the death window hides.
"""

from __future__ import annotations

from dataclasses import replace

from ..model.wheel import LVL_CLK_SHIFT, wheel_level
from .ledger import Arming, Ledger
from .timecheck import Failure
from .wire import WireEvidence

KEEPALIVE_TIMER = "tcp_keepalive_timer"
RULE_SHIFT_JIFFIES = 0  # test-only: a planted rule error (see the module docstring)


def wheel_bucket(expires: int, delay: int, hz: int, levels_up: int = 0) -> int:
    """The jiffy the wheel runs a timer expiring at ``expires``, armed ``delay`` jiffies ahead (``calc_index``)."""
    shift = (wheel_level(delay, hz) + levels_up) * LVL_CLK_SHIFT
    return ((expires >> shift) + 1) << shift


def _bucket_failure(a: Arming, hz: int) -> Failure | None:
    expected = wheel_bucket(a.expires, a.delay, hz)
    if a.bucket == expected:
        return None
    if not a.by_run and a.bucket == wheel_bucket(a.expires, a.delay, hz, levels_up=1):
        return None  # a system call's arming: the base's clock may trail jiffies (module docstring)
    return Failure("ledger: wheel bucket", f"jiffy {expected}", f"jiffy {a.bucket}", message=(
        f"ledger: {a.function} armed at {a.t_s:.3f} s for {a.delay} jiffies (expires {a.expires}) was queued in "
        f"the bucket of jiffy {a.bucket}; the wheel's rounding (calc_index) gives {expected}"))


def rule_failures(ledger: Ledger, intvl_s: int | None, probes: int | None) -> list[Failure]:
    """Every way the ledger's armings disagree with the rule, to the jiffy (empty: they agree).

    ``intvl_s`` is the keepalive interval the schedule was made from (None:
    no keepalive rule is judged); ``probes`` the unanswered probes the
    kernel counted (``tcpi_probes``).
    """
    hz = ledger.hz
    found = [f for a in ledger.armings if (f := _bucket_failure(a, hz)) is not None]
    if intvl_s is None or probes is None:
        return found
    wanted = intvl_s * hz + RULE_SHIFT_JIFFIES
    rearms = [a for a in ledger.armings if a.by_run and a.function == KEEPALIVE_TIMER and a.t_s > 0]
    probe_rearms = [a for a in rearms if a.delay == wanted]
    if len(probe_rearms) != probes:
        delays = ", ".join(str(a.delay) for a in rearms) or "none"
        found.append(Failure("ledger: keepalive re-arm", f"{probes} x {wanted} jiffies",
                             f"{len(probe_rearms)} (re-arms: {delays})", message=(
            f"ledger: after each of the {probes} unanswered probes the keepalive timer should re-arm for "
            f"intvl * HZ = {wanted} jiffies (keepalive_intvl_when); the kernel's re-arms after t = 0 asked for "
            f"{delays} jiffies")))
    return found


def shift_at(ledger: Ledger, t_s: float) -> float:
    """The machine's lateness carried by something the kernel did at ``t_s`` (0 where no run explains it)."""
    index = ledger.run_at(t_s)
    return 0.0 if index is None else max(0.0, ledger.carried_s(index))


def death_run_shift(ledger: Ledger) -> float:
    """The lateness the run that killed the socket carried (0 without a death in the ledger)."""
    if ledger.death is None:
        return 0.0
    index = ledger.run_at(ledger.death.t_s, slack_s=1.0)
    return 0.0 if index is None else max(0.0, ledger.carried_s(index))


def on_time(ledger: Ledger) -> Ledger:
    """The ledger as an idle machine would have written it: every run and the death moved back by its lateness."""
    runs = tuple(replace(r, t_s=round(r.t_s - ledger.carried_s(i), 6), late_s=0.0 if r.late_s is not None else None,
                         arming=None if r.arming is None else replace(r.arming, bucket=r.now))
                 for i, r in enumerate(ledger.runs))
    death = ledger.death
    if death is not None:
        death = replace(death, t_s=round(death.t_s - death_run_shift(ledger), 6))
    return replace(ledger, runs=runs, death=death)


def wire_on_time(wire: WireEvidence, ledger: Ledger) -> WireEvidence:
    """The tested side's frames moved back by the lateness of the run that sent each (the peer's are left alone)."""
    def back(t: float) -> float:
        return round(t - shift_at(ledger, t), 6)

    probes = [back(t) for t in wire.probes_s]
    return replace(
        wire, probes_s=probes, spacing_s=[round(b - a, 6) for a, b in zip(probes, probes[1:])],
        first_probe_s=None if wire.first_probe_s is None else back(wire.first_probe_s),
        rst_s=None if wire.rst_s is None else back(wire.rst_s),
        retransmissions_s=[back(t) for t in wire.retransmissions_s],
        zero_window_probes_s=[back(t) for t in wire.zero_window_probes_s],
    )


def first_run_after(ledger: Ledger, function: str, after_s: float = 0.0) -> float | None:
    """When the first run of ``function`` after ``after_s`` began: the run a fault placed at t = 0 must precede."""
    return next((r.t_s for r in ledger.runs if r.function == function and r.t_s > after_s), None)


def lateness_sentence(ledger: Ledger) -> str:
    """``machine late by X ms at run N (...)``: the worst run, and the lateness the death carried."""
    worst = max(range(len(ledger.runs)), key=lambda i: ledger.runs[i].late_s or 0.0, default=None)
    if worst is None:
        return "no timer run measured"
    run = ledger.runs[worst]
    carried = death_run_shift(ledger)
    text = (f"machine late by {(run.late_s or 0) * 1000:.1f} ms at run {worst + 1} ({run.function} at "
            f"{run.t_s:.3f} s, jiffy {run.now}")
    if run.arming is not None:
        text += f", due at jiffy {run.arming.bucket}"
    text += ")"
    if carried:
        text += f"; the death carried {carried * 1000:.1f} ms of it"
    return text


__all__ = ["KEEPALIVE_TIMER", "RULE_SHIFT_JIFFIES", "death_run_shift", "first_run_after", "lateness_sentence",
           "on_time", "rule_failures", "shift_at", "wheel_bucket", "wire_on_time"]
