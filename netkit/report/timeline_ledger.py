"""A run's timer ledger on its timeline lane: each arming, its bucket, each run and its lateness, the kernel's death.

The ledger (:class:`netkit.evidence.ledger.Ledger`) is drawn under the
run's probes, on the same time axis, one thin row per timer function (the
keepalive timer, the write timer): so a late probe lines up with the timer
run that sent it, and the reader sees whether the kernel queued it in the
right bucket (the rule) or ran it late (the machine).

* an arming is a short tick above the row at its ``t_s`` (when the call or
  the handler re-armed the timer);
* its bucket's start is a short tick below the row, at
  ``t_s + (bucket - now) / hz``: the moment the wheel lets the timer run;
  hollow when no run of that arming is in the ledger (re-armed before, or
  still pending at the death);
* a timer run is a dot at its ``t_s``, with a segment ``late_s`` long
  before it: its lateness after its bucket's start, as the ledger measured
  it on its jiffy clock (the bucket tick, placed from the arming's own
  moment, may sit up to a jiffy later: an arming happens somewhere inside
  its jiffy); dot and segment are red when the run came more than one jiffy
  after its bucket's start, green otherwise;
* the kernel's death (the CLOSE in a run of its timer) is a cross with its
  errno.

Every mark carries a ``<title>`` with the numbers (jiffies as the
tracepoints gave them, seconds on the run's axis, lateness in ms), a
``class`` starting with ``ledger`` and ``data-t`` (its moment).  A moment
off the axis (the setsockopt's arming, seconds before t = 0) is drawn at
the axis' edge as a chevron (``data-clipped``): the axis stays the probes'.
Nothing is judged here: the lateness is the ledger's own ``late_s``.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ..evidence.ledger import KEEPALIVE_TIMER, WRITE_TIMER, Arming, Ledger, TimerRun
from .htmlkit import _e

if TYPE_CHECKING:  # the axis is timeline's; it calls this module
    from .timeline import TimeAxis

ROW = 16  # the height of one timer function's row under a lane
ARMING_COLOUR = "#6a7380"
BUCKET_COLOUR = "#1259b0"
ON_TIME_COLOUR = "#1e7b34"
LATE_COLOUR = "#d1242f"  # a run more than one jiffy after its bucket's start
DEATH_COLOUR = "#111111"
ROW_NAMES = {KEEPALIVE_TIMER: "keepalive", WRITE_TIMER: "write"}


def functions(ledger: Ledger | None) -> list[str]:
    """The timer functions of a ledger, one row each, in the order they first appear (none without a ledger)."""
    if ledger is None:
        return []
    seen: dict[str, None] = {}
    for name in [a.function for a in ledger.armings] + [r.function for r in ledger.runs]:
        seen.setdefault(name, None)
    if ledger.death is not None:
        seen.setdefault(ledger.death.function, None)
    return list(seen)


def rows_height(ledger: Ledger | None) -> int:
    """The height the ledger's rows add under a lane (0 without a ledger)."""
    return ROW * len(functions(ledger)) + (4 if ledger is not None else 0)


def bucket_s(arming: Arming, hz: int) -> float:
    """The start of the arming's bucket on the run's axis: the wheel runs the timer at that jiffy's tick."""
    return arming.t_s + (arming.bucket - arming.now) / hz


def is_late(run: TimerRun, hz: int) -> bool:
    """Did the run come more than one jiffy after its bucket's start (the machine's lateness, not the rule's)?"""
    return run.late_s is not None and run.late_s > 1.0 / hz


def errno_text(error: int | None) -> str:
    """``errno 110 (ETIMEDOUT)``, or what is known of it."""
    if error is None:
        return "no error reported in that run"
    name = errno.errorcode.get(error)
    return f"errno {error}" + (f" ({name})" if name else "")


def ledger_rows(ledger: Ledger, axis: TimeAxis, top: float) -> list[str]:
    """The SVG of a ledger's rows, the first row's top at ``top`` (under the lane's probes)."""
    names = functions(ledger)
    hz = ledger.hz
    jiffy_ms = 1000.0 / hz
    fired = {r.arming: r for r in ledger.runs if r.arming is not None}  # each arming's run (armings are values)
    row = {name: top + ROW * k + ROW / 2 for k, name in enumerate(names)}
    parts: list[str] = []
    for name, y in row.items():
        label = ROW_NAMES.get(name, name.removeprefix("tcp_").removesuffix("_timer"))
        parts.append(f'<line x1="{axis.x0}" y1="{y:.2f}" x2="{axis.x1}" y2="{y:.2f}" stroke="#e3e5e8" '
                     f'stroke-dasharray="2 3"/>')
        parts.append(f'<text class="ledger-row" x="{axis.x0 - 6}" y="{y + 3:.2f}" text-anchor="end" '
                     f'style="font-size:10px;fill:#666b70"><title>{_e(name)}: the timer ledger '
                     f'(HZ={hz}, jiffies as the tracepoints gave them)</title>{_e(label)}</text>')
    death = ledger.death
    if death is not None:  # first: the run that died is drawn over its cross
        y = row[death.function]
        x, clipped = _place(axis, death.t_s)
        what = errno_text(death.error)
        parts.append(
            f'<g class="ledger death" data-t="{death.t_s}"{clipped}><title>kernel: CLOSE in {_e(death.function)}\'s '
            f'run at {death.t_s:.6f} s, {_e(what)}</title>'
            f'<path d="M{x - 5:.2f},{y - 5:.2f} l10,10 m0,-10 l-10,10" stroke="{DEATH_COLOUR}" stroke-width="2"/></g>')
        short = f"errno {death.error}" if death.error is not None else "no errno"
        text_x, anchor = (x - 8, "end") if x > axis.x1 - 60 else (x + 8, "start")  # ~50 px of text, 16 px margin
        parts.append(f'<text x="{text_x:.2f}" y="{y + 4:.2f}" text-anchor="{anchor}" '
                     f'style="font-size:10px;fill:{DEATH_COLOUR}">{_e(short)}</text>')
    for n, arming in enumerate(ledger.armings, 1):
        parts += _arming(n, arming, row[arming.function], axis, hz, fired.get(arming))
    for n, run in enumerate(ledger.runs, 1):
        parts += _run(n, run, row[run.function], axis, hz, jiffy_ms)
    return parts


def _place(axis: TimeAxis, t: float) -> tuple[float, str]:
    """x of ``t``, held to the axis' ends; the attribute saying which end held it ("" on the axis)."""
    if t < axis.t0:
        return axis.x0, ' data-clipped="left"'
    if t > axis.t1:
        return axis.x1, ' data-clipped="right"'
    return axis.x(t), ""


def _chevron(x: float, y: float, clipped: str, colour: str) -> str:
    """A small arrowhead at the axis' end: the mark's moment lies beyond it (its title says when)."""
    d = -1 if "left" in clipped else 1
    return (f'<path d="M{x - 3 * d:.2f},{y - 4:.2f} l{3 * d},4 l{-3 * d},4" fill="none" stroke="{colour}" '
            'stroke-width="1.5"/>')


def _arming(n: int, arming: Arming, y: float, axis: TimeAxis, hz: int, run: TimerRun | None) -> list[str]:
    due = bucket_s(arming, hz)
    by = "by its own run (re-armed)" if arming.by_run else "by a system call or another path"
    numbers = (f"arming {n} of {arming.function} at {arming.t_s:.6f} s (jiffy {arming.now}) {by}: "
               f"requested expiry jiffy {arming.expires} (+{arming.delay}), bucket jiffy {arming.bucket} "
               f"(+{arming.bucket - arming.now}), due at {due:.6f} s")
    x, clipped = _place(axis, arming.t_s)
    tick = (_chevron(x, y - 4, clipped, ARMING_COLOUR) if clipped else
            f'<line x1="{x:.2f}" y1="{y - 7:.2f}" x2="{x:.2f}" y2="{y:.2f}" stroke="{ARMING_COLOUR}" stroke-width="1.5"/>')
    parts = [f'<g class="ledger arming" data-t="{arming.t_s}"{clipped}><title>{_e(numbers)}</title>{tick}</g>']
    bx, bclipped = _place(axis, due)
    if run is None:
        ran = "no run of this arming in the ledger (re-armed or deleted before its bucket, or pending at the death)"
        style = f'stroke="{BUCKET_COLOUR}" stroke-opacity="0.45" stroke-dasharray="2 1"'
    else:
        ran = f"ran at jiffy {run.now}, {run.t_s:.6f} s" + (
            "" if run.late_s is None else f", {run.late_s * 1000:.3f} ms after the bucket's start")
        style = f'stroke="{BUCKET_COLOUR}"'
    text = f"bucket of arming {n}: jiffy {arming.bucket} starts at about {due:.6f} s (requested expiry {arming.expires}); {ran}"
    mark = (_chevron(bx, y + 4, bclipped, BUCKET_COLOUR) if bclipped else
            f'<line x1="{bx:.2f}" y1="{y:.2f}" x2="{bx:.2f}" y2="{y + 7:.2f}" {style} stroke-width="1.5"/>')
    kind = "ledger bucket" if run is not None else "ledger bucket unrun"
    parts.append(f'<g class="{kind}" data-t="{round(due, 6)}"{bclipped}><title>{_e(text)}</title>{mark}</g>')
    return parts


def _run(n: int, run: TimerRun, y: float, axis: TimeAxis, hz: int, jiffy_ms: float) -> list[str]:
    late = is_late(run, hz)
    colour = LATE_COLOUR if late else ON_TIME_COLOUR
    arming = run.arming
    if arming is None:
        text = (f"run {n} of {run.function} at {run.t_s:.6f} s (jiffy {run.now}); "
                "its arming came before the ledger began: lateness unknown")
    else:
        lateness = "lateness unknown" if run.late_s is None else (
            f"{run.late_s * 1000:.3f} ms after its bucket's start: "
            + (f"LATE (more than a jiffy, {jiffy_ms:g} ms at HZ={hz})" if late else "on time (within a jiffy)"))
        text = (f"run {n} of {run.function} at {run.t_s:.6f} s, ran at jiffy {run.now}; requested expiry jiffy "
                f"{arming.expires}, bucket jiffy {arming.bucket} ({bucket_s(arming, hz):.6f} s); {lateness}")
    parts: list[str] = []
    x, clipped = _place(axis, run.t_s)
    if arming is not None and run.late_s is not None:
        bx, _ = _place(axis, run.t_s - run.late_s)  # the ledger's own measure (its jiffy clock), not re-derived
        parts.append(f'<g class="ledger late{" over" if late else ""}" data-late-s="{run.late_s}"><title>{_e(text)}</title>'
                     f'<line x1="{bx:.2f}" y1="{y:.2f}" x2="{x:.2f}" y2="{y:.2f}" stroke="{colour}" '
                     f'stroke-width="{3 if late else 2}" stroke-opacity="0.8"/></g>')
    mark = (_chevron(x, y, clipped, colour) if clipped else
            f'<circle cx="{x:.2f}" cy="{y:.2f}" r="3.5" fill="{colour}"/>')
    parts.append(f'<g class="ledger run{" late" if late else ""}" data-t="{run.t_s}"{clipped}>'
                 f"<title>{_e(text)}</title>{mark}</g>")
    return parts


def summary(ledger: Ledger) -> str:
    """One line for the lane's evidence caption: how much the ledger holds."""
    lates = sum(1 for r in ledger.runs if is_late(r, ledger.hz))
    return (f"timer ledger at HZ={ledger.hz}: {len(ledger.armings)} armings, {len(ledger.runs)} runs"
            + (f" ({lates} more than a jiffy late)" if lates else "")
            + ("" if ledger.death is None else f", the kernel's death at {ledger.death.t_s:.3f} s")
            + ("; EVENTS LOST (the trace buffer overflowed)" if ledger.lost else ""))
