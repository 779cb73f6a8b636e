"""Gate documents of several kernels side by side: one row per scenario, one column per kernel.

Pure: reads documents (as ``netkit gate --json`` wrote them, with the
``guest`` entry :func:`netkit.gate.kernels.run_gate_on_kernel` adds) and
returns text, Markdown or one self-contained HTML page (``netkit gate diff``
with three or more documents, ``--table``, ``--markdown`` or ``--html``;
``scripts/kernel-matrix``).  Each cell is the outcome and the measured
median; a row whose kernels disagree -- another outcome, or medians further
apart than the scenario's window is wide -- is marked ``<<`` (text), in bold
(Markdown) or outlined (HTML), and the cells that differ from the first
column are marked ``*``.  A cell that a known difference explains (``netkit
gate --known``) carries its reason: in the HTML page as the cell's tooltip
and in a list under the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..document.codec import document
from ..document.records import GateDocument, ScenarioEntry
from ..enums import GateOutcome
from .htmlkit import _e, _style

SHORT = {"pass": "pass", "fail": "FAIL", "xfail": "xfail", "xpass": "XPASS", "skip": "skip", "error": "ERROR",
         "inconclusive": "inconclusive"}  # machine late twice: neither pass nor the kernel's FAIL
Docs = Sequence[GateDocument | Mapping[str, Any]]  # typed documents, or their JSON


@dataclass(frozen=True)
class Row:
    """One scenario across the documents: each column's cell, which cells differ from the first, and why."""

    id: str
    cells: list[str]
    marks: list[bool]  # differs from the first column
    outcomes: list[str | None]
    known: list[str | None]  # the known difference that explains a cell
    differs: bool
    timing: bool  # medians further apart than the window is wide
    spread_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def column_title(doc: GateDocument) -> str:
    accel = doc.guest.accel if doc.guest else None
    where = "host" if accel in (None, "none") else accel
    return f"{doc.kernel.release or '?'} HZ={'?' if doc.kernel.hz is None else doc.kernel.hz} ({where})"


def _known_reason(entry: ScenarioEntry | None) -> str | None:
    return (entry.known.reason or "") if entry and entry.known else None


def _cell(entry: ScenarioEntry | None) -> tuple[str, str | None, float | None]:
    if entry is None:
        return "-", None, None
    median = entry.measured_s.median if entry.measured_s else None
    text = SHORT.get(entry.outcome, entry.outcome)
    if median is not None:
        text += f" {median:.3f}"
    return text, entry.outcome, median


def _width(entry: ScenarioEntry | None) -> float | None:
    window = entry.window_s if entry else None
    return (window[1] - window[0]) if window else None


def compare_rows(docs: Docs) -> list[Row]:
    """One row per scenario id (in the first document's order, then new ids): cells and whether they differ."""
    typed = [document(d) for d in docs]
    ids: list[str] = []
    for doc in typed:
        ids += [e.id for e in doc.scenarios if e.id not in ids]
    by_id = [{e.id: e for e in doc.scenarios} for doc in typed]
    rows = []
    for sid in ids:
        entries = [d.get(sid) for d in by_id]
        cells = [_cell(e) for e in entries]
        ran = [(o, m) for _, o, m in cells if o not in (None, GateOutcome.SKIP)]
        outcomes = {o for o, _ in ran}
        medians = [m for _, m in ran if m is not None]
        width = max((w for e in entries if (w := _width(e)) is not None), default=None)
        spread = (max(medians) - min(medians)) if len(medians) > 1 else 0.0
        timing = width is not None and spread > width
        base = cells[0]
        marks = [c[1] != base[1] or (timing and width is not None and c[2] is not None and base[2] is not None
                                     and abs(c[2] - base[2]) > width) for c in cells]
        rows.append(Row(sid, [c[0] for c in cells], marks, [c[1] for c in cells], [_known_reason(e) for e in entries],
                        len(outcomes) > 1 or timing or len({c[1] for c in cells}) > 1, timing, round(spread, 3)))
    return rows


def _totals_lines(docs: list[GateDocument], titles: list[str]) -> list[str]:
    lines = []
    for doc, title in zip(docs, titles, strict=True):
        boot = f"boot {doc.guest.boot_s:.1f} s, " if doc.guest and doc.guest.boot_s else ""
        lines.append(f"{title}: {boot}gate {doc.wall_s or 0:.1f} s; "
                     + ", ".join(f"{k} {v}" for k, v in doc.totals.items() if v))
    return lines


def _legend(rows: list[Row]) -> str:
    differing = sum(r.differs for r in rows)
    return (f"{len(rows)} scenarios, {differing} differ between kernels (another outcome, or medians further "
            "apart than the scenario's window is wide); * marks a cell that differs from the first column")


def format_table(docs: Docs, *, markdown: bool = False, only_differences: bool = False) -> str:
    typed = [document(d) for d in docs]
    titles = [column_title(d) for d in typed]
    rows = [r for r in compare_rows(typed) if r.differs or not only_differences]
    cells = [[c + ("*" if m and i else "") for i, (c, m) in enumerate(zip(r.cells, r.marks, strict=True))] for r in rows]
    if markdown:
        lines = ["| scenario | " + " | ".join(titles) + " |", "| --- |" + " --- |" * len(titles)]
        for r, row in zip(rows, cells, strict=True):
            name = f"**{r.id}**" if r.differs else r.id
            lines.append(f"| {name} | " + " | ".join(f"**{c}**" if r.differs and m else c
                                                      for c, m in zip(row, r.marks, strict=True)) + " |")
    else:
        head = ["scenario", *titles]
        table = [head] + [[r.id, *row] for r, row in zip(rows, cells, strict=True)]
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        lines = []
        for n, t in enumerate(table):
            line = "  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip()
            if n and rows[n - 1].differs:
                line += "  <<"
            lines.append(line)
    lines += ["", _legend(rows)] + ([""] if markdown else [])
    lines += [("- " if markdown else "  ") + line for line in _totals_lines(typed, titles)]
    return "\n".join(lines)


HTML_CSS = """
body { font: 14px/1.4 system-ui, "DejaVu Sans", sans-serif; margin: 24px; color: #1d1f23; background: #f4f5f7; }
table { border-collapse: separate; border-spacing: 3px; background: #fff; border: 1px solid #d5d8dd; border-radius: 8px; }
th { font-weight: 600; padding: 4px 8px; text-align: left; }
td { padding: 3px 8px; border-radius: 4px; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; }
tr.differs td.id { font-weight: 700; }
td.mark { outline: 3px solid #1d1f23; outline-offset: -3px; font-weight: 700; }
ol.known { max-width: 1100px; } .note { color: #555b63; }
"""


def html_table(docs: Docs, *, title: str = "netkit gate: kernels side by side",
               only_differences: bool = False) -> str:
    """One self-contained HTML page (inline CSS, no script, no URL): the table, coloured by outcome.

    A row whose kernels disagree has its id in bold and the cells that differ
    from the first column outlined; a cell explained by a known difference
    shows its reason as a tooltip and points to a numbered list below.
    """
    typed = [document(d) for d in docs]
    titles = [column_title(d) for d in typed]
    rows = [r for r in compare_rows(typed) if r.differs or not only_differences]
    reasons: list[str] = []
    body = []
    for r in rows:
        cells = []
        for i, (text, outcome, mark, known) in enumerate(zip(r.cells, r.outcomes, r.marks, r.known, strict=True)):
            _, background, _ = _style(outcome)
            note = ""
            if known:
                if known not in reasons:
                    reasons.append(known)
                note = f" <sup>{reasons.index(known) + 1}</sup>"
            classes = ' class="mark"' if mark and i else ""
            tip = f' title="{_e(known)}"' if known else ""
            cells.append(f'<td{classes}{tip} style="background:{background}">{_e(text)}{note}</td>')
        css = ' class="differs"' if r.differs else ""
        body.append(f'<tr{css}><td class="id">{_e(r.id)}</td>{"".join(cells)}</tr>')
    head = "".join(f"<th>{_e(t)}</th>" for t in titles)
    known_list = "".join(f"<li>{_e(reason)}</li>" for reason in reasons)
    totals = "".join(f"<li>{_e(line)}</li>" for line in _totals_lines(typed, titles))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{HTML_CSS}</style></head><body><h1>{_e(title)}</h1>"
            f'<p class="note">{_e(_legend(rows))}</p>'
            f"<table><thead><tr><th>scenario</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + (f'<h2>Known differences</h2><ol class="known">{known_list}</ol>' if reasons else "")
            + f"<h2>Runs</h2><ul>{totals}</ul></body></html>\n")
