"""Run a gate: every selected scenario at once, each in its own lab and worker process, each with a deadline.

The scenarios spend their time waiting for kernel timers, so they overlap
(the pool in :mod:`netkit.scenario.pool`): the gate takes about as long as its longest
scenario.  Each run keeps a *journal* -- a small file its worker appends a
line to whenever the kernel's count changes -- so that a run which misses its
deadline (a hung worker) is still reported with its timeline so far.  The
gate never waits for a run past that deadline: one hung scenario cannot hang
the gate.  Temporary journals live in one directory, removed at the end.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from ..document.codec import run_from_dict
from ..document.records import GateRun
from ..errors import FeatureMissing, NotModelled
from ..kernel import KernelInfo, kernel_info
from ..model.predict import predict
from ..rundir import process_dir
from ..scenario import Progress, Scenario, ScenarioResult, run_scenario
from ..scenario.handshake import new_namespace_facts
from ..scenario.pool import ScenarioPool, workers_for_this_machine
from ..scenario.requirements import require_supported
from .shard import length_s

MAX_WORKERS = workers_for_this_machine()  # runs beyond this wait for a free worker: the longest start first
SETUP_ALLOWANCE_S = 20.0  # building the lab and, before the fault, waiting for an answered probe
POLL_S = 0.2


@dataclass(eq=False)  # one record per scenario, compared (and hashed) by identity
class ScenarioRuns:
    """What the gate learnt about one scenario: its runs' results, or why it did not run (skip/error)."""

    scenario: Scenario
    repeat: int = 1
    window_s: tuple[float, float] | None = None  # the prediction's, for the deadline and the reports
    expected_s: float | None = None
    results: list[GateRun] = field(default_factory=list)  # each run as judged, with its explain text
    skipped: str | None = None  # FeatureMissing / NotModelled: why it cannot run here
    errors: list[str] = field(default_factory=list)  # a run that broke off or missed its deadline
    retried: list[GateRun] = field(default_factory=list)  # machine-late runs the gate's retry replaced (gate.retry)
    started: float | None = None  # time.monotonic() of the first run's start, the last run's end
    ended: float | None = None

    @property
    def finished(self) -> bool:
        return self.skipped is not None or len(self.results) + len(self.errors) >= self.repeat

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(not r.passed for r in self.results)

    @property
    def duration_s(self) -> float:
        return round(self.ended - self.started, 3) if self.started is not None and self.ended is not None else 0.0


@dataclass(frozen=True)
class GateProgress:
    """For the live progress line: counts, failures so far, seconds until the longest running scenario is due."""

    done: int
    running: int
    left: int
    failed: int
    due_in_s: float
    just_finished: ScenarioRuns | None = None


def run_gate(
    scenarios: Sequence[Scenario],
    *,
    repeat: int = 1,
    on_progress: Callable[[GateProgress], None] | None = None,
    max_workers: int = MAX_WORKERS,
    pcap_dir: str | None = None,
) -> list[ScenarioRuns]:
    """Run every scenario ``repeat`` times, concurrently; results in input order."""
    kernel = kernel_info()
    outcome = [ScenarioRuns(s, repeat) for s in scenarios]
    runnable = [o for o in outcome if _prepare(o, kernel) is None]
    total = len(runnable) * repeat
    if total == 0:
        return outcome
    journals = tempfile.mkdtemp(prefix="gate-journals-", dir=process_dir())
    try:
        with ScenarioPool(max_workers=min(max_workers, total), pcap_dir=pcap_dir) as pool:
            pending = _start(pool, runnable, repeat, journals)
            _collect(pending, outcome, on_progress)
    finally:
        shutil.rmtree(journals, ignore_errors=True)
    return outcome


def _prepare(runs: ScenarioRuns, kernel: KernelInfo) -> str | None:
    """Skip what cannot run here (in the parent: no worker needed to say so); note the window."""
    s = runs.scenario
    try:
        require_supported(s)
        prediction = predict(s, kernel, handshake=new_namespace_facts())  # the window shown before the run
    except (FeatureMissing, NotModelled) as exc:
        runs.skipped = str(exc)
        return runs.skipped
    runs.window_s = prediction.window_s
    runs.expected_s = prediction.expected_s
    return None


@dataclass
class _Run:
    """One run in flight: its scenario's record, its journal, and how long it may take once started."""

    runs: ScenarioRuns
    journal: str
    give_up_s: float
    _started: float | None = None  # read from the journal once the worker wrote it; it never changes after

    def started_at(self) -> float | None:
        """The worker's time.monotonic() at the start (the journal's first line; CLOCK_MONOTONIC is system-wide)."""
        if self._started is None:
            try:
                with open(self.journal) as f:
                    first = f.readline().split()
                self._started = float(first[0]) if first else None
            except (OSError, ValueError):
                pass
        return self._started

    def so_far(self) -> str:
        try:
            with open(self.journal) as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError:
            return "nothing"
        return "; ".join(lines[1:]) or "lab being built, no probe counted yet"


def _start(pool: ScenarioPool, runnable: list[ScenarioRuns], repeat: int, journals: str) -> dict[Future[ScenarioResult], _Run]:
    pending = {}
    # The longest first: with fewer workers than runs, the short ones fill in behind them, and the gate still
    # takes about as long as its longest scenario.
    longest_first = sorted(enumerate(runnable), key=lambda item: -length_s(item[1].window_s))
    for index, runs in longest_first:
        k = runs.scenario.keepalive
        high = length_s(runs.window_s)
        # The scenario's own give-up (window end + max(2 s, half the expected time)) after the lab and the
        # answered probe (about idle + intvl): past this, its worker is hung, not the kernel late.
        give_up = SETUP_ALLOWANCE_S + k.idle + k.intvl + high + max(2.0, 0.5 * (runs.expected_s or 0.0))
        for attempt in range(repeat):
            journal = os.path.join(journals, f"{index}-{attempt}.log")
            open(journal, "w").close()
            future = pool.run_in_worker(journaled_run, runs.scenario, journal, pool.pcap_dir)
            pending[future] = _Run(runs, journal, give_up)
    return pending


def _collect(pending: dict[Future[ScenarioResult], _Run], outcome: list[ScenarioRuns],
             on_progress: Callable[[GateProgress], None] | None) -> None:
    while pending:
        done, _ = concurrent.futures.wait(pending, timeout=POLL_S, return_when=concurrent.futures.FIRST_COMPLETED)
        now = time.monotonic()
        finished: list[ScenarioRuns] = []
        for future in done:
            run = pending.pop(future)
            _record(run, future)
            finished.append(_timed(run, now))
        for future, run in list(pending.items()):
            started = run.started_at()
            if started is not None and now - started > run.give_up_s:
                pending.pop(future)
                future.cancel()
                run.runs.errors.append(f"no result {run.give_up_s:.0f} s after it started (its worker hung); "
                                       f"progress so far: {run.so_far()}")
                finished.append(_timed(run, now))
        if on_progress:
            _report(outcome, pending, finished, on_progress, now)


def _timed(run: _Run, now: float) -> ScenarioRuns:
    started = run.started_at() or now
    runs = run.runs
    runs.started = started if runs.started is None else min(runs.started, started)
    runs.ended = now if runs.ended is None else max(runs.ended, now)
    return runs


def _record(run: _Run, future: Future[ScenarioResult]) -> None:
    try:
        result = future.result()
        run.runs.results.append(run_from_dict({**result.to_dict(), "explain": result.explain()}))
    except (FeatureMissing, NotModelled) as exc:
        run.runs.skipped = str(exc)
    except Exception as exc:  # a NetkitError, a bug or a kernel surprise: an error of this scenario, not of the gate
        run.runs.errors.append(f"{type(exc).__name__}: {exc}; progress so far: {run.so_far()}")


def _report(outcome: list[ScenarioRuns], pending: dict[Future[ScenarioResult], _Run], finished: list[ScenarioRuns],
            on_progress: Callable[[GateProgress], None], now: float) -> None:
    starts = {id(r): r.started_at() for r in pending.values()}
    running = {r.runs for r in pending.values() if starts[id(r)] is not None}
    waiting = {r.runs for r in pending.values()} - running
    done = [o for o in outcome if o.finished]
    due = [start + r.give_up_s - now for r in pending.values() if (start := starts[id(r)]) is not None]
    progress = GateProgress(len(done), len(running), len(waiting), sum(o.failed for o in done), max(due, default=0.0))
    just_done = [runs for runs in dict.fromkeys(finished) if runs.finished]
    for number, runs in enumerate(just_done, start=len(done) - len(just_done) + 1):
        on_progress(GateProgress(number, progress.running, progress.left, progress.failed, progress.due_in_s, runs))
    if not just_done:
        on_progress(progress)
def journaled_run(scenario: Scenario, journal: str, pcap_dir: str | None) -> ScenarioResult:
    """In a worker: run the scenario, appending its progress to ``journal`` (the first line marks the start)."""
    with open(journal, "a", buffering=1) as out:
        out.write(f"{time.monotonic():.3f} started\n")
        seen = [-1]

        def note(p: Progress) -> None:
            if p.count != seen[0]:
                seen[0] = p.count
                out.write(f"{p.elapsed_s:.3f} s: count {p.count} (expected death at {p.expected_s:.3f} s)\n")

        return run_scenario(scenario, on_progress=note, pcap_dir=pcap_dir)
