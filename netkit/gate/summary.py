"""The gate's summary for a person: a table grouped by state and fault, then every failure in full.

Rendered from the gate document alone, like every other report.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .outcome import OUTCOMES


def format_summary(doc: dict[str, Any]) -> str:
    kernel, totals = doc["kernel"], doc["totals"]
    ran = [e for e in doc["scenarios"] if e["runs"]]
    longest = max((e["duration_s"] for e in ran), default=0.0)
    slow = " (slow machine: late-only misses are XFAIL)" if doc["machine"].get("slow") else ""
    lines = [
        f"netkit gate: kernel {kernel['release']} (HZ={kernel['hz']}), {len(doc['scenarios'])} scenarios, "
        f"{len(ran)} run x{doc['options'].get('repeat', 1)}; wall {doc['wall_s']:.1f} s, "
        f"longest scenario {longest:.1f} s{slow}",
        "",
        _table(doc["scenarios"]),
        "",
        "totals: " + ", ".join(f"{name} {totals.get(name, 0)}" for name in OUTCOMES),
    ]
    for entry in doc["scenarios"]:
        if entry["outcome"] in ("fail", "error", "xpass"):
            lines += ["", f"{entry['outcome'].upper()} {entry['id']}: {entry['reason'] or ''}".rstrip()]
            for run in entry["runs"]:
                if run.get("verdict") != "pass" or entry["outcome"] == "xpass":
                    lines.append(run.get("explain", "").rstrip())
    xfails = [e for e in doc["scenarios"] if e["outcome"] == "xfail"]
    if xfails:
        lines += ["", "expected failures:"] + [f"  XFAIL {e['id']}: {e['reason']}" for e in xfails]
    skips = defaultdict(list)
    for entry in doc["scenarios"]:
        if entry["outcome"] == "skip":
            skips[entry["reason"]].append(entry["id"])
    if skips:
        lines += ["", "skipped:"] + [f"  {len(ids)} x {reason}" for reason, ids in skips.items()]
    return "\n".join(lines)


def _table(entries: list[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        groups[entry["group"]].append(entry)
    header = ["state/fault", *OUTCOMES, "measured (s) min..max"]
    rows = [header]
    for group, members in groups.items():
        measured = [e["measured_s"] for e in members if e["measured_s"]]
        span = f"{min(m['min'] for m in measured):.3f}..{max(m['max'] for m in measured):.3f}" if measured else "-"
        counts = [str(sum(1 for e in members if e["outcome"] == name) or ".") for name in OUTCOMES]
        rows.append([group, *counts, span])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)
