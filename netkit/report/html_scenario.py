"""The HTML report's scenario sections: the verdict line, the facts, the timeline, the rule, the explain text.

Each section reads the scenario's entry and its runs as judged
(:mod:`netkit.document.records`); the timeline is drawn by
:mod:`netkit.report.timeline`, whose marks :func:`legend` explains once.
"""

from __future__ import annotations

from dataclasses import replace

from ..document.records import ScenarioEntry
from ..enums import EventKind, GateOutcome
from .html_matrix import anchor, group_of
from .htmlkit import _e, _style, badge
from .markdown import expected_count, failure_message, format_s, format_windows, known_text, retry_text, run_sentence
from .timeline import MARK_COLOURS, _marker, anchor_text, axis_for, timeline_svg
from .timeline_ledger import ARMING_COLOUR, BUCKET_COLOUR, DEATH_COLOUR, LATE_COLOUR, ON_TIME_COLOUR


def legend(ledger: bool = True) -> str:
    """What the timeline marks mean, once, above the scenarios (the ledger's marks where a run has a ledger)."""
    def icon(body: str) -> str:
        return f'<svg width="22" height="22" viewBox="0 0 22 22" aria-hidden="true">{body}</svg>'

    def mark(kind: EventKind, solid: bool = True) -> str:
        return icon(_marker(kind, 11, 11, solid, MARK_COLOURS[kind]))

    items = [
        (mark(EventKind.PROBE), "probe seen on the wire"),
        (mark(EventKind.PROBE, solid=False), "probe sampled from tcp_info (wire blind)"),
        (mark(EventKind.ANSWERED_PROBE), "answered probe"),
        (mark(EventKind.RETRANSMISSION), "retransmission"),
        (mark(EventKind.ZERO_WINDOW_PROBE), "zero-window probe"),
        (icon('<polygon points="5,4 17,4 11,14" fill="#d1242f"/>'), "RST"),
        (icon('<line x1="11" y1="2" x2="11" y2="20" stroke="#30343a" stroke-width="1.5"/>'),
         "t = 0: the last segment received (or the send)"),
        (icon('<line x1="11" y1="2" x2="11" y2="20" stroke="#d1242f" stroke-width="2.5"/>'), "fault"),
        (icon('<line x1="11" y1="2" x2="11" y2="20" stroke="#111" stroke-width="4"/>'), "death (measured)"),
        (icon('<rect x="3" y="3" width="16" height="16" fill="#2ea043" fill-opacity=".25" stroke="#2ea043"/>'),
         "expected window"),
        (icon('<rect x="3" y="3" width="16" height="16" fill="#e3a008" fill-opacity=".25" stroke="#e3a008"/>'),
         "alternative window"),
    ]
    if ledger:
        items += [
            (icon(f'<line x1="11" y1="4" x2="11" y2="11" stroke="{ARMING_COLOUR}" stroke-width="1.5"/>'
                  '<line x1="2" y1="11" x2="20" y2="11" stroke="#c9cdd3"/>'), "timer armed (ledger)"),
            (icon(f'<line x1="11" y1="11" x2="11" y2="18" stroke="{BUCKET_COLOUR}" stroke-width="1.5"/>'
                  '<line x1="2" y1="11" x2="20" y2="11" stroke="#c9cdd3"/>'), "its bucket's start (when it may run)"),
            (icon(f'<line x1="3" y1="11" x2="13" y2="11" stroke="{ON_TIME_COLOUR}" stroke-width="2"/>'
                  f'<circle cx="14" cy="11" r="3.5" fill="{ON_TIME_COLOUR}"/>'), "timer ran, within a jiffy"),
            (icon(f'<line x1="3" y1="11" x2="13" y2="11" stroke="{LATE_COLOUR}" stroke-width="3"/>'
                  f'<circle cx="14" cy="11" r="3.5" fill="{LATE_COLOUR}"/>'),
             "timer ran more than a jiffy after its bucket (the line: how late)"),
            (icon(f'<path d="M7,7 l8,8 m0,-8 l-8,8" stroke="{DEATH_COLOUR}" stroke-width="2"/>'),
             "the kernel's death in its timer's run (errno)"),
        ]
    return '<div class="legend">' + "".join(f"<span>{i}{_e(t)}</span>" for i, t in items) + "</div>"


def _facts(scenario: ScenarioEntry) -> str:
    runs = scenario.runs
    first = runs[0] if runs else None
    measured = scenario.measured_s
    measured_text = (" / ".join(format_s(m) for m in (measured.min, measured.median, measured.max))
                     + " s (min/median/max)" if measured else "no death")
    counts = sorted({r.count for r in runs if r.count is not None})
    window = scenario.window_s or (first.window_s if first else None)
    items = [
        ("expected", f"{format_s(scenario.expected_s)} s"),
        ("window", f"{format_windows(window, first.alternative_window_s if first else None)} s"),
        ("measured", measured_text),
    ]
    if first:
        items.append(("error", f"{', '.join(sorted({str(r.error) for r in runs}))} "
                               f"(expected {first.expected_error})"))
        items.append((first.count_source or "count",
                      f"{', '.join(map(str, counts)) or '?'} (expected {expected_count(first)})"))
    items.append(("wall", f"{scenario.duration_s or 0.0:.1f} s"))
    return '<div class="kv">' + "".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in items) + "</div>"


def _wire_notes(scenario: ScenarioEntry) -> list[str]:
    """Each run's note on what the wire showed, once per note, naming the runs it is about."""
    runs = scenario.runs
    notes: dict[str, list[int]] = {}
    for n, run in enumerate(runs, 1):
        if run.wire and run.wire.note:
            seen = "wire visible" if run.wire.visible else "wire blind"
            notes.setdefault(f"{seen}: {run.wire.note}", []).append(n)
    lines = []
    for note, numbers in notes.items():
        who = "" if len(runs) == 1 else ("all runs: " if len(numbers) == len(runs) else
                                          "run" + ("s " if len(numbers) > 1 else " ") + ", ".join(map(str, numbers)) + ": ")
        lines.append(f'<p class="note">{_e(who)}{_e(note)}</p>')
    return lines


def section(number: int, scenario: ScenarioEntry) -> str:
    """One scenario's section of the page."""
    outcome = scenario.outcome
    colour, _, label = _style(outcome)
    runs = scenario.runs
    head = (
        f'<section class="scenario o-{_e(outcome)}" id="{anchor(number, scenario)}" style="border-left-color:{colour}">'
        f"<h3>{badge(outcome)} <code>{_e(scenario.id)}</code>"
        f'<span class="meta">{_e(group_of(scenario))} · {_e(scenario.family)} · '
        f'{_e(len(runs))} run{"" if len(runs) == 1 else "s"}</span></h3>'
    )
    body: list[str] = []
    known = known_text(scenario.known)
    if outcome in (GateOutcome.FAIL, GateOutcome.ERROR, GateOutcome.INCONCLUSIVE) or not runs:
        text = failure_message(scenario) if outcome == GateOutcome.FAIL else (scenario.reason or "no reason given")
        word = {"skip": "skipped", "error": "error"}.get(outcome, outcome)
        body.append(f'<p class="verdict reason" style="color:{colour}"><b>{_e(word)}:</b> {_e(text)}</p>')
    else:
        passed = sum(1 for r in runs if r.passed)
        body.append(f'<p class="verdict"><b style="color:{colour}">{passed}/{len(runs)} runs pass:</b> '
                    f"{_e(run_sentence(runs[0]))}</p>")
    if known:
        body.append(f'<p class="note"><b>known failure:</b> <span class="mono">{_e(known)}</span></p>')
    if scenario.retried is not None:
        body.append(f'<p class="note"><b>retried:</b> {_e(retry_text(scenario))}</p>')
    if runs:
        body.append(f'<p class="note"><b>evidence:</b> {_e(scenario.evidence_text.removeprefix("evidence: "))}</p>')
        late = [(n, r.machine_late) for n, r in enumerate(runs, 1) if r.machine_late]
        body += [f'<p class="note"><b>machine late{_e(f" (run {n})" if len(runs) > 1 else "")}:</b> {_e(text)}</p>'
                 for n, text in late]
        body.append(_facts(scenario))
        replaced = scenario.retried.runs if scenario.retried is not None else ()
        axis = axis_for([*runs, *replaced])  # one axis: the machine-late run beside the one judged
        body.append(f'<div class="timeline-frame">{timeline_svg(scenario, axis)}</div>')
        if replaced:
            body.append('<p class="note"><b>the machine-late run the retry replaced</b> (not judged; its ledger '
                        "shows which timer run was late, and by how much):</p>")
            body.append(f'<div class="timeline-frame">{timeline_svg(replace(scenario, runs=replaced), axis)}</div>')
        body += _wire_notes(scenario)
        body.append(f'<p class="note">t = 0 s is {_e(anchor_text(runs[0]))}.</p>')
        if runs[0].rule:
            body.append(f'<p class="rule"><b>rule</b> {_e(runs[0].rule)}</p>')
        failures = [(n, f, f in r.rule_failures) for n, r in enumerate(runs, 1)
                    for f in (*r.failures, *(f for f in r.rule_failures if f not in r.failures))]
        if failures:
            body.append('<ul class="failures">' + "".join(
                f"<li>{_e(f'run {n}: ' if len(runs) > 1 else '')}{'<b>rule (ledger):</b> ' if rule else ''}{_e(f)}</li>"
                for n, f, rule in failures) + "</ul>")
        lost = [n for n, r in enumerate(runs, 1) if r.ledger is not None and r.ledger.lost]
        if lost:
            who = "" if len(runs) == 1 else f" (run{'s' if len(lost) > 1 else ''} {', '.join(map(str, lost))})"
            body.append(f'<p class="note"><b>timer ledger incomplete{_e(who)}:</b> the trace buffer overflowed, '
                        "some armings or runs are missing from the timeline</p>")
        explains = [(n, r.explain) for n, r in enumerate(runs, 1) if r.explain]
        if explains:
            opened = " open" if outcome in (GateOutcome.FAIL, GateOutcome.ERROR, GateOutcome.XPASS) else ""
            text = "\n\n".join((f"run {n}:\n" if len(runs) > 1 else "") + str(t) for n, t in explains)
            body.append(f"<details{opened}><summary>explain (the text for the CI log)</summary>"
                        f"<pre>{_e(text)}</pre></details>")
    return head + "".join(body) + "</section>"
