"""When the kernel will kill an idle connection: the rule and its timing window.

The rule (``tcp_keepalive_timer`` in net/ipv4/tcp_timer.c)::

    elapsed = now - rcv_tstamp            # since the last segment RECEIVED
    if elapsed >= idle:
        if probes_out >= cnt:  reset + ETIMEDOUT      # death
        send probe; probes_out += 1; re-arm(intvl)
    else:
        re-arm(idle - elapsed)

A reply to a probe is a received segment: it resets ``rcv_tstamp`` (and
``probes_out``).  So the death time, counted from the last segment received,
is ``first_probe + intvl * cnt`` where ``first_probe`` is the first timer run
at or after ``idle``:

* fault while the connection was merely idle (no probe answered yet): the
  timer was armed for ``idle`` -> ``idle + intvl * cnt``, the classic formula;
* fault right after an *answered probe*: the timer was re-armed for ``intvl``
  when that probe went out, so the first unanswered probe leaves at
  ``max(idle, intvl)`` -> ``max(idle, intvl) + intvl * cnt``.  With
  ``intvl > idle`` this is one ``intvl - idle`` later than the classic formula
  (e.g. 1/2/2: 6 s, not 5 s).

The timer runs themselves are :mod:`netkit.model.schedule` (each prediction made
here carries its schedule); the timing window (timer-wheel lateness) is
:mod:`netkit.model.wheel`.
"""

from __future__ import annotations

from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .prediction import DeathPrediction
from .schedule import keepalive_schedule
from .wheel import window


def keepalive_death(
    settings: KeepaliveSettings, kernel: KernelInfo, last_segment: str = "probe-reply", error: str = "ETIMEDOUT"
) -> DeathPrediction:
    """Predict the death of an idle connection whose peer went silent.

    Without TCP_USER_TIMEOUT: ``cnt`` unanswered probes, death on the next
    run.  With it (``tcp_keepalive_timer``: ``user_timeout && elapsed >=
    user_timeout && icsk_probes_out > 0``) ``cnt`` is ignored: death on the
    first run at or after the user timeout that has a probe outstanding, i.e.
    from run 2 on.  The comparison uses the run's *actual* (late) time, so
    lateness can make an earlier run qualify: the window and the probe count
    span both the nominal run and the earliest run lateness can make qualify.
    """
    schedule = keepalive_schedule(settings, last_segment)
    hz = kernel.hz
    ut = settings.user_timeout_ms
    if not ut:
        runs = settings.cnt + 1
        expected = schedule.time(runs)
        rule = (
            f"tcp_keepalive_timer: {schedule.how}, then {settings.cnt} unanswered probes every {settings.intvl} s; "
            f"death on the next run: {schedule.first_probe} + {settings.intvl} x {settings.cnt} = {expected:g} s "
            "after the last segment received"
        )
        return DeathPrediction(
            rule=rule,
            expected_s=float(expected),
            window_s=window(expected, expected - kernel.jiffy_s, schedule.max_lateness(runs, hz), kernel),
            expected_count=settings.cnt,
            expected_error=error,
            timer_runs_s=schedule.delays(runs),
            last_segment=last_segment,
            schedule=schedule,
        )
    ut_s = ut / 1000
    nominal = 2  # run 1 sends the first probe; with none outstanding it cannot abort
    while schedule.time(nominal) < ut_s:
        nominal += 1
    expected = schedule.time(nominal)
    jiffy = kernel.jiffy_s
    early = nominal - 1
    early_qualifies = early >= 2 and schedule.time(early) + schedule.max_lateness(early, hz) >= ut_s
    rule = (
        f"tcp_keepalive_timer with TCP_USER_TIMEOUT {ut} ms: {schedule.how}, then a probe every {settings.intvl} s "
        f"(TCP_KEEPCNT ignored); death on the first run at or after {ut_s:g} s with a probe outstanding: "
        f"run {nominal} at {expected:g} s after the last segment received, {nominal - 1} probes"
        + (f"; timer lateness can make run {early} ({schedule.time(early):g} s nominal) late enough to qualify, "
           f"{early - 1} probes" if early_qualifies else "")
    )
    return DeathPrediction(
        rule=rule,
        expected_s=float(expected),
        # elapsed >= user_timeout is checked on the jiffies clock we measure with: never before UT
        window_s=window(expected, max(expected - jiffy, ut_s), schedule.max_lateness(nominal, hz), kernel),
        expected_count=nominal - 1,
        expected_error=error,
        alternative_window_s=(window(schedule.time(early), max(schedule.time(early) - jiffy, ut_s),
                                schedule.max_lateness(early, hz), kernel) if early_qualifies else None),
        alternative_count=early - 1 if early_qualifies else None,
        timer_runs_s=schedule.delays(nominal),
        last_segment=last_segment,
        schedule=schedule,
    )


def reset_at_first_probe(settings: KeepaliveSettings, kernel: KernelInfo,
                         last_segment: str = "probe-reply") -> DeathPrediction:
    """The peer forgot the connection: its RST answers the first probe (``tcp_reset``: ECONNRESET)."""
    schedule = keepalive_schedule(settings, last_segment)
    expected = schedule.first_probe
    return DeathPrediction(
        rule=(f"tcp_keepalive_timer: {schedule.how}; the peer has no socket for it and answers with a RST, "
              f"so tcp_reset() kills the connection with ECONNRESET at {expected:g} s after the last segment received"),
        expected_s=float(expected),
        window_s=window(expected, expected - kernel.jiffy_s, schedule.max_lateness(1, kernel.hz), kernel),
        expected_count=1,
        expected_error="ECONNRESET",
        timer_runs_s=schedule.delays(1),
        last_segment=last_segment,
        schedule=schedule,
    )


__all__ = ["keepalive_death", "reset_at_first_probe"]
