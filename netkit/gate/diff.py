"""What changed between two gate runs: ``netkit gate diff OLD.json NEW.json`` and ``netkit gate --baseline``.

Per scenario id: the outcome, the error, the count the rule is about
(probes, retransmissions, window probes) and the measured time.  A time that
moved by less than the scenario's window width is the model's own rounding
(timer wheel, jiffies), not a change; a bigger shift is reported even if the
scenario still passes.  Scenarios that appear or disappear are listed.  A
different HZ is named as the likely cause of timing shifts: the timer wheel's
granularity is counted in jiffies.

A *regression* -- what makes the exit status 1 -- is a scenario that passed
(or xpassed) and now fails or errors, or whose error or count changed.  A
count that moved between two outcomes the prediction allows (the old count
one of the old run's, the new one of the new run's), in a scenario that still
passes, is a change but no regression: where timer lateness
decides which run is the fatal one (TCP_USER_TIMEOUT on the persist or
keepalive timer), the rule itself has two outcomes (``DeathPrediction``'s
alternative window and count; docs/rules.md).

Where both runs carry the timer ledger, a changed count also says which
arming differed (its requested delay, in jiffies) and whether the rule
allowed both (neither run has a rule failure): the ledger shows *why* the
count moved, e.g. one more keepalive re-arm because a run ran a jiffy late.

An *inconclusive* scenario (the machine ran the timers late, measured by
the timer ledger, on the gate's retry too) is never a regression: nothing
about the kernel was learnt.  A change to or from it (pass -> inconclusive,
fail -> inconclusive, inconclusive -> fail...) is listed as what it is, with
the lateness; a later run that fails is then compared with the last
conclusive one by whoever reads the list, not guessed here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..document.records import GateDocument, ScenarioEntry
from ..enums import GateOutcome

PASSING = (GateOutcome.PASS, GateOutcome.XPASS)


@dataclass(frozen=True)
class Change:
    scenario: str
    what: str  # "outcome", "error", "count", "timing", "added", "removed"
    old: Any
    new: Any
    regression: bool
    note: str = ""


@dataclass
class GateDiff:
    old_kernel: str
    new_kernel: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    def to_dict(self) -> dict[str, Any]:
        return {"old_kernel": self.old_kernel, "new_kernel": self.new_kernel, "notes": self.notes,
                "regressions": len(self.regressions), "changes": [asdict(c) for c in self.changes]}


def _facts(entry: ScenarioEntry, key: str) -> list[Any]:
    """The distinct values of ``key`` over an entry's runs (an error, or a count)."""
    values = [r.count if key == "count" else r.error for r in entry.runs]
    return sorted(set(values), key=str)


def _allowed_counts(entry: ScenarioEntry) -> set[Any]:
    """The counts the runs' predictions allow (the nominal one, and the alternative where there is one)."""
    return {n for r in entry.runs for _, n in r.outcomes if n is not None}


def compare(old: GateDocument, new: GateDocument) -> GateDiff:
    diff = GateDiff(old.kernel.release or "?", new.kernel.release or "?")
    old_hz, new_hz = old.kernel.hz, new.kernel.hz
    if old_hz != new_hz:
        diff.notes.append(f"HZ differs ({old_hz} -> {new_hz}): timer runs round to other steps, so times may shift "
                          "by the wheel's granularity; the windows follow the HZ of each run")
    before = {e.id: e for e in old.scenarios}
    after = {e.id: e for e in new.scenarios}
    for sid in before.keys() - after.keys():
        diff.changes.append(Change(sid, "removed", before[sid].outcome, None, False))
    for sid in after.keys() - before.keys():
        diff.changes.append(Change(sid, "added", None, after[sid].outcome, False))
    for sid in [s for s in after if s in before]:
        diff.changes.extend(_changes(sid, before[sid], after[sid], hz_changed=old_hz != new_hz))
    diff.changes.sort(key=lambda c: (not c.regression, c.scenario, c.what))
    return diff


def _outcome_note(old: ScenarioEntry, new: ScenarioEntry) -> str:
    if new.outcome == GateOutcome.INCONCLUSIVE:
        return f"inconclusive, not a regression: {new.reason or 'machine late'}"
    if old.outcome == GateOutcome.INCONCLUSIVE:
        return f"the old run was inconclusive ({old.reason or 'machine late'}); now {new.outcome}: {new.reason or ''}"\
            .rstrip(": ")
    return new.reason or ""


def _changes(sid: str, old: ScenarioEntry, new: ScenarioEntry, hz_changed: bool) -> list[Change]:
    found = []
    was_passing = old.outcome in PASSING
    if new.outcome == GateOutcome.INCONCLUSIVE:
        was_passing = False  # the machine was late: no fact of the new run can be a regression
    if old.outcome != new.outcome:
        broke = was_passing and new.outcome in (GateOutcome.FAIL, GateOutcome.ERROR)
        found.append(Change(sid, "outcome", old.outcome, new.outcome, broke, _outcome_note(old, new)))
    for key in ("error", "count"):
        a, b = _facts(old, key), _facts(new, key)
        if a and b and a != b:
            allowed = (key == "count" and new.outcome in PASSING and set(a) <= _allowed_counts(old)
                       and set(b) <= _allowed_counts(new))
            note = "each an outcome the rule allows" if allowed else ""
            if key == "count":
                note = "; ".join(n for n in (note, _ledger_note(old, new)) if n)
            found.append(Change(sid, key, a if len(a) > 1 else a[0], b if len(b) > 1 else b[0],
                                was_passing and not allowed, note))
    shift = _timing_shift(old, new)
    if shift is not None and old.measured_s and new.measured_s:
        note = f"moved {shift * 1000:+.0f} ms, more than the window's width"
        if hz_changed:
            note += " (HZ changed: the likely cause)"
        found.append(Change(sid, "timing", old.measured_s.median, new.measured_s.median, False, note))
    return found


def _ledger_note(old: ScenarioEntry, new: ScenarioEntry) -> str:
    """Which arming of the first runs' ledgers differed, and whether the rule allowed both ("" without two ledgers)."""
    a = next((r for r in old.runs if r.ledger is not None), None)
    b = next((r for r in new.runs if r.ledger is not None), None)
    if a is None or b is None or a.ledger is None or b.ledger is None:
        return ""
    before, after = [x.delay for x in a.ledger.armings], [x.delay for x in b.ledger.armings]
    index = next((i for i, (x, y) in enumerate(zip(before, after, strict=False)) if x != y), None)
    if index is not None:
        what = f"ledger: arming {index + 1} asked for {before[index]} -> {after[index]} jiffies"
    elif len(before) != len(after):
        extra = after[len(before):] or before[len(after):]
        what = (f"ledger: {abs(len(after) - len(before))} arming(s) {'more' if len(after) > len(before) else 'fewer'} "
                f"({', '.join(map(str, extra))} jiffies)")
    else:
        what = "ledger: the same armings"
    allowed = not a.rule_failures and not b.rule_failures
    return what + ("; the rule allowed both (no rule failure in either)" if allowed else "; a rule failure: see the runs")


def _timing_shift(old: ScenarioEntry, new: ScenarioEntry) -> float | None:
    """The median's move, if larger than the window's width (the model's own rounding); else None."""
    if not (old.measured_s and new.measured_s and new.window_s):
        return None
    low, high = new.window_s
    shift = new.measured_s.median - old.measured_s.median
    return round(shift, 6) if abs(shift) > high - low else None


def format_diff(diff: GateDiff) -> str:
    lines = [f"netkit gate diff: {diff.old_kernel} -> {diff.new_kernel}"]
    lines += [f"note: {n}" for n in diff.notes]
    if not diff.changes:
        lines.append("no changes")
        return "\n".join(lines)
    width = max(len(c.scenario) for c in diff.changes)
    lines.append(f"{'scenario':<{width}}  {'what':<8} {'old':>14} -> {'new':<14} ")
    for c in diff.changes:
        mark = "REGRESSION" if c.regression else ""
        lines.append(f"{c.scenario:<{width}}  {c.what:<8} {_show(c.old):>14} -> {_show(c.new):<14} {mark} {c.note}".rstrip())
    lines.append(f"{len(diff.regressions)} regression(s), {len(diff.changes)} change(s)")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
