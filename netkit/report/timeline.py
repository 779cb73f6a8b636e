"""The SVG timeline of a scenario's runs: the fault, each probe or retransmission, the RST, the death, the window.

One lane per run (``--repeat``), on a shared time axis in seconds since the
last segment received (or the send); wire events are solid, sampled ones
hollow, and the expected window a shaded band.  Each event is drawn by the
kind its run stored (an event without one is a plain tick), and the death
at the judged time, called early or late as the run's ``death_timing``
says: nothing is judged again here.  A run judged with the timer ledger has
the ledger drawn under its probes, on the same axis
(:mod:`netkit.report.timeline_ledger`); every lane says, under its name,
which evidence judged its run (``trace`` or ``observer``, the note in its
tooltip).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..document.records import GateRun, ScenarioEntry
from ..enums import Clock, EventKind, Timing
from .htmlkit import STYLE, _e
from .timeline_ledger import ledger_rows, rows_height, summary

SVG_WIDTH = 1160
AXIS_LEFT = 74
AXIS_RIGHT = SVG_WIDTH - 16
TOP = 30
LANE = 46
BOTTOM = 34


@dataclass(frozen=True)
class TimeAxis:
    """Seconds -> x pixels, shared by every run of one scenario so their lanes line up."""

    t0: float
    t1: float
    x0: float = AXIS_LEFT
    x1: float = AXIS_RIGHT

    def x(self, t: float) -> float:
        return self.x0 + (t - self.t0) / (self.t1 - self.t0) * (self.x1 - self.x0)

    def ticks(self) -> list[float]:
        """Round tick positions (1, 2 or 5 x 10^k s apart), about eight across the axis."""
        raw = (self.t1 - self.t0) / 8
        power = 10 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
        first = math.ceil(self.t0 / step)
        return [round(k * step, 9) for k in range(first, int(math.floor(self.t1 / step)) + 1)]


def _times(runs: Sequence[GateRun]) -> list[float]:
    values: list[float | None] = [0.0]
    for run in runs:
        values += [run.fault_at_s, run.measured_s, run.death_s, run.expected_s]
        for window in run.windows:
            values += list(window)
        values += [e.t_s for e in run.timeline]
        if run.wire:
            values += [run.wire.rst_s, run.wire.peer_rst_s]
    return [t for t in values if t is not None]


def axis_for(runs: Sequence[GateRun]) -> TimeAxis:
    """Axis from a little before t = 0 (or the earliest event) to a little after the latest one."""
    times = _times(runs)
    low, high = min(times), max(times)
    span = max(high - low, 0.1)
    return TimeAxis(low - 0.03 * span, high + 0.10 * span)


def _marker(kind: EventKind, x: float, y: float, solid: bool, colour: str) -> str:
    fill = colour if solid else "#ffffff"
    stroke = f'stroke="{colour}" stroke-width="2"'
    if kind == EventKind.RETRANSMISSION:
        return f'<rect x="{x - 6:.2f}" y="{y - 6:.2f}" width="12" height="12" fill="{fill}" {stroke}/>'
    if kind == EventKind.ZERO_WINDOW_PROBE:
        return (f'<polygon points="{x:.2f},{y - 7:.2f} {x + 7:.2f},{y:.2f} {x:.2f},{y + 7:.2f} {x - 7:.2f},{y:.2f}" '
                f'fill="{fill}" {stroke}/>')
    return f'<circle cx="{x:.2f}" cy="{y:.2f}" r="6.5" fill="{fill}" {stroke}/>'


MARK_COLOURS = {  # the kinds drawn as a marker; any other kind is a grey tick
    EventKind.PROBE: "#2b3a55",
    EventKind.ANSWERED_PROBE: "#1e7b34",
    EventKind.RETRANSMISSION: "#2b3a55",
    EventKind.ZERO_WINDOW_PROBE: "#2b3a55",
}
NOT_DRAWN = (EventKind.FAULT, EventKind.LAST_SEGMENT, EventKind.RST)  # drawn from fault_at_s, t = 0 and wire.rst_s


def timeline_svg(scenario: ScenarioEntry, axis: TimeAxis | None = None) -> str:
    """One SVG for all of a scenario's runs: one lane per run on a shared seconds axis.

    The expected window is a green band (``class="band"``), the alternative
    window an amber one (``class="band alt"``), each carrying
    ``data-low``/``data-high``; the root carries ``data-t0``/``data-t1``/
    ``data-x0``/``data-x1`` so a test can check the band's geometry.
    """
    runs = scenario.runs
    axis = axis or axis_for(runs)
    heights = [lane_height(run) for run in runs]
    lanes_h = sum(heights)
    height = TOP + lanes_h + BOTTOM
    bottom = TOP + lanes_h
    parts: list[str] = [
        f'<svg class="timeline" viewBox="0 0 {SVG_WIDTH} {height}" width="{SVG_WIDTH}" height="{height}" '
        f'role="img" aria-label="timeline of {_e(scenario.id)}" data-t0="{axis.t0:.6f}" data-t1="{axis.t1:.6f}" '
        f'data-x0="{axis.x0:.2f}" data-x1="{axis.x1:.2f}">'
    ]
    first = runs[0] if runs else GateRun()
    bands = [("band", first.window_s or scenario.window_s, "#2ea043", "expected"),
             ("band alt", first.alternative_window_s, "#e3a008", "or")]
    labels: list[str] = []
    centre = None
    for cls, window, colour, word in bands:
        if window is None:
            continue
        low, high = window
        x, width = axis.x(low), axis.x(high) - axis.x(low)
        parts.append(
            f'<rect class="{cls}" x="{x:.2f}" y="{TOP - 4}" width="{width:.2f}" height="{lanes_h + 8}" '
            f'fill="{colour}" fill-opacity="0.22" stroke="{colour}" stroke-opacity="0.7" '
            f'data-low="{low}" data-high="{high}"><title>{_e(word)} window [{low:.3f}, {high:.3f}] s</title></rect>'
        )
        labels.append(f'<tspan style="fill:{colour}">{_e(word)} [{low:.3f}, {high:.3f}] s</tspan>')
        centre = x + width / 2 if centre is None else centre
    if labels and centre is not None:
        # One label for both bands (they are often adjacent), kept inside the drawing: ~7 px a character.
        half = 3.6 * sum(len(re.sub("<[^>]+>", "", label)) + 1 for label in labels)
        centre = min(max(centre, axis.x0 + half), axis.x1 - half)
        parts.append(f'<text x="{centre:.2f}" y="{TOP - 9}" text-anchor="middle" style="font-weight:600">'
                     + " ".join(labels) + "</text>")
    expected = first.expected_s if runs else scenario.expected_s
    if expected is not None:
        ex = axis.x(expected)
        parts.append(f'<line x1="{ex:.2f}" y1="{TOP - 4}" x2="{ex:.2f}" y2="{bottom + 4}" stroke="#2ea043" '
                     f'stroke-dasharray="4 3" stroke-width="1.5"><title>expected {expected:.3f} s</title></line>')
    # axis and ticks
    parts.append(f'<line x1="{axis.x0}" y1="{bottom + 6}" x2="{axis.x1}" y2="{bottom + 6}" stroke="#8a9099"/>')
    for t in axis.ticks():
        tx = axis.x(t)
        parts.append(f'<line x1="{tx:.2f}" y1="{TOP - 4}" x2="{tx:.2f}" y2="{bottom + 10}" stroke="#e3e5e8"/>')
        parts.append(f'<text x="{tx:.2f}" y="{bottom + 24}" text-anchor="middle">{t:g} s</text>')
    zero = axis.x(0.0)
    parts.append(f'<line x1="{zero:.2f}" y1="{TOP - 4}" x2="{zero:.2f}" y2="{bottom + 6}" stroke="#30343a" '
                 f'stroke-width="1.5"><title>t = 0: {_e(anchor_text(first))}</title></line>')
    top = float(TOP)
    for lane, run in enumerate(runs):
        parts += _lane(run, lane, len(runs), axis, top)
        top += heights[lane]
    parts.append("</svg>")
    return "".join(parts)


def lane_height(run: GateRun) -> int:
    """A lane's height: the probes' row, and one thin row per timer function of its ledger (if it has one)."""
    return LANE + rows_height(run.ledger)


def _evidence_caption(run: GateRun, y: float) -> str:
    """``trace`` or ``observer`` under the lane's name; its tooltip says what the ledger holds, or why there is none."""
    if run.ledger is not None:
        tip = f"evidence: trace: {summary(run.ledger)}"
    elif run.extra.get("ledger") is not None:  # a newer netkit's ledger, kept as it was (records.GateRun.extra)
        tip = f"{run.evidence}: a timer ledger this netkit cannot read, not drawn"
    else:
        tip = f"{run.evidence}: {run.evidence_note or 'no timer ledger'}"
    return (f'<text class="evidence {_e(run.evidence)}" x="8" y="{y + 17:.2f}" style="font-size:10px;fill:#666b70">'
            f"<title>{_e(tip)}</title>{_e(run.evidence)}</text>")


def _lane(run: GateRun, lane: int, lanes: int, axis: TimeAxis, top: float) -> list[str]:
    y = top + LANE / 2
    failed = run.verdict not in (None, "pass")
    parts = [
        f'<line x1="{axis.x0}" y1="{y:.2f}" x2="{axis.x1}" y2="{y:.2f}" stroke="#c9cdd3" stroke-width="1"/>',
        f'<text x="8" y="{y + 4:.2f}" style="font-weight:600;fill:{STYLE["fail"][0] if failed else "#30343a"}">'
        f'{_e("run " + str(lane + 1) if lanes > 1 else "run")}</text>',
        _evidence_caption(run, y),
    ]
    if run.ledger is not None:
        parts += ledger_rows(run.ledger, axis, top + LANE)
    fault = run.fault_at_s
    if fault is not None:
        fx = axis.x(fault)
        parts.append(f'<line x1="{fx:.2f}" y1="{y - 14:.2f}" x2="{fx:.2f}" y2="{y + 14:.2f}" stroke="#d1242f" '
                     f'stroke-width="2.5"><title>fault at {fault:.3f} s</title></line>')
        parts.append(f'<text x="{fx + 4:.2f}" y="{y - 7:.2f}" style="fill:#d1242f;font-weight:600">fault</text>')
    death = run.death_s  # the judged death time
    for event in run.timeline:
        kind, t = event.kind, event.t_s
        if t is None or kind in NOT_DRAWN or (kind == EventKind.DEATH and death is not None):
            continue
        source = event.source or ""
        ex = axis.x(t)
        title = f"<title>{t:.3f} s: {_e(event.what)}" + (f" [{_e(source)}]" if source else "") + "</title>"
        if kind not in MARK_COLOURS:
            parts.append(f'<line x1="{ex:.2f}" y1="{y - 6:.2f}" x2="{ex:.2f}" y2="{y + 6:.2f}" stroke="#8a9099" '
                         f'stroke-width="2">{title}</line>')
            continue
        marker = _marker(kind, ex, y, source == "wire", MARK_COLOURS[kind])
        parts.append(f'<g class="event {_e(kind.replace(" ", "-"))} {_e(source or "model")}">{title}{marker}</g>')
    wire = run.wire
    for rst, colour, who in ((wire.rst_s if wire else None, "#d1242f", "RST sent by the tested side"),
                             (wire.peer_rst_s if wire else None, "#e36209", "RST from the peer")):
        if rst is not None:
            rx = axis.x(rst)
            parts.append(
                f'<g class="event rst"><title>{rst:.3f} s: {_e(who)} [wire]</title>'
                f'<polygon points="{rx - 6:.2f},{y - 15:.2f} {rx + 6:.2f},{y - 15:.2f} {rx:.2f},{y - 5:.2f}" '
                f'fill="{colour}"/></g>')
    if death is not None:
        dx = axis.x(death)
        colour = STYLE["fail"][0] if failed else "#111111"
        parts.append(
            f'<g class="death"><title>connection dead at {death:.3f} s: {_e(run.error)}</title>'
            f'<line x1="{dx:.2f}" y1="{y - 14:.2f}" x2="{dx:.2f}" y2="{y + 14:.2f}" stroke="{colour}" stroke-width="4"/>'
            f'<path d="M{dx - 5:.2f},{y + 8:.2f} l10,10 m0,-10 l-10,10" stroke="{colour}" stroke-width="2.5"/></g>')
        label = f"died {death:.3f} s {run.error or ''}".rstrip() + _off_window(run, death)
        text_x, anchor_ = (dx - 9, "end") if dx > axis.x1 - 260 else (dx + 9, "start")
        parts.append(f'<text x="{text_x:.2f}" y="{y + 19:.2f}" text-anchor="{anchor_}" '
                     f'style="fill:{colour};font-weight:700">{_e(label)}</text>')
    return parts


def _off_window(run: GateRun, death: float) -> str:
    """`` (0.496 s EARLY)`` or `` (0.120 s LATE)`` as the run's judgement (``death_timing``) says, else nothing."""
    if run.death_timing == Timing.EARLY and run.windows:
        return f" ({min(low for low, _ in run.windows) - death:.3f} s EARLY)"
    if run.death_timing == Timing.LATE and run.late_by_s is not None:
        return f" ({run.late_by_s:.3f} s LATE)"
    return ""


def anchor_text(run: GateRun) -> str:
    """What t = 0 is for this run: the wire's own words if it has them, else the prediction's clock."""
    if run.wire and run.wire.anchor:
        return run.wire.anchor
    return Clock(run.measured_from).since if run.measured_from in set(Clock) else "the last segment received"
