"""Run many scenarios at once, each in its own process.

A scenario spends nearly all its time waiting for kernel timers, so dozens
overlap and a matrix takes about as long as its longest scenario.  They run in
*processes*, not threads: the moment of death is read by the Python code that
wakes up when the socket dies, and with dozens of scenarios sharing one
interpreter lock that wake-up was seen 10-20 ms late under load -- more than
the timer rounding we assert.  A process per scenario only waits for a CPU.

Workers come from a ``forkserver`` (a clean, single-threaded process that
imported netkit once): forking the test process itself, with its threads,
could deadlock.  Each worker gets PR_SET_PDEATHSIG, so if the forkserver
(and so the run) dies, workers die too and their fd-held namespaces vanish.
Ctrl-C reaches every worker of the terminal's process group; each tears its
lab down.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor

from .scenario import Scenario, ScenarioResult, run_scenario

PR_SET_PDEATHSIG = 1
DEFAULT_WORKERS = 96  # ~10 MB each (forked from a preloaded server); enough for a session's matrix at once


def _worker_init() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["netkit.scenario"])
    return context


class ScenarioPool:
    """Runs scenarios concurrently in worker processes; ask for any result when you need it.

    ``submit`` starts scenarios at once (one submitted twice runs once);
    ``result`` waits for one and re-raises what it raised (FeatureMissing,
    NotModelled, ...).  ``close`` interrupts whatever still runs -- each
    worker tears its lab down -- and waits for the workers to end.
    """

    def __init__(self, max_workers: int = DEFAULT_WORKERS, keep_failed: bool = False) -> None:
        self.keep_failed = keep_failed
        self._pool = ProcessPoolExecutor(max_workers=max_workers, mp_context=_context(), initializer=_worker_init)
        self._futures: dict[Scenario, Future[ScenarioResult]] = {}

    def submit(self, *scenarios: Scenario) -> None:
        for scenario in scenarios:
            if scenario not in self._futures:
                self._futures[scenario] = self._pool.submit(run_scenario, scenario, keep_failed=self.keep_failed)

    def result(self, scenario: Scenario) -> ScenarioResult:
        self.submit(scenario)
        try:
            return self._futures[scenario].result()
        except BaseException:
            if not self._futures[scenario].done():  # we were interrupted while waiting
                self.close()
            raise

    def close(self) -> None:
        """Cancel what has not started, interrupt what runs (SIGINT: teardown runs), wait."""
        for future in self._futures.values():
            future.cancel()
        if any(not f.done() for f in self._futures.values()):
            for pid in list(getattr(self._pool, "_processes", {}) or {}):
                try:
                    os.kill(pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ScenarioPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_many(scenarios: Iterable[Scenario], *, keep_failed: bool = False) -> list[ScenarioResult | BaseException]:
    """Run scenarios concurrently; results (or the exception each raised) in input order."""
    scenarios = list(scenarios)
    outcomes: list[ScenarioResult | BaseException] = []
    with ScenarioPool(max_workers=max(1, min(len(scenarios), DEFAULT_WORKERS)), keep_failed=keep_failed) as pool:
        pool.submit(*scenarios)
        for scenario in scenarios:
            try:
                outcomes.append(pool.result(scenario))
            except Exception as exc:
                outcomes.append(exc)
    return outcomes
