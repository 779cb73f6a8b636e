"""Judging the timer ledger: the rule checked to the jiffy, and the machine's lateness taken out of the times.

Three questions, kept apart (docs/rules.md, "The timer ledger"):

- **The rule, exact** (:func:`rule_failures`): every bucket the kernel queued
  an arming in is the timer wheel's rounding of its expiry (``calc_index``:
  ``((expires >> shift) + 1) << shift``) at a level the base's clock allows
  (:func:`possible_buckets`), and every keepalive re-arm that followed a
  probe asked for ``intvl * HZ`` jiffies (``keepalive_intvl_when``): as many
  of them as probes went unanswered.  No other tolerance.
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

from ..model.wheel import bucket_at_level, runs_at_jiffy, wheel_level
from .ledger import KEEPALIVE_TIMER, Arming, Ledger, TimerRun
from .timecheck import Failure
from .wire import WireEvidence

RULE_SHIFT_JIFFIES = 0  # test-only: a planted rule error (see the module docstring)


def possible_buckets(a: Arming, hz: int) -> list[int]:
    """Every bucket the wheel can give this arming: one per level its base's clock allows.

    The level comes from ``expires - base->clk``, and the base's clock is
    not ``jiffies`` exactly.  While a run's handlers execute it is one ahead
    (``__run_timers``: "base->clk is set 1 offset ahead of jiffies"), and a
    system call made just after a run finds it so too: the level may be the
    one of ``delay - 1``.  A base forwarded to its next expiry
    (``__forward_timer_base``) trails ``jiffies``: by up to the run's own
    lateness less one for a handler's re-arm, and by an unknown amount for a
    system call's arming (one level up is allowed).
    """
    low = wheel_level(max(a.delay - 1, 0), hz)
    if a.by_run:
        high = wheel_level(a.delay + max(0, (a.run_late or 0) - 1), hz)
    else:
        high = wheel_level(a.delay, hz) + 1
    return [bucket_at_level(a.expires, level) for level in range(low, high + 1)]


def _bucket_failure(a: Arming, hz: int) -> Failure | None:
    allowed = possible_buckets(a, hz)
    if a.bucket in allowed:
        return None
    shown = " or ".join(str(b) for b in sorted(set(allowed)))
    return Failure("ledger: wheel bucket", f"jiffy {shown}", f"jiffy {a.bucket}", message=(
        f"ledger: {a.function} armed at {a.t_s:.3f} s for {a.delay} jiffies (expires {a.expires}) was queued in "
        f"the bucket of jiffy {a.bucket}; the wheel's rounding (calc_index) gives {shown}"))


def rule_failures(ledger: Ledger, intvl_s: float | None, probes: int | None,
                  idle_s: float | None = None) -> list[Failure]:
    """Every way the ledger's armings disagree with the rule, to the jiffy (empty: they agree).

    ``intvl_s``/``idle_s`` are the keepalive settings the schedule was made
    from (``intvl_s`` None: no keepalive rule is judged); ``probes`` the
    unanswered probes the kernel counted (``tcpi_probes``).  Which runs sent
    a probe is read from the ledger's own jiffies: a run ``idle`` or more
    after t = 0 probes (or kills), one before re-arms for ``idle - elapsed``
    (``tcp_keepalive_timer``); within a jiffy of ``idle``, its re-arm's delay
    says which it was.
    """
    hz = ledger.hz
    found = [f for a in ledger.armings if (f := _bucket_failure(a, hz)) is not None]
    if intvl_s is None or probes is None:
        return found
    wanted = round(intvl_s * hz) + RULE_SHIFT_JIFFIES
    rearms = [a for a in ledger.armings if a.by_run and a.function == KEEPALIVE_TIMER and a.t_s > 0]

    def after_a_probe(a: Arming) -> bool:
        if ledger.zero_jiffy is None or idle_s is None:
            return a.delay == wanted
        since = a.now - ledger.zero_jiffy
        idle = round(idle_s * hz)
        return since > idle or (since >= idle - 1 and a.delay == wanted)

    probe_rearms = [a for a in rearms if after_a_probe(a)]
    delays = ", ".join(str(a.delay) for a in rearms) or "none"
    if len(probe_rearms) != probes or any(a.delay != wanted for a in probe_rearms):
        found.append(Failure("ledger: keepalive re-arm", f"{probes} x {wanted} jiffies",
                             f"{len(probe_rearms)} (re-arms: {delays})", message=(
            f"ledger: after each of the {probes} unanswered probes the keepalive timer should re-arm for "
            f"intvl * HZ = {wanted} jiffies (keepalive_intvl_when); the kernel's {len(probe_rearms)} re-arms after probes, "
            f"of its re-arms after t = 0 ({delays} jiffies), did not")))
    return found


def carried(ledger: Ledger, intvl_jiffies: int | None = None, idle_jiffies: int | None = None) -> list[float]:
    """How much later than on an idle machine each run happened (s): its own lateness and what earlier runs passed on.

    A re-arm made in a run counts from the jiffy the run ran at
    (``jiffies + delay``: the retransmission timer, a keepalive re-arm for
    ``intvl``), so a run late by whole jiffies moves the next expiry by as
    much -- unless the wheel's rounding swallows it, which is why the idle
    machine's bucket is computed again (``calc_index``) rather than the
    jiffies added up.  A keepalive re-arm for ``idle - elapsed`` (any other
    delay than ``intvl_jiffies``) counts from the last segment received, not
    from the run: it passes nothing on.

    An arming by a system call after t = 0 for the whole ``idle_jiffies``
    (``SO_KEEPALIVE`` after the handshake, in a routed lab: it counts from
    the call, ``keepalive_time_when``) would have been made in t = 0's own
    jiffy on an idle machine: a process descheduled between ``connect`` and
    ``setsockopt`` (137 ms once, two gates at once on 2 CPUs) passes that on.
    """
    tick = 1 / ledger.hz
    pending: dict[str, int] = {}  # timer function -> jiffies its pending bucket is later than on an idle machine
    on_time_now: dict[str, int] = {}  # timer function -> the jiffy its last run would have run at
    last_run: dict[str, TimerRun] = {}
    last_delay: dict[str, int] = {}
    found: list[float] = []
    events = sorted([(a.t_s, 0, a) for a in ledger.armings] + [(r.t_s, 1, r) for r in ledger.runs],
                    key=lambda e: (e[0], e[1]))
    for _, _, item in events:
        if isinstance(item, TimerRun):
            behind = pending.pop(item.function, 0) if item.arming is not None else 0
            found.append(max(0.0, (item.late_s or 0.0) + behind * tick))
            if item.arming is not None:
                on_time_now[item.function] = item.arming.bucket - behind
            last_run[item.function] = item
            continue
        run = last_run.get(item.function)
        previous = last_delay.get(item.function)
        last_delay[item.function] = item.delay
        if not item.by_run and item.t_s > 0 and ledger.zero_jiffy is not None and item.delay == idle_jiffies:
            idle_bucket = runs_at_jiffy(min(item.now, ledger.zero_jiffy), item.delay, ledger.hz)
            pending[item.function] = max(0, item.bucket - idle_bucket)
            continue
        if not item.by_run or item.t_s <= 0 or run is None or item.function not in on_time_now:
            pending[item.function] = 0  # before t = 0 the model's axis already holds the lateness (t = 0 is a reply)
            continue
        moved = run.now - on_time_now[item.function]  # jiffies the run itself ran late
        if item.function == KEEPALIVE_TIMER:
            relative = item.delay == intvl_jiffies
        else:  # a retransmission re-arm shorter than the one before is the user timeout's clamp: an absolute deadline
            relative = previous is None or item.delay >= previous
        if relative:
            idle_bucket = runs_at_jiffy(item.now - moved, item.delay, ledger.hz)
        else:
            idle_bucket = runs_at_jiffy(item.now - moved, item.delay + moved, ledger.hz)
        pending[item.function] = item.bucket - idle_bucket
    return found


def shift_at(ledger: Ledger, t_s: float, shifts: list[float]) -> float:
    """The lateness carried by something the kernel did at ``t_s`` in one of its runs (0 where no run explains it)."""
    index = ledger.run_at(t_s)
    return 0.0 if index is None else shifts[index]


def death_run_shift(ledger: Ledger, shifts: list[float]) -> float:
    """The lateness the run that killed the socket carried (0 without a death in the ledger)."""
    if ledger.death is None:
        return 0.0
    index = ledger.run_at(ledger.death.t_s, slack_s=1.0)
    return 0.0 if index is None else shifts[index]


def on_time(ledger: Ledger, shifts: list[float]) -> Ledger:
    """The ledger as an idle machine would have written it: every run and the death moved back by its lateness."""
    runs = tuple(replace(r, t_s=round(r.t_s - shifts[i], 6), late_s=0.0 if r.late_s is not None else None)
                 for i, r in enumerate(ledger.runs))
    death = ledger.death
    if death is not None:
        death = replace(death, t_s=round(death.t_s - death_run_shift(ledger, shifts), 6))
    return replace(ledger, runs=runs, death=death)


def wire_on_time(wire: WireEvidence, ledger: Ledger, shifts: list[float]) -> WireEvidence:
    """The tested side's frames moved back by the lateness of the run that sent each.

    The peer's frames are left alone, except a RST within a run's moments
    (:meth:`Ledger.run_at`): the answer to the probe that run sent (a
    middlebox's ``reject``, a rebooted peer) comes as late as the probe.
    """
    def back(t: float) -> float:
        return round(t - shift_at(ledger, t, shifts), 6)

    probes = [back(t) for t in wire.probes_s]
    return replace(
        wire, probes_s=probes, spacing_s=[round(b - a, 6) for a, b in zip(probes, probes[1:])],
        first_probe_s=None if wire.first_probe_s is None else back(wire.first_probe_s),
        rst_s=None if wire.rst_s is None else back(wire.rst_s),
        peer_rst_s=None if wire.peer_rst_s is None else back(wire.peer_rst_s),
        retransmissions_s=[back(t) for t in wire.retransmissions_s],
        zero_window_probes_s=[back(t) for t in wire.zero_window_probes_s],
    )


def first_run_after(ledger: Ledger, function: str, after_s: float = 0.0) -> float | None:
    """When the first run of ``function`` after ``after_s`` began: the run a fault placed at t = 0 must precede."""
    return next((r.t_s for r in ledger.runs if r.function == function and r.t_s > after_s), None)


def lateness_sentence(ledger: Ledger, shifts: list[float]) -> str:
    """``machine late by X ms at run N (...)``: the worst run, and the lateness the death carried."""
    worst = max(range(len(ledger.runs)), key=lambda i: max(shifts[i], ledger.runs[i].late_s or 0.0), default=None)
    if worst is None:
        return "no timer run measured"
    run = ledger.runs[worst]
    own = run.late_s or 0.0
    text = (f"machine late by {max(own, shifts[worst]) * 1000:.1f} ms at run {worst + 1} ({run.function} at "
            f"{run.t_s:.3f} s, jiffy {run.now}")
    if run.arming is not None:
        text += f", due at jiffy {run.arming.bucket}"
    if shifts[worst] > own + 1e-6:
        text += f"; {own * 1000:.1f} ms its own, the rest carried from {_carried_from(ledger, run)}"
    text += ")"
    carried_by_death = death_run_shift(ledger, shifts)
    if carried_by_death:
        text += f"; the death carried {carried_by_death * 1000:.1f} ms of lateness"
    return text


def _carried_from(ledger: Ledger, run: TimerRun) -> str:
    """Where a run's carried lateness came from: its arming by a late system call, or the late runs before it."""
    a = run.arming
    if a is not None and not a.by_run and a.t_s > 0 and ledger.zero_jiffy is not None:
        return (f"its arming by a system call at {a.t_s:.3f} s, {a.now - ledger.zero_jiffy} jiffies after t = 0's jiffy "
                "(an idle machine makes it at once)")
    return "the late runs before it"


__all__ = ["RULE_SHIFT_JIFFIES", "carried", "death_run_shift", "first_run_after", "lateness_sentence",
           "on_time", "possible_buckets", "rule_failures", "shift_at", "wire_on_time"]
