"""The gate document as the Markdown table the README shows ("Measured on this kernel").

One row per scenario, in the document's order::

    | cell | expected (s) | window (s) | measured min/median/max (s) | error | count | verdict |
    | ipv4-idle-link-down-1/1/3 | 4.000 | [3.996, 4.136] | 4.096 / 4.096 / 4.096 | ETIMEDOUT | tcpi_probes: [3] (exp 3) | 3/3 |

A scenario that never ran (skip, or an error before its first run) is one
merged row, ``| id | skipped: reason |||||``, as in the README.

This module also holds the plain-text vocabulary the other renderers share
(a window is ``[low, high]``, a count is read from the field its
``count_source`` names, one sentence says what went wrong), so that JUnit,
TAP, HTML and Markdown word the same fact the same way.  Everything here is
pure: a dict in, a string out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

Doc = Mapping[str, Any]
Scenario = Mapping[str, Any]
Run = Mapping[str, Any]

OUTCOMES = ("pass", "fail", "xfail", "xpass", "skip", "error")
HEADER = "| cell | expected (s) | window (s) | measured min/median/max (s) | error | count | verdict |"
RULE_LINE = "|---|---|---|---|---|---|---|"


def as_number(value: Any) -> Optional[float]:
    """A JSON number as float; None for null, a string, a bool or whatever else a newer gate might put there."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def format_s(value: Any) -> str:
    """Seconds with millisecond precision (the jiffy at HZ=1000), or an em dash when unknown."""
    number = as_number(value)
    return "—" if number is None else f"{number:.3f}"


def format_window(window: Optional[Sequence[float]]) -> str:
    """``[low, high]`` with three decimals; an em dash when the scenario has no window."""
    if not window or len(window) != 2:
        return "—"
    return f"[{format_s(window[0])}, {format_s(window[1])}]"


def format_windows(window: Optional[Sequence[float]], alternative: Optional[Sequence[float]] = None) -> str:
    """The nominal window, plus ``or [low, high]`` when timer rounding allows a second outcome."""
    text, other = format_window(window), format_window(alternative)
    return f"{text} or {other}" if other != "—" else text


def first_words(rule: Optional[str]) -> str:
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


def run_count(run: Run) -> Optional[int]:
    """The count a run reached, read from the field its ``count_source`` names.

    ``tcpi_probes`` -> ``probes``; ``tcpi_retransmits`` -> ``retransmits``;
    ``TcpExt.<Name>`` -> ``counters[<Name>]``.  None when the source is
    unknown or the field is missing (an older or newer document).
    """
    source = run.get("count_source") or ""
    if source == "tcpi_probes":
        value = run.get("probes")
    elif source == "tcpi_retransmits":
        value = run.get("retransmits")
    elif source.startswith("TcpExt."):
        value = (run.get("counters") or {}).get(source[len("TcpExt."):])
    else:
        value = None
    return value if isinstance(value, int) else None


def expected_count(run: Run) -> str:
    """``3``, or ``3 or 2`` when the alternative window comes with its own count."""
    text = "—" if run.get("expected_count") is None else str(run.get("expected_count"))
    alternative = run.get("alternative_count")
    return f"{text} or {alternative}" if alternative is not None else text


def failed_runs(scenario: Scenario) -> list[tuple[int, Run]]:
    """The runs (1-based number, run) whose verdict is not pass: the evidence behind a failure."""
    return [(n, run) for n, run in enumerate(scenario.get("runs") or [], 1) if run.get("verdict") != "pass"]


def run_sentence(run: Run) -> str:
    """One run in one sentence: what was expected (and from which rule), what was measured, the count.

    ``expected death at 4.000 s, window [3.996, 4.136] s (tcp_keepalive_timer ...);
    measured 3.500 s; error ETIMEDOUT (expected ETIMEDOUT); tcpi_probes 2 (expected 3)``
    """
    measured = run.get("measured_s")
    count = run_count(run)
    return (
        f"expected death at {format_s(run.get('expected_s'))} s, "
        f"window {format_windows(run.get('window_s'), run.get('alternative_window_s'))} s "
        f"({first_words(run.get('rule'))}); "
        f"measured {'no death' if measured is None else format_s(measured) + ' s'}; "
        f"error {run.get('error')} (expected {run.get('expected_error')}); "
        f"{run.get('count_source') or 'count'} {'unknown' if count is None else count} (expected {expected_count(run)})"
    )


def failure_message(scenario: Scenario) -> str:
    """What went wrong with a scenario, in one line (JUnit's ``message``, the HTML verdict line).

    A failed scenario with several runs names how many failed and describes
    the first one; a scenario without runs falls back to its ``reason``.
    """
    runs = scenario.get("runs") or []
    bad = failed_runs(scenario)
    if not bad:
        return scenario.get("reason") or f"{scenario.get('outcome', 'fail')} without a failing run"
    n, run = bad[0]
    prefix = "" if len(runs) == 1 else f"{len(bad)}/{len(runs)} runs failed; run {n}: "
    return prefix + run_sentence(run)


def failure_details(scenario: Scenario) -> str:
    """The long form for a log: each failing run's explain text (or, lacking one, its failure list).

    With several runs each part starts ``run 2/3:``; a scenario without a
    failing run gives its ``reason`` (an error before the first run).
    """
    runs = scenario.get("runs") or []
    parts = []
    for n, run in failed_runs(scenario):
        text = run.get("explain") or "\n".join(str(f) for f in run.get("failures") or [])
        parts.append((f"run {n}/{len(runs)}:\n" if len(runs) > 1 else "") + text)
    return "\n\n".join(parts) or str(scenario.get("reason") or "")


def known_text(known: Optional[Mapping[str, Any]]) -> str:
    """A known failure as text: its reason, then its link in parentheses (never as a live link)."""
    if not known:
        return ""
    reason, link = known.get("reason") or "known failure", known.get("link")
    return f"{reason} ({link})" if link else str(reason)


def _cell(text: Any) -> str:
    """Table-safe text: a pipe would split the cell and a newline would end the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def distinct(values: Iterable[Any]) -> list[Any]:
    """Each value once, in first-seen order (values may be unhashable, e.g. lists)."""
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def table_row(scenario: Scenario) -> str:
    """One scenario as one README table row (the merged form when it never ran)."""
    sid = _cell(scenario.get("id") or "?")
    runs = list(scenario.get("runs") or [])
    outcome = scenario.get("outcome")
    if not runs:
        word = "skipped" if outcome == "skip" else outcome or "no runs"
        return f"| {sid} | {_cell(f'{word}: ' + (scenario.get('reason') or 'no reason given'))} |||||"
    first = runs[0]
    measured = scenario.get("measured_s")
    if isinstance(measured, Mapping) and measured:
        measured_text = " / ".join(format_s(measured.get(k)) for k in ("min", "median", "max"))
    else:
        measured_text = "no death"
    alive = (first.get("middlebox") or {}).get("alive_until_s")  # a routed cell that must survive (no window)
    if alive is not None:
        lived = [float((run.get("middlebox") or {}).get("lived_s") or 0.0) for run in runs]
        measured_text = f"alive, router entry kept {format_s(min(lived))}..{format_s(max(lived))} s"
    errors = ", ".join(str(e) for e in distinct(run.get("error") for run in runs) if e is not None) or "—"
    counts = sorted(distinct(c for c in (run_count(run) for run in runs) if c is not None))
    count_text = f"{first.get('count_source') or 'count'}: [{', '.join(map(str, counts))}] (exp {expected_count(first)})"
    passed = sum(1 for run in runs if run.get("verdict") == "pass")
    verdict = f"{passed}/{len(runs)} pass"
    if outcome in ("xfail", "xpass"):
        verdict += f" ({outcome}: {known_text(scenario.get('known')) or scenario.get('reason') or 'known'})"
    elif outcome not in ("pass", "fail"):
        verdict += f" ({outcome}: {scenario.get('reason') or 'no reason given'})"
    expected = scenario.get("expected_s", first.get("expected_s"))
    window = scenario.get("window_s") or first.get("window_s")
    cells = [
        sid,
        format_s(expected) if alive is None else f"alive {format_s(alive)}",
        format_windows(window, first.get("alternative_window_s")) if alive is None else "— (survives)",
        measured_text,
        errors,
        count_text,
        verdict,
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def summary_line(doc: Doc) -> str:
    """The sentence above the table: which kernel, how many repeats, the totals."""
    kernel, machine = doc.get("kernel") or {}, doc.get("machine") or {}
    options, totals = doc.get("options") or {}, doc.get("totals") or {}
    where = [f"HZ={kernel.get('hz', '?')}", f"{machine.get('cpus', '?')} cores"]
    if machine.get("virtualization"):
        where.append(str(machine["virtualization"]))
    if machine.get("slow"):
        where.append("slow-machine windows")
    counted = ", ".join(f"{totals[k]} {k}" for k in OUTCOMES if totals.get(k))
    return (
        f"Measured on this kernel ({kernel.get('release', '?')}, {', '.join(where)}), "
        f"each scenario run {options.get('repeat', '?')} time(s), {doc.get('started', '?')}: {counted or 'nothing ran'}."
    )


def to_markdown(doc: Doc, heading: bool = True) -> str:
    """The README's measured table for a gate document; with ``heading``, the summary sentence first."""
    lines = [summary_line(doc), ""] if heading else []
    lines += [HEADER, RULE_LINE]
    lines += [table_row(s) for s in doc.get("scenarios") or []]
    return "\n".join(lines) + "\n"
