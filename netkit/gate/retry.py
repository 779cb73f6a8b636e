"""The gate's one retry: a scenario that failed only because the machine ran its timers late runs again, once.

With the timer ledger (:mod:`netkit.evidence.ledger`) a run that failed as
measured but passes once the softirq's measured lateness is taken out is
*machine late* (``machine_late``, a sentence saying by how much and where):
the kernel kept the rule, the machine was busy.  NIPA retries a failing test
once for the same reason; the gate does too, for exactly those scenarios
whose failing runs are *all* machine late (any other failure is the
kernel's, or the test's, and a retry would only hide it).  The retries run
concurrently, after the first pass, each machine-late run once more.  Then
:func:`netkit.gate.outcome.decide` judges the scenario with the retry's runs
in place of the machine-late ones: pass (the retry is noted, and the first
runs kept in the document), fail (it failed otherwise), or *inconclusive*
(machine late again: never pass, never the kernel's failure).

Only where the ledger measured the lateness: a run without one (evidence:
observer) is never machine late, and the slow-machine XFAIL still covers it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ..document.records import GateRun
from ..scenario import Scenario
from .run import ScenarioRuns


class Judged(Protocol):
    """A run as a retry decision reads it: a gate run, a scenario result (the pytest plugin's)."""

    @property
    def machine_late(self) -> str | None: ...


def machine_late_only(failing: Iterable[Judged]) -> bool:
    """Whether there are failing runs and every one of them is machine late (not the kernel's failure)."""
    failing = list(failing)
    return bool(failing) and all(r.machine_late for r in failing)


def inconclusive_reason(sentence: str | None) -> str:
    """The reason of an inconclusive outcome: always ``machine late ...`` (the ledger's sentence, or its cause)."""
    text = sentence or "the timer ledger measured the machine late"
    return text if text.startswith("machine late") else f"machine late: {text}"


def needs_retry(runs: ScenarioRuns) -> bool:
    """A scenario that ran, broke off nowhere, and whose failing runs are all machine late."""
    return runs.skipped is None and not runs.errors and not runs.retried and \
        machine_late_only(r for r in runs.results if not r.passed)


def retry(ran: Sequence[ScenarioRuns], run: Callable[[list[Scenario], int], list[ScenarioRuns]]) -> list[ScenarioRuns]:
    """Run each scenario that :func:`needs_retry` again, once per machine-late run, all at once; fold the retries in.

    ``run(scenarios, repeat)`` runs scenarios concurrently (the gate's
    :func:`netkit.gate.run.run_gate`); it is called once per number of
    machine-late runs (one call with ``--repeat 1``).  Returns the scenarios
    retried, their records updated: the machine-late runs moved to
    ``retried``, the retry's runs (or its errors) in their place.
    """
    chosen = [r for r in ran if needs_retry(r)]
    by_count: dict[int, list[ScenarioRuns]] = {}
    for runs in chosen:
        by_count.setdefault(sum(1 for r in runs.results if not r.passed), []).append(runs)
    for count, group in by_count.items():
        again = {r.scenario.id: r for r in run([g.scenario for g in group], count)}
        for runs in group:
            fold(runs, again.get(runs.scenario.id))
    return chosen


def fold(runs: ScenarioRuns, again: ScenarioRuns | None) -> None:
    """The retry's runs in place of the machine-late ones (those kept in ``retried``)."""
    late: list[GateRun] = [r for r in runs.results if not r.passed]
    runs.retried = late
    runs.results = [r for r in runs.results if r.passed]
    if again is None:
        runs.errors.append("the retry did not run")
        return
    runs.results.extend(again.results)
    runs.errors.extend(f"on the retry: {e}" for e in again.errors)
    if again.skipped is not None:
        runs.errors.append(f"on the retry: cannot run: {again.skipped}")
    if again.ended is not None:  # the scenario's duration spans its retry
        runs.ended = max(runs.ended or again.ended, again.ended)


__all__ = ["inconclusive_reason", "machine_late_only", "needs_retry", "retry"]
