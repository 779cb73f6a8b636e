"""Run many scenarios at once, each in its own process.

A scenario spends nearly all its time waiting for kernel timers, so dozens
overlap and a matrix takes about as long as its longest scenario.  They run in
*processes*, not threads: the moment of death is read by the Python code that
wakes up when the socket dies, and with dozens of scenarios sharing one
interpreter lock that wake-up comes late under load, by more than the timer
rounding netkit asserts (docs/rules.md, "The observer").  A process per
scenario only waits for a CPU.

Workers come from a ``forkserver`` (a clean, single-threaded process that
imported netkit once): forking the test process itself, with its threads,
could deadlock.  Each worker watches the pool's owner and dies with it (see
``_worker_init``), so a run killed even by SIGKILL leaves no worker -- and so
no namespace -- behind.  Ctrl-C reaches every worker of the terminal's process
group; each tears its lab down.

A worker imports netkit and nothing of its caller: multiprocessing would
otherwise re-run the caller's script (its ``__main__``) in every worker, so an
unguarded script calling ``run_many`` ran its own top level once per worker.
Everything a worker needs -- ``run_scenario``, ``Scenario`` and its parts --
lives in netkit, so no ``if __name__ == "__main__":`` guard is needed.
"""

from __future__ import annotations

import atexit
import ctypes
import io
import multiprocessing
import multiprocessing.context
import os
import select
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import forkserver, popen_forkserver, spawn, util
from multiprocessing.reduction import dump
from typing import TypeVar

from ..lab import tracefs
from ..lab.timers import workers_feed
from ..lab.tracefeed import FeedHandle, FeedReader
from ..privileges import require_privileges
from ..rundir import process_dir, remove_stale
from .result import ScenarioResult
from .run import check_capture_paths, run_scenario
from .spec import Scenario, require_scenario

T = TypeVar("T")

PR_SET_PDEATHSIG = 1
WORKER_NICENESS = -10
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
WORKERS_PER_CPU = 24
WORKERS_RANGE = (16, 128)


def workers_for_this_machine() -> int:
    """How many scenarios run at once by default: 24 per CPU this process may use, 16..128.

    Scenarios mostly sleep, but their setups and teardowns come in bursts,
    and a burst makes the kernel's own timers late: the timer softirq runs
    after the tick that expires them, by milliseconds when the CPUs are
    saturated.  116 at once on 2 CPUs (the gate after issue 13) put keepalive
    probes 1.042 s apart where the wheel allows 1.036 and an RST 32 ms past
    its window.  64 at once (32 per CPU) still failed 3 gate runs of 15
    here, each a middlebox cell whose probes 3 and 4 s in coincide with the
    first wave's setups (spacing 1.036-1.038 s: the second probe's timer ran
    5 ms after its tick), and 3 of 510 keepalive spacings were more than
    4 ms past the wheel's rounding.  48 at once passed 15 of 15, with none
    past 2 ms, in 13.8 s instead of 13.3 (``scripts/bench-gate``).
    """
    cpus = len(os.sched_getaffinity(0))
    return max(WORKERS_RANGE[0], min(WORKERS_RANGE[1], WORKERS_PER_CPU * cpus))


DEFAULT_WORKERS = workers_for_this_machine()  # ~10 MB each (forked from a preloaded server)


def _worker_init(main_pid: int, feed: FeedHandle | str | None) -> None:
    """In each worker: die with the forkserver (PDEATHSIG), and with the process that owns the pool.

    The worker's parent is the forkserver, not the pool's owner, and a worker
    waiting for work would not notice its owner's death (every worker holds
    the task queue's write end too).  So a daemon thread waits on a pidfd of
    the owner and kills the worker when it ends -- even by SIGKILL; the
    worker's namespaces, held only by its fds, vanish with it.

    An idle worker ignores SIGINT (see :func:`_interruptible`).  Its runs
    read the owner's trace feed (``feed``; a string: why there is none).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        # A worker sleeps almost all the time; when its socket dies it must wake at once,
        # not after whatever test process is busy on the CPU: the wake-up is part of the measurement.
        os.setpriority(os.PRIO_PROCESS, 0, WORKER_NICENESS)
    except PermissionError:
        pass
    try:
        owner = os.pidfd_open(main_pid)
    except ProcessLookupError:
        os._exit(1)

    def watch() -> None:
        select.select([owner], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="netkit-owner-watch", daemon=True).start()
    FeedReader.attach(feed)


class _NetkitOnlyPopen(popen_forkserver.Popen):
    """Starts a forkserver child that imports netkit's worker code and not the caller's ``__main__``.

    The same steps as CPython's ``popen_forkserver.Popen._launch`` (3.9-3.13),
    except that the preparation data loses ``init_main_from_path`` /
    ``init_main_from_name``: those make the child import the parent's script
    as ``__mp_main__``, running whatever it does outside a main guard.
    """

    def _launch(self, process_obj: multiprocessing.process.BaseProcess) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)  # type: ignore[attr-defined]
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        multiprocessing.context.set_spawning_popen(self)
        try:
            dump(prep_data, buf)
            dump(process_obj, buf)
        finally:
            multiprocessing.context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        parent_w = os.dup(w)  # the child watches this end to notice its parent's death
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))  # type: ignore[attr-defined]
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _NetkitOnlyProcess(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: multiprocessing.process.BaseProcess) -> _NetkitOnlyPopen:  # noqa: N802 (stdlib's name)
        return _NetkitOnlyPopen(process_obj)


class _NetkitOnlyContext(multiprocessing.context.ForkServerContext):
    Process = _NetkitOnlyProcess


def _interruptible(function: Callable[..., T], *args: object, **kwargs: object) -> T:
    """In a worker: run ``function`` with SIGINT raising KeyboardInterrupt, so that Ctrl-C or ``close()`` tears its lab down.

    Only while it runs: an idle worker waits for work inside the task queue's
    pipe read, and a KeyboardInterrupt there -- after a message's length was
    read, before its body -- would leave the other workers reading the pipe
    out of step, waiting forever (a hang at exit, seen once in three runs that
    closed the pool with scenarios still running).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return function(*args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


UNIX_PATH_MAX = 108  # sun_path, the terminating NUL included


def _multiprocessing_dir_in_ours() -> None:
    """multiprocessing's own temporary directory (the forkserver's socket) is this process's run directory.

    multiprocessing names it ``pymp-<random>`` and removes it at exit, so a
    SIGKILLed owner leaves it behind under a name no one can tie to netkit.
    As :func:`netkit.rundir.process_dir` it carries our PID, and ``netkit
    cleanup`` removes it.  Not nested deeper: the socket's path must stay
    under AF_UNIX's 108 bytes.  Left alone if this process already made one.
    """
    config = multiprocessing.process.current_process()._config  # type: ignore[attr-defined]
    if not config.get("tempdir") and len(process_dir()) + len("/listener-12345678") < UNIX_PATH_MAX:
        config["tempdir"] = process_dir()


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then act with the caller's own handlers.

    ``ProcessPoolExecutor.submit`` may spawn a worker.  A KeyboardInterrupt
    raised in the middle of that leaves a worker the executor does not know:
    it takes one of the exit sentinels meant for the known workers, and
    ``shutdown`` then waits for a worker that never gets one (a gate
    interrupted 0.9 s after its start hung, found by scripts/soak-kills).
    Python runs signal handlers in the main thread only, so a signal mask
    cannot keep the exception out: the handlers are swapped instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: caught.append(number)) for sig in DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if caught:
            signal.raise_signal(caught[0])


def _context() -> multiprocessing.context.BaseContext:
    _multiprocessing_dir_in_ours()
    remove_stale()  # what killed netkit processes left: the next pool cleans it, as `netkit cleanup` does
    tracefs.remove_stale()  # the same for their tracefs instances (only netkit's, only when the owner is gone)
    context = _NetkitOnlyContext()
    context.set_forkserver_preload(["netkit.scenario.run"])
    return context


class ScenarioPool:
    """Runs scenarios concurrently in worker processes; ask for any result when you need it.

    ``submit`` starts scenarios at once (one submitted twice runs once);
    ``result`` waits for one and re-raises what it raised (FeatureMissing,
    NotModelled, ...).  ``close`` interrupts whatever still runs -- each
    worker tears its lab down -- and waits for the workers to end.
    """

    def __init__(self, max_workers: int = DEFAULT_WORKERS, keep_failed: bool = False, pcap_dir: str | None = None) -> None:
        check_capture_paths(None, pcap_dir)
        require_privileges()  # here, not once per worker: one clear message, no workers started
        self.keep_failed = keep_failed
        self.pcap_dir = pcap_dir  # where failed scenarios write their capture (None: temporary files)
        self._pool = ProcessPoolExecutor(
            max_workers=max_workers, mp_context=_context(), initializer=_worker_init,
            initargs=(os.getpid(), workers_feed()),  # one tracefs instance for them all, read by this process
        )
        self._futures: dict[Scenario, Future[ScenarioResult]] = {}
        self._runs: list[Future[ScenarioResult]] = []  # every run started, repeats included
        self._closed = False
        # Also at interpreter exit: after a Ctrl-C the owner's teardown may never
        # run, and multiprocessing's own exit handler would wait for idle workers forever.
        atexit.register(self.close)

    def submit(self, *scenarios: Scenario) -> None:
        for scenario in scenarios:
            require_scenario(scenario, "ScenarioPool.submit()")
            if scenario not in self._futures:
                self._futures[scenario] = self.start(scenario)

    def start(self, scenario: Scenario) -> Future[ScenarioResult]:
        """Start one more run of ``scenario`` (even if it ran already: a benchmark repeats one)."""
        require_scenario(scenario, "ScenarioPool.start()")
        with _signals_deferred():
            future = self._pool.submit(_interruptible, run_scenario, scenario, keep_failed=self.keep_failed,
                                       pcap_dir=self.pcap_dir)
        self._runs.append(future)
        return future

    def run_in_worker(self, function: Callable[..., T], *args: object) -> Future[T]:
        """Run ``function(*args)`` in a worker; it must live in netkit (workers import nothing of the caller)."""
        with _signals_deferred():
            future = self._pool.submit(_interruptible, function, *args)
        self._runs.append(future)  # type: ignore[arg-type]
        return future

    def result(self, scenario: Scenario) -> ScenarioResult:
        self.submit(scenario)
        try:
            return self._futures[scenario].result()
        except BaseException:
            if not self._futures[scenario].done():  # we were interrupted while waiting
                self.close()
            raise

    def wait_idle(self) -> None:
        """Wait until every run started so far has ended (whatever each ended with)."""
        futures.wait(list(self._runs))

    def close(self) -> None:
        """Cancel what has not started, interrupt what runs (SIGINT: teardown runs), wait. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for future in self._runs:
            future.cancel()
        if any(not f.done() for f in self._runs):
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


def run_many(
    scenarios: Iterable[Scenario], *, keep_failed: bool = False, pcap_dir: str | None = None
) -> list[ScenarioResult | BaseException]:
    """Run scenarios concurrently; results (or the exception each raised) in input order.

    Every element runs, repeats included (``[s] * 20`` is 20 runs of ``s``).
    """
    if isinstance(scenarios, (Scenario, str)) or not isinstance(scenarios, Iterable):
        raise TypeError(f"run_many(): {scenarios!r} is not a list of netkit.Scenario: give a list, e.g. "
                        "run_many([Scenario(KeepaliveSettings(1, 1, 3))])")
    scenarios = [require_scenario(s, f"run_many(), element {i}") for i, s in enumerate(scenarios)]
    outcomes: list[ScenarioResult | BaseException] = []
    workers = max(1, min(len(scenarios), DEFAULT_WORKERS))
    with ScenarioPool(max_workers=workers, keep_failed=keep_failed, pcap_dir=pcap_dir) as pool:
        runs = [pool.start(scenario) for scenario in scenarios]
        for run in runs:
            try:
                outcomes.append(run.result())
            except Exception as exc:
                outcomes.append(exc)
    return outcomes
