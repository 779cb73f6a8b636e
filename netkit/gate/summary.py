"""The gate's summary for a person: a table grouped by state and fault, then every failure in full.

Rendered from the gate document alone, like every other report.  Each
failure's runs say how they were judged (``evidence: trace`` or ``evidence:
observer (why)``, :func:`netkit.report.markdown.evidence_lines`); an
*inconclusive* scenario (machine late, on the gate's retry too) is listed
apart from the failures, and a pass that needed the retry says why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..document.codec import document
from ..document.records import GateDocument, ScenarioEntry
from ..enums import GateOutcome
from ..report.markdown import evidence_lines, retry_text


def format_summary(doc: GateDocument | Mapping[str, Any]) -> str:
    doc = document(doc)
    kernel, totals = doc.kernel, doc.totals
    ran = [e for e in doc.scenarios if e.runs]
    longest = max((e.duration_s or 0.0 for e in ran), default=0.0)
    slow = " (slow machine: late-only misses without a ledger are XFAIL)" if doc.machine.slow else ""
    part = f" (part {doc.options.shard} of the selection)" if doc.options.shard else ""
    lines = [
        f"netkit gate: kernel {kernel.release} (HZ={kernel.hz}), {len(doc.scenarios)} scenarios{part}, "
        f"{len(ran)} run x{doc.options.repeat or 1}; wall {doc.wall_s or 0.0:.1f} s, "
        f"longest scenario {longest:.1f} s{slow}",
        "",
        _table(doc.scenarios),
        "",
        "totals: " + ", ".join(f"{name} {totals.get(name, 0)}" for name in GateOutcome),
    ]
    for entry in doc.scenarios:
        if entry.outcome in (GateOutcome.FAIL, GateOutcome.ERROR, GateOutcome.XPASS):
            lines += ["", f"{entry.outcome.upper()} {entry.id}: {entry.reason or ''}".rstrip()]
            for run in entry.runs:
                if not run.passed or entry.outcome == GateOutcome.XPASS:
                    lines.append((run.explain or "").rstrip())
                    lines.append(evidence_lines(run))
            if entry.retried is not None:
                lines.append(retry_text(entry))
    inconclusive = [e for e in doc.scenarios if e.outcome == GateOutcome.INCONCLUSIVE]
    if inconclusive:
        lines += ["", "inconclusive (the machine ran the timers late, on the gate's retry too; not the kernel's "
                      "failure, not a pass):"]
        lines += [f"  INCONCLUSIVE {e.id}: {e.reason} ({e.evidence_text})" for e in inconclusive]
    retried = [e for e in doc.scenarios if e.retried is not None and e.outcome == GateOutcome.PASS]
    if retried:
        lines += ["", "passed on the gate's retry:"] + [f"  PASS {e.id}: {retry_text(e)}" for e in retried]
    observed: dict[str, list[str]] = defaultdict(list)  # evidence: observer, by its reason
    for entry in ran:
        if entry.evidence_text != "evidence: trace":
            observed[entry.evidence_text].append(entry.id)
    if observed:
        lines += ["", f"judged without the timer ledger ({sum(map(len, observed.values()))} of the {len(ran)} that ran):"]
        lines += [f"  {len(ids)} x {text}" for text, ids in observed.items()]
    xfails = [e for e in doc.scenarios if e.outcome == GateOutcome.XFAIL]
    if xfails:
        lines += ["", "expected failures:"] + [f"  XFAIL {e.id}: {e.reason}" for e in xfails]
    skips = defaultdict(list)
    for entry in doc.scenarios:
        if entry.outcome == GateOutcome.SKIP:
            skips[entry.reason].append(entry.id)
    if skips:
        lines += ["", "skipped:"] + [f"  {len(ids)} x {reason}" for reason, ids in skips.items()]
    return "\n".join(lines)


def _table(entries: tuple[ScenarioEntry, ...]) -> str:
    groups: dict[str | None, list[ScenarioEntry]] = defaultdict(list)
    for entry in entries:
        groups[entry.group].append(entry)
    header = ["state/fault", *GateOutcome.values(), "measured (s) min..max"]
    rows = [header]
    for group, members in groups.items():
        measured = [e.measured_s for e in members if e.measured_s]
        span = f"{min(m.min for m in measured):.3f}..{max(m.max for m in measured):.3f}" if measured else "-"
        counts = [str(sum(1 for e in members if e.outcome == name) or ".") for name in GateOutcome]
        rows.append([str(group), *counts, span])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)
