"""The gate document as one self-contained HTML page a person would rather read than the JSON.

One file, nothing fetched: inline CSS, inline SVG, no JavaScript, no external
asset, no URL at all (a known failure's link is shown as text without its
``https://``, so not even a click leaves the page), so the page can be attached to a CI run, mailed, or
opened on an air-gapped lab machine and look the same.

The page, top to bottom:

* a header: kernel release and version, HZ (and where it was read), the
  machine, netkit's version, start/end and wall time, and the totals as
  coloured badges;
* the matrix: one row per ``state/fault``, one column per family and
  keepalive settings (rows per settings when there are many), a cell
  coloured by outcome showing the median death time, linking to the
  scenario's section;
* every scenario, failures and errors first: a verdict line (the same
  sentence JUnit uses), a timeline drawn on a time axis in seconds (t = 0 is
  the last segment received; the fault; each probe, retransmission and
  zero-window probe — solid when the wire showed it, hollow when it was only
  sampled from tcp_info; the RST; the death; the expected window as a shaded
  band, the alternative window as a second band), the rule, the failures,
  and the explain text in a ``<details>``.

Every piece of document text goes through ``html.escape`` (and loses any
``scheme://``, so the page holds no URL whatever the document quotes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from .htmlkit import STYLE, _e, _mapping, _style
from .markdown import (
    OUTCOMES,
    Doc,
    Scenario,
    as_number,
    distinct,
    expected_count,
    failure_message,
    format_s,
    format_windows,
    known_text,
    run_count,
    run_sentence,
)
from .timeline import MARK_COLOURS, _anchor_text, _marker, timeline_svg

# Failures and errors first, then what needs a look (xpass: a known failure went away), then the rest.
SECTION_ORDER = ("fail", "error", "xpass", "xfail", "pass", "skip")

# outcome -> (strong colour, light background, label)
MAX_MATRIX_COLUMNS = 10  # about 100 px each: what fits the page beside the row labels

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; background: #f4f5f7; color: #1d1f23; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; border-bottom: 2px solid #d5d8dd; padding-bottom: 4px; }
h3 { font-size: 17px; margin: 0 0 6px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
code, pre, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13.5px; }
.sub { color: #555b63; margin: 0 0 14px; }
.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 3px 16px;
         background: #fff; border: 1px solid #d5d8dd; border-radius: 8px; padding: 12px 16px; margin: 0; }
.facts dt { color: #555b63; } .facts dd { margin: 0; font-weight: 600; }
.badges { display: flex; gap: 8px; flex-wrap: wrap; margin: 14px 0 0; }
.badge { display: inline-block; border-radius: 999px; padding: 3px 12px; font-weight: 700; font-size: 14px;
         color: #fff; letter-spacing: .02em; }
.badge.zero { opacity: .35; }
table.matrix { border-collapse: separate; border-spacing: 4px; background: #fff; border: 1px solid #d5d8dd;
               border-radius: 8px; padding: 6px; }
table.matrix th { font-weight: 600; color: #3b4047; padding: 4px 8px; font-size: 13.5px; }
table.matrix th.row { text-align: right; white-space: nowrap; }
table.matrix td { min-width: 96px; height: 46px; padding: 0; border-radius: 6px; text-align: center; }
table.matrix.tall td { height: 32px; }
table.matrix.tall td a { padding: 3px 6px; }
table.matrix th.group { vertical-align: top; padding-top: 10px; border-top: 1px solid #e1e4e8; }
table.matrix td.empty { background: repeating-linear-gradient(45deg, #f3f4f6, #f3f4f6 5px, #e9ebee 5px, #e9ebee 10px); }
table.matrix td a { display: block; padding: 5px 6px; color: inherit; text-decoration: none; border-radius: 6px; }
table.matrix td a + a { border-top: 1px solid rgba(0,0,0,.12); }
.cell-main { font-weight: 700; font-size: 15px; font-variant-numeric: tabular-nums; }
.cell-sub { font-size: 11.5px; opacity: .85; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; align-items: center; color: #3b4047; font-size: 13.5px;
          margin: 6px 0 0; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
section.scenario { background: #fff; border: 1px solid #d5d8dd; border-left: 8px solid #999; border-radius: 8px;
                   padding: 14px 18px; margin: 14px 0; }
.verdict { margin: 4px 0 8px; font-size: 15px; }
.meta { color: #555b63; font-weight: 400; font-size: 14px; }
.rule { color: #30343a; margin: 6px 0; }
.rule b, .kv b { color: #555b63; font-weight: 600; }
ul.failures { margin: 6px 0; padding-left: 22px; color: #9b1c22; }
.note { color: #555b63; font-size: 13.5px; margin: 2px 0; }
.reason { font-size: 15px; }
details { margin-top: 8px; }
summary { cursor: pointer; color: #30343a; font-weight: 600; }
pre { background: #f6f7f9; border: 1px solid #e1e4e8; border-radius: 6px; padding: 10px 12px; overflow-x: auto;
      white-space: pre-wrap; margin: 6px 0 0; }
svg.timeline { display: block; width: 100%; height: auto; margin: 6px 0 4px; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; font-size: 12px; fill: #30343a; }
.kv { display: flex; gap: 4px 22px; flex-wrap: wrap; margin: 4px 0; font-size: 14px; }
"""


def anchor(number: int, scenario: Scenario) -> str:
    """A unique, URL-safe fragment id for a scenario's section (ids contain '/')."""
    return f"s{number}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", str(scenario.get("id", "scenario"))).strip("-")


def settings_of(scenario: Scenario) -> str:
    """The id without ``<family>-<state>-<fault>-``: the keepalive settings (``1/1/3-ut1500``)."""
    sid = str(scenario.get("id", ""))
    prefix = f"{scenario.get('family')}-{scenario.get('state')}-{scenario.get('fault')}-"
    return sid[len(prefix):] if sid.startswith(prefix) else sid


def group_of(scenario: Scenario) -> str:
    return str(scenario.get("group") or f"{scenario.get('state')}/{scenario.get('fault')}")


def _badge(outcome: str, text: Optional[str] = None, zero: bool = False) -> str:
    colour, _, label = _style(outcome)
    classes = "badge" + (" zero" if zero else "")
    return f'<span class="{classes}" style="background:{colour}">{_e(text or label)}</span>'


# ---------------------------------------------------------------- header


def _header(doc: Doc) -> str:
    kernel, machine = doc.get("kernel") or {}, doc.get("machine") or {}
    options, totals = doc.get("options") or {}, doc.get("totals") or {}
    machine_text = f"{machine.get('cpus', '?')} CPUs, " + (
        f"virtualized ({machine['virtualization']})" if machine.get("virtualization") else "bare metal"
    )
    if machine.get("slow"):
        machine_text += ", slow (KSFT_MACHINE_SLOW windows)"
    option_text = ", ".join(
        f"{key} {value}" for key, value in options.items() if value not in (None, [], False, "")
    ) or "defaults"
    wall = as_number(doc.get("wall_s"))
    facts = [
        ("kernel", f"{kernel.get('release', '?')}  {kernel.get('version', '')}".strip()),
        ("HZ", f"{kernel.get('hz', '?')}" + (f" (from {kernel['hz_source']})" if kernel.get("hz_source") else "")),
        ("machine", machine_text),
        ("netkit", doc.get("netkit", "?")),
        ("started", doc.get("started", "?")),
        ("ended", doc.get("ended", "?")),
        ("wall time", "?" if wall is None else f"{wall:.1f} s"),
        ("options", option_text),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    badges = "".join(
        _badge(k, f"{int(totals.get(k, 0))} {k}", zero=not totals.get(k)) for k in OUTCOMES
    )
    verdict = "FAILED" if totals.get("fail") or totals.get("error") else "passed"
    count = len(doc.get("scenarios") or [])
    counted = {k: 0 for k in OUTCOMES}
    for scenario in doc.get("scenarios") or []:
        counted[scenario.get("outcome")] = counted.get(scenario.get("outcome"), 0) + 1
    mismatch = {k: (totals.get(k, 0), counted.get(k, 0)) for k in counted if totals.get(k, 0) != counted.get(k, 0)}
    if mismatch:
        warning = "; ".join(f"{k}: totals say {a}, scenarios say {b}" for k, (a, b) in mismatch.items())
        badges += (f'<p class="verdict" style="color:{STYLE["fail"][0]}">'
                   f'<b>totals disagree with the scenarios:</b> {_e(warning)}</p>')
    return (
        f"<h1>netkit gate {_e(verdict)} on {_e(kernel.get('release', '?'))}</h1>"
        f'<p class="sub">{_e(count)} scenario{"" if count == 1 else "s"}, schema {_e(doc.get("schema", "?"))}: '
        "when do TCP keepalive and TCP_USER_TIMEOUT kill a connection on this kernel, and does it match the rules?</p>"
        f'<dl class="facts">{rows}</dl><div class="badges">{badges}</div>'
    )


# ---------------------------------------------------------------- matrix


def _cell_link(number: int, scenario: Scenario) -> str:
    outcome = scenario.get("outcome")
    colour, background, label = _style(outcome)
    measured = _mapping(scenario.get("measured_s"))
    if outcome == "skip":
        main, sub = "SKIP", ""
    elif outcome == "error":
        main, sub = "ERR", ""
    elif as_number(measured.get("median")) is not None:
        main, sub = f"{as_number(measured['median']):.3f} s", "" if outcome == "pass" else label.lower()
    else:
        main, sub = label, "no death"
    if outcome == "fail" or outcome == "error":
        tip = failure_message(scenario)
    else:
        tip = scenario.get("reason") or label
    return (
        f'<a href="#{anchor(number, scenario)}" style="background:{background};color:{colour}" '
        f'title="{_e(scenario.get("id"))}: {_e(tip)}">'
        f'<div class="cell-main">{_e(main)}</div>' + (f'<div class="cell-sub">{_e(sub)}</div>' if sub else "") + "</a>"
    )


def _matrix(doc: Doc) -> str:
    """Rows state/fault, columns family x settings; with many settings, rows (state/fault, settings) instead."""
    numbered = list(enumerate(doc.get("scenarios") or [], 1))
    if not numbered:
        return "<p>No scenarios.</p>"
    families = sorted(distinct(str(s.get("family")) for _, s in numbered))
    settings = distinct(settings_of(s) for _, s in numbered)
    groups = distinct(group_of(s) for _, s in numbered)
    wide = len(settings) * len(families) <= MAX_MATRIX_COLUMNS
    rows: list[tuple[str, str | None]]
    columns: list[tuple[str | None, str]]
    if wide:
        rows = [(g, None) for g in groups]
        columns = [(st, f) for st in settings for f in families]
    else:
        rows = [(g, st) for g in groups for st in settings
                if any(group_of(s) == g and settings_of(s) == st for _, s in numbered)]
        columns = [(None, f) for f in families]
    cells: dict[tuple[str, str | None, str | None, str], Any] = {}
    for number, s in numbered:
        key = (group_of(s), settings_of(s) if not wide else None, settings_of(s) if wide else None, str(s.get("family")))
        cells.setdefault(key, []).append((number, s))
    out = [f'<table class="matrix {"wide" if wide else "tall"}"><thead>']
    if wide:
        out.append('<tr><th></th>' + "".join(
            f'<th colspan="{len(families)}" class="mono">{_e(st)}</th>' for st in settings) + "</tr>")
    corner = "<th></th>" if wide else '<th class="row">state/fault</th><th class="row">settings</th>'
    out.append(f"<tr>{corner}" + "".join(f"<th>{_e(f)}</th>" for _, f in columns) + "</tr></thead><tbody>")
    for index, (group, row_settings) in enumerate(rows):
        if wide:
            out.append(f'<tr><th class="row mono">{_e(group)}</th>')
        else:
            out.append("<tr>")
            if index == 0 or rows[index - 1][0] != group:
                span = sum(1 for g, _ in rows if g == group)
                out.append(f'<th class="row mono group" rowspan="{span}">{_e(group)}</th>')
            out.append(f'<th class="row mono">{_e(row_settings)}</th>')
        for col_settings, family in columns:
            found = cells.get((group, row_settings, col_settings, family), [])
            if found:
                out.append("<td>" + "".join(_cell_link(n, s) for n, s in found) + "</td>")
            else:
                out.append('<td class="empty" title="not in this matrix"></td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# ---------------------------------------------------------------- timeline SVG


def legend() -> str:
    """What the timeline marks mean, once, above the scenarios."""
    def icon(body: str) -> str:
        return f'<svg width="22" height="22" viewBox="0 0 22 22" aria-hidden="true">{body}</svg>'
    items = [
        (icon(_marker("probe", 11, 11, True, MARK_COLOURS["probe"])), "probe seen on the wire"),
        (icon(_marker("probe", 11, 11, False, MARK_COLOURS["probe"])), "probe sampled from tcp_info (wire blind)"),
        (icon(_marker("answered probe", 11, 11, True, MARK_COLOURS["answered probe"])), "answered probe"),
        (icon(_marker("retransmission", 11, 11, True, MARK_COLOURS["retransmission"])), "retransmission"),
        (icon(_marker("zero-window probe", 11, 11, True, MARK_COLOURS["zero-window probe"])), "zero-window probe"),
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
    return '<div class="legend">' + "".join(f"<span>{i}{_e(t)}</span>" for i, t in items) + \
        "</div>"


# ---------------------------------------------------------------- scenario sections


def _facts(scenario: Scenario) -> str:
    runs = scenario.get("runs") or []
    first = runs[0] if runs else {}
    measured = _mapping(scenario.get("measured_s"))
    measured_text = (" / ".join(format_s(as_number(measured.get(k))) for k in ("min", "median", "max"))
                     + " s (min/median/max)" if measured else "no death")
    counts = sorted({c for c in (run_count(r) for r in runs) if c is not None})
    items = [
        ("expected", f"{format_s(scenario.get('expected_s'))} s"),
        ("window", f"{format_windows(scenario.get('window_s') or first.get('window_s'), first.get('alternative_window_s'))} s"),
        ("measured", measured_text),
    ]
    if first:
        items.append(("error", f"{', '.join(sorted({str(r.get('error')) for r in runs}))} "
                               f"(expected {first.get('expected_error')})"))
        items.append((str(first.get("count_source") or "count"),
                      f"{', '.join(map(str, counts)) or '?'} (expected {expected_count(first)})"))
    items.append(("wall", f"{as_number(scenario.get('duration_s')) or 0.0:.1f} s"))
    return '<div class="kv">' + "".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in items) + "</div>"


def _section(number: int, scenario: Scenario) -> str:
    outcome = str(scenario.get("outcome"))
    colour, _, label = _style(outcome)
    runs = list(scenario.get("runs") or [])
    head = (
        f'<section class="scenario o-{_e(outcome)}" id="{anchor(number, scenario)}" style="border-left-color:{colour}">'
        f"<h3>{_badge(outcome)} <code>{_e(scenario.get('id'))}</code>"
        f'<span class="meta">{_e(group_of(scenario))} · {_e(scenario.get("family"))} · '
        f'{_e(len(runs))} run{"" if len(runs) == 1 else "s"}</span></h3>'
    )
    body: list[str] = []
    known = known_text(scenario.get("known"))
    if outcome in ("fail", "error") or not runs:
        text = failure_message(scenario) if outcome == "fail" else (scenario.get("reason") or "no reason given")
        word = {"skip": "skipped", "error": "error"}.get(outcome, outcome)
        body.append(f'<p class="verdict reason" style="color:{colour}"><b>{_e(word)}:</b> {_e(text)}</p>')
    else:
        passed = sum(1 for r in runs if r.get("verdict") == "pass")
        body.append(f'<p class="verdict"><b style="color:{colour}">{passed}/{len(runs)} runs pass:</b> '
                    f"{_e(run_sentence(runs[0]))}</p>")
    if known:
        body.append(f'<p class="note"><b>known failure:</b> <span class="mono">{_e(known)}</span></p>')
    if runs:
        body.append(_facts(scenario))
        body.append(timeline_svg(scenario))
        notes: dict[str, Any] = {}
        for n, run in enumerate(runs, 1):
            wire = run.get("wire")
            if isinstance(wire, Mapping) and wire.get("note"):
                seen = "wire visible" if wire.get("visible") else "wire blind"
                notes.setdefault(f"{seen}: {wire['note']}", []).append(n)
        for note, numbers in notes.items():
            who = "" if len(runs) == 1 else ("all runs: " if len(numbers) == len(runs) else
                                              "run" + ("s " if len(numbers) > 1 else " ") + ", ".join(map(str, numbers)) + ": ")
            body.append(f'<p class="note">{_e(who)}{_e(note)}</p>')
        body.append(f'<p class="note">t = 0 s is {_e(_anchor_text(runs[0]))}.</p>')
        rule = runs[0].get("rule")
        if rule:
            body.append(f'<p class="rule"><b>rule</b> {_e(rule)}</p>')
        failures = [(n, f) for n, r in enumerate(runs, 1) for f in r.get("failures") or []]
        if failures:
            body.append('<ul class="failures">' + "".join(
                f"<li>{_e(f'run {n}: ' if len(runs) > 1 else '')}{_e(f)}</li>" for n, f in failures) + "</ul>")
        explains = [(n, r.get("explain")) for n, r in enumerate(runs, 1) if r.get("explain")]
        if explains:
            opened = " open" if outcome in ("fail", "error", "xpass") else ""
            text = "\n\n".join((f"run {n}:\n" if len(runs) > 1 else "") + str(t) for n, t in explains)
            body.append(f"<details{opened}><summary>explain (the text for the CI log)</summary>"
                        f"<pre>{_e(text)}</pre></details>")
    return head + "".join(body) + "</section>"


def ordered(scenarios: Sequence[Scenario]) -> list[tuple[int, Scenario]]:
    """(document number, scenario), failures and errors first; the document order within an outcome."""
    rank = {o: i for i, o in enumerate(SECTION_ORDER)}
    numbered = list(enumerate(scenarios, 1))
    return sorted(numbered, key=lambda item: (rank.get(str(item[1].get("outcome")), 0), item[0]))


def to_html(doc: Doc) -> str:
    """The whole report: one self-contained HTML document (no script, no external asset)."""
    scenarios = list(doc.get("scenarios") or [])
    kernel = doc.get("kernel") or {}
    sections = "".join(_section(n, s) for n, s in ordered(scenarios))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>netkit gate: {_e(kernel.get('release', '?'))} {_e(doc.get('started', ''))}</title>"
        f"<style>{CSS}</style></head><body><main>"
        f"{_header(doc)}"
        f"<h2>Matrix</h2>{_matrix(doc)}"
        '<p class="note">Cell: the median time from the last segment received to the death; '
        "click a cell for its scenario.</p>"
        f"<h2>Scenarios, failures first</h2>{legend()}{sections}"
        "</main></body></html>\n"
    )
