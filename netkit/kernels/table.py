"""Gate documents of several kernels side by side: one row per scenario, one column per kernel.

Pure: reads documents (as ``netkit gate --json`` wrote them, with the
``guest`` entry :func:`netkit.kernels.guest.run_gate_on_kernel` adds) and
returns text.  Each cell is the outcome and the measured median; a row whose
kernels disagree -- another outcome, or medians further apart than the
scenario's window is wide -- is marked ``<<`` (text) or in bold (Markdown),
and the cells that differ from the first column are marked ``*``.
"""

from __future__ import annotations

from typing import Any

SHORT = {"pass": "pass", "fail": "FAIL", "xfail": "xfail", "xpass": "XPASS", "skip": "skip", "error": "ERROR"}


def column_title(doc: dict[str, Any]) -> str:
    k = doc.get("kernel", {})
    g = doc.get("guest") or {}
    accel = g.get("accel")
    where = "host" if accel in (None, "none") else accel
    return f"{k.get('release', '?')} HZ={k.get('hz', '?')} ({where})"


def _cell(entry: dict[str, Any] | None) -> tuple[str, str | None, float | None]:
    if entry is None:
        return "-", None, None
    median = (entry.get("measured_s") or {}).get("median")
    text = SHORT.get(entry["outcome"], entry["outcome"])
    if median is not None:
        text += f" {median:.3f}"
    return text, entry["outcome"], median


def _width(entry: dict[str, Any] | None) -> float | None:
    window = entry and entry.get("window_s")
    return (window[1] - window[0]) if window else None


def compare_rows(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per scenario id (in the first document's order, then new ids): cells and whether they differ."""
    ids: list[str] = []
    for doc in docs:
        ids += [e["id"] for e in doc["scenarios"] if e["id"] not in ids]
    by_id = [{e["id"]: e for e in doc["scenarios"]} for doc in docs]
    rows = []
    for sid in ids:
        entries = [d.get(sid) for d in by_id]
        cells = [_cell(e) for e in entries]
        ran = [(o, m) for _, o, m in cells if o not in (None, "skip")]
        outcomes = {o for o, _ in ran}
        medians = [m for _, m in ran if m is not None]
        width = max((w for e in entries if (w := _width(e)) is not None), default=None)
        spread = (max(medians) - min(medians)) if len(medians) > 1 else 0.0
        timing = width is not None and spread > width
        base = cells[0]
        marks = [c[1] != base[1] or (timing and width is not None and c[2] is not None and base[2] is not None
                                     and abs(c[2] - base[2]) > width) for c in cells]
        rows.append({"id": sid, "cells": [c[0] for c in cells], "marks": marks,
                     "differs": len(outcomes) > 1 or timing or len({c[1] for c in cells}) > 1,
                     "timing": timing, "spread_s": round(spread, 3)})
    return rows


def format_table(docs: list[dict[str, Any]], *, markdown: bool = False, only_differences: bool = False) -> str:
    titles = [column_title(d) for d in docs]
    rows = [r for r in compare_rows(docs) if r["differs"] or not only_differences]
    cells = [[c + ("*" if m and i else "") for i, (c, m) in enumerate(zip(r["cells"], r["marks"]))] for r in rows]
    if markdown:
        lines = ["| scenario | " + " | ".join(titles) + " |", "| --- |" + " --- |" * len(titles)]
        for r, row in zip(rows, cells):
            name = f"**{r['id']}**" if r["differs"] else r["id"]
            lines.append(f"| {name} | " + " | ".join(f"**{c}**" if r["differs"] and m else c
                                                      for c, m in zip(row, r["marks"])) + " |")
    else:
        head = ["scenario", *titles]
        table = [head] + [[r["id"], *row] for r, row in zip(rows, cells)]
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        lines = []
        for n, t in enumerate(table):
            line = "  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip()
            if n and rows[n - 1]["differs"]:
                line += "  <<"
            lines.append(line)
    differing = sum(r["differs"] for r in rows)
    lines.append("")
    lines.append(f"{len(rows)} scenarios, {differing} differ between kernels (another outcome, or medians further "
                 "apart than the scenario's window is wide); * marks a cell that differs from the first column")
    for doc, title in zip(docs, titles):
        g = doc.get("guest") or {}
        t = doc.get("totals", {})
        boot = f"boot {g['boot_s']:.1f} s, " if g.get("boot_s") else ""
        lines.append(f"  {title}: {boot}gate {doc.get('wall_s', 0):.1f} s; "
                     + ", ".join(f"{k} {v}" for k, v in t.items() if v))
    return "\n".join(lines)
