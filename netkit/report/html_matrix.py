"""The HTML report's matrix: one cell per scenario, coloured by outcome, showing the median death, linking to it.

Rows are ``state/fault``, columns family x keepalive settings; with more
settings than fit across the page, rows are (state/fault, settings) and the
columns the families.
"""

from __future__ import annotations

import re

from ..document.records import GateDocument, ScenarioEntry
from ..enums import GateOutcome
from .htmlkit import _e, _style
from .markdown import distinct, failure_message

MAX_MATRIX_COLUMNS = 10  # about 100 px each: what fits the page beside the row labels


def anchor(number: int, scenario: ScenarioEntry) -> str:
    """A unique, URL-safe fragment id for a scenario's section (ids contain '/')."""
    return f"s{number}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", scenario.id).strip("-")


def settings_of(scenario: ScenarioEntry) -> str:
    """The id without ``<family>-<state>-<fault>-``: the keepalive settings (``1/1/3-ut1500``)."""
    prefix = f"{scenario.family}-{scenario.state}-{scenario.fault}-"
    return scenario.id[len(prefix):] if scenario.id.startswith(prefix) else scenario.id


def group_of(scenario: ScenarioEntry) -> str:
    return scenario.group or f"{scenario.state}/{scenario.fault}"


def _cell_link(number: int, scenario: ScenarioEntry) -> str:
    outcome = scenario.outcome
    colour, background, label = _style(outcome)
    if outcome == GateOutcome.SKIP:
        main, sub = "SKIP", ""
    elif outcome == GateOutcome.ERROR:
        main, sub = "ERR", ""
    elif outcome == GateOutcome.INCONCLUSIVE:
        main, sub = "LATE", "inconclusive"  # the machine's lateness, not a time of the kernel's to show
    elif scenario.measured_s is not None:
        main, sub = f"{scenario.measured_s.median:.3f} s", "" if outcome == GateOutcome.PASS else label.lower()
    else:
        main, sub = label, "no death"
    if outcome in (GateOutcome.FAIL, GateOutcome.ERROR):
        tip = failure_message(scenario)
    else:
        tip = scenario.reason or label
    return (
        f'<a href="#{anchor(number, scenario)}" style="background:{background};color:{colour}" '
        f'title="{_e(scenario.id)}: {_e(tip)}">'
        f'<div class="cell-main">{_e(main)}</div>' + (f'<div class="cell-sub">{_e(sub)}</div>' if sub else "") + "</a>"
    )


def matrix(doc: GateDocument) -> str:
    """Rows state/fault, columns family x settings; with many settings, rows (state/fault, settings) instead.

    The wide table also comes as a tall one that only a narrow screen shows
    (``table.matrix.narrow``, the page's CSS): eight columns of times do not
    fit a phone, and a matrix that runs off the side hides its failures.
    """
    numbered = list(enumerate(doc.scenarios, 1))
    if not numbered:
        return "<p>No scenarios.</p>"
    families = sorted(distinct(str(s.family) for _, s in numbered))
    settings = distinct(settings_of(s) for _, s in numbered)
    if len(settings) * len(families) <= MAX_MATRIX_COLUMNS:
        return _table(numbered, families, settings, wide=True) + _table(numbered, families, settings, wide=False,
                                                                        extra=" narrow")
    return _table(numbered, families, settings, wide=False)


def _table(numbered: list[tuple[int, ScenarioEntry]], families: list[str], settings: list[str], *, wide: bool,
           extra: str = "") -> str:
    groups = distinct(group_of(s) for _, s in numbered)
    rows: list[tuple[str, str | None]]
    columns: list[tuple[str | None, str]]
    if wide:
        rows = [(g, None) for g in groups]
        columns = [(st, f) for st in settings for f in families]
    else:
        rows = [(g, st) for g in groups for st in settings
                if any(group_of(s) == g and settings_of(s) == st for _, s in numbered)]
        columns = [(None, f) for f in families]
    cells: dict[tuple[str, str | None, str | None, str], list[tuple[int, ScenarioEntry]]] = {}
    for number, s in numbered:
        key = (group_of(s), settings_of(s) if not wide else None, settings_of(s) if wide else None, str(s.family))
        cells.setdefault(key, []).append((number, s))
    out = [f'<table class="matrix {"wide" if wide else "tall"}{extra}"><thead>']
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
