"""The gate document as the Markdown table docs/measured.md shows ("Measured on this kernel").

One row per scenario, in the document's order::

    | cell | expected (s) | window (s) | measured min/median/max (s) | error | count | verdict |
    | ipv4-idle-link-down-1/1/3 | 4.000 | [3.996, 4.136] | 4.096 / 4.096 / 4.096 | ETIMEDOUT | tcpi_probes: [3] (exp 3) | 3/3 |

A scenario that never ran (skip, or an error before its first run) is one
merged row, ``| id | skipped: reason |||||``, as in docs/measured.md.

This module also holds the plain-text vocabulary the other renderers share
(a window is ``[low, high]``, a count is the figure its ``count_source``
names, one sentence says what went wrong), so that JUnit, TAP, HTML and
Markdown word the same fact the same way.  Every fact is read as the run
stored it (:mod:`netkit.document.records`), never judged again here.  Everything
here is pure: a document in, a string out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..document.codec import document, entry
from ..document.records import GateDocument, GateRun, KnownRecord, ScenarioEntry
from ..enums import GateOutcome

Doc = GateDocument | Mapping[str, Any]  # a typed document, or its JSON (read through netkit.document.codec)
Scenario = ScenarioEntry | Mapping[str, Any]

HEADER = "| cell | expected (s) | window (s) | measured min/median/max (s) | error | count | verdict |"
RULE_LINE = "|---|---|---|---|---|---|---|"


def format_s(value: float | None) -> str:
    """Seconds with millisecond precision (the jiffy at HZ=1000), or an em dash when unknown."""
    return "—" if value is None else f"{value:.3f}"


def format_window(window: Sequence[float] | None) -> str:
    """``[low, high]`` with three decimals; an em dash when the scenario has no window."""
    if not window or len(window) != 2:
        return "—"
    return f"[{format_s(window[0])}, {format_s(window[1])}]"


def format_windows(window: Sequence[float] | None, alternative: Sequence[float] | None = None) -> str:
    """The nominal window, plus ``or [low, high]`` when timer rounding allows a second outcome."""
    text, other = format_window(window), format_window(alternative)
    return f"{text} or {other}" if other != "—" else text


def first_words(rule: str | None) -> str:
    """The rule's name, as a failure message cites it: ``tcp_keepalive_timer ...``.

    The full rule is a paragraph; a one-line message names the kernel function
    the rule comes from (the text before the first colon) and leaves the
    paragraph to the explain text.
    """
    if not rule:
        return "no rule"
    head, colon, _ = rule.partition(":")
    if colon:
        return f"{head.strip()} ..."
    return rule if len(rule) <= 60 else rule[:57].rstrip() + " ..."


def expected_count(run: GateRun) -> str:
    """``3``, or ``3 or 2`` when the alternative window comes with its own count."""
    text = "—" if run.expected_count is None else str(run.expected_count)
    return f"{text} or {run.alternative_count}" if run.alternative_count is not None else text


def failed_runs(scenario: ScenarioEntry) -> list[tuple[int, GateRun]]:
    """The runs (1-based number, run) whose verdict is not pass: the evidence behind a failure."""
    return [(n, run) for n, run in enumerate(scenario.runs, 1) if not run.passed]


def run_sentence(run: GateRun) -> str:
    """One run in one sentence: what was expected (and from which rule), what was judged, the count.

    ``expected death at 4.000 s, window [3.996, 4.136] s (tcp_keepalive_timer ...);
    measured 3.500 s; error ETIMEDOUT (expected ETIMEDOUT); tcpi_probes 2 (expected 3)``

    "measured" is the judged death time (:mod:`netkit.evidence.death`), the
    figure the gate document's ``measured_s`` aggregates.
    """
    measured = run.death_s
    return (
        f"expected death at {format_s(run.expected_s)} s, "
        f"window {format_windows(run.window_s, run.alternative_window_s)} s "
        f"({first_words(run.rule)}); "
        f"measured {'no death' if measured is None else format_s(measured) + ' s'}; "
        f"error {run.error} (expected {run.expected_error}); "
        f"{run.count_source or 'count'} {'unknown' if run.count is None else run.count} "
        f"(expected {expected_count(run)})"
    )


def failure_message(scenario: Scenario) -> str:
    """What went wrong with a scenario, in one line (JUnit's ``message``, the HTML verdict line).

    A failed scenario with several runs names how many failed and describes
    the first one; a scenario without runs falls back to its ``reason``.
    """
    scenario = entry(scenario)
    bad = failed_runs(scenario)
    if not bad:
        return scenario.reason or f"{scenario.outcome} without a failing run"
    n, run = bad[0]
    prefix = "" if len(scenario.runs) == 1 else f"{len(bad)}/{len(scenario.runs)} runs failed; run {n}: "
    return prefix + run_sentence(run)


def failure_details(scenario: ScenarioEntry) -> str:
    """The long form for a log: each failing run's explain text (or, lacking one, its failure list).

    With several runs each part starts ``run 2/3:``; a scenario without a
    failing run gives its ``reason`` (an error before the first run).
    """
    runs = scenario.runs
    parts = []
    for n, run in failed_runs(scenario):
        text = (run.explain or "\n".join(run.failures)).rstrip() + "\n" + evidence_lines(run)
        parts.append((f"run {n}/{len(runs)}:\n" if len(runs) > 1 else "") + text)
    return "\n\n".join(parts) or str(scenario.reason or "")


def evidence_lines(run: GateRun) -> str:
    """How a run was judged, and whether the machine or the kernel missed: the lines every report adds to a run.

    ``evidence: trace`` (the timer ledger judged it) or ``evidence: observer
    (why)``; ``machine late: ...`` where the run failed as measured but not
    as the kernel ran it; each rule failure the ledger found.
    """
    lines = [run.evidence_text]
    if run.machine_late:
        lines.append(f"machine late (not the kernel's failure): {run.machine_late}")
    lines += [f"rule (ledger): {f}" for f in run.rule_failures]
    return "\n".join(lines)


def inconclusive_text(reason: str | None) -> str:
    """An inconclusive outcome's reason as a skip's: ``inconclusive: machine late ...`` (the pytest plugin's words)."""
    return f"inconclusive: {reason or 'machine late'}"


def retry_text(scenario: ScenarioEntry) -> str:
    """A retried scenario: why the gate ran it again (its first run's machine-late sentence); "" otherwise."""
    retried = scenario.retried
    if retried is None:
        return ""
    return f"retried once by the gate: the first run was machine late ({retried.reason or 'no sentence kept'})"


def known_text(known: KnownRecord | None) -> str:
    """A known failure as text: its reason, then its link in parentheses (never as a live link)."""
    if not known:
        return ""
    reason, link = known.reason or "known failure", known.link
    return f"{reason} ({link})" if link else str(reason)


def _cell(text: Any) -> str:
    """Table-safe text: a pipe would split the cell and a newline would end the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def numbered_apart(names: Iterable[str]) -> list[str]:
    """The names in order, a repeated one made distinct with ``-2``, ``-3``... (ids mapped to a narrower alphabet)."""
    out: list[str] = []
    taken: set[str] = set()
    for base in names:
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        out.append(name)
    return out


def distinct(values: Iterable[Any]) -> list[Any]:
    """Each value once, in first-seen order (values may be unhashable, e.g. lists)."""
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def table_row(scenario: Scenario) -> str:
    """One scenario as one row of docs/measured.md's table (the merged form when it never ran)."""
    scenario = entry(scenario)
    sid = _cell(scenario.id)
    runs = scenario.runs
    outcome = scenario.outcome
    if not runs:
        word = "skipped" if outcome == GateOutcome.SKIP else outcome or "no runs"
        return f"| {sid} | {_cell(f'{word}: ' + (scenario.reason or 'no reason given'))} |||||"
    first = runs[0]
    measured = scenario.measured_s
    if measured:
        measured_text = " / ".join(format_s(m) for m in (measured.min, measured.median, measured.max))
    else:
        measured_text = "no death"
    alive = first.middlebox.alive_until_s if first.middlebox else None  # a routed cell that must survive (no window)
    if alive is not None:
        lived = [(run.middlebox.lived_s if run.middlebox else None) or 0.0 for run in runs]
        measured_text = f"alive, router entry kept {format_s(min(lived))}..{format_s(max(lived))} s"
    errors = ", ".join(str(e) for e in distinct(run.error for run in runs) if e is not None) or "—"
    counts = sorted(distinct(run.count for run in runs if run.count is not None))
    count_text = f"{first.count_source or 'count'}: [{', '.join(map(str, counts))}] (exp {expected_count(first)})"
    passed = sum(1 for run in runs if run.passed)
    verdict = f"{passed}/{len(runs)} pass"
    if outcome in (GateOutcome.XFAIL, GateOutcome.XPASS):
        verdict += f" ({outcome}: {known_text(scenario.known) or scenario.reason or 'known'})"
    elif outcome not in (GateOutcome.PASS, GateOutcome.FAIL):
        verdict += f" ({outcome}: {scenario.reason or 'no reason given'})"
    elif scenario.retried is not None:
        verdict += f" ({retry_text(scenario)})"
    verdict += f"; {scenario.evidence_text}"
    expected = scenario.expected_s
    window = scenario.window_s or first.window_s
    cells = [
        sid,
        format_s(expected) if alive is None else f"alive {format_s(alive)}",
        format_windows(window, first.alternative_window_s) if alive is None else "— (survives)",
        measured_text,
        errors,
        count_text,
        verdict,
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def summary_line(doc: GateDocument) -> str:
    """The sentence above the table: which kernel, how many repeats, the totals."""
    kernel, machine, totals = doc.kernel, doc.machine, doc.totals
    where = [f"HZ={'?' if kernel.hz is None else kernel.hz}", f"{'?' if machine.cpus is None else machine.cpus} cores"]
    if machine.virtualization:
        where.append(machine.virtualization)
    if machine.slow:
        where.append("slow-machine windows")
    counted = ", ".join(f"{totals[k]} {k}" for k in GateOutcome if totals.get(k))
    return (
        f"Measured on this kernel ({kernel.release or '?'}, {', '.join(where)}), "
        f"each scenario run {doc.options.repeat or '?'} time(s), {doc.started or '?'}: {counted or 'nothing ran'}."
    )


def to_markdown(doc: Doc, heading: bool = True) -> str:
    """docs/measured.md's measured table for a gate document; with ``heading``, the summary sentence first."""
    doc = document(doc)
    lines = [summary_line(doc), ""] if heading else []
    lines += [HEADER, RULE_LINE]
    lines += [table_row(s) for s in doc.scenarios]
    return "\n".join(lines) + "\n"
