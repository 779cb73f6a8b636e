"""One tracefs instance per process tree, read once: the feed every run of a pool takes its timer events from.

Why one, not one per worker: making an instance and removing it are the
kernel's slowest tracefs work, each an RCU grace period or two under the one
tracing mutex (about 45 ms to make one with netkit's clock, buffer and
filters; 22-55 ms to rmdir it).  With an instance per worker, 48 workers
cost a gate on 2 CPUs 2 s of instance making at its start and 1.8 s of
removal at its end, one after the other: 1.23x the gate's wall time without
the ledger (``scripts/bench-gate --compare-ledger``).  One instance costs
about 0.1 s, once.

How it is shared: the process that owns the feed (one that runs a pool, or
a lone run) reads the instance's ``trace_pipe`` in a thread and appends
every line to a log, a memory file (``memfd_create``) that its workers open
as ``/proc/<owner>/fd/<n>``; a run reads the log from where it started
(:class:`FeedReader`).  ``trace_pipe`` consumes what it reads, so it has
one reader; the log has as many as want.  Nothing in the log is one run's:
each keeps its socket's timers by address
(:func:`netkit.evidence.ledger.build`), from the call that learned each (the
memory may have been another lab's socket just before), and only its own
thread's markers.

A run that needs every event up to a moment (its timer's arming, its death)
writes a token into the trace (``trace_marker``) and waits for it in the log
(:meth:`FeedReader.sync`): ``trace_pipe`` merges the CPUs' buffers in time
order, so every event recorded before the token is in the log before it.

``timer:timer_expire_exit`` has no function to filter on, so the instance
records every timer's exit (about 200 a second in a gate on 2 CPUs), and the
reader keeps only those that end a TCP timer's run: an exit of the timer
whose entry (filtered by function) was the last on that CPU.

The owner removes the instance when it exits (``atexit``); a SIGKILLed
owner leaves it to ``netkit cleanup`` (the instance is named with its pid).
The log goes with the last process that holds it open: the owner and its
workers, which die with it.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from .tracefs import TracefsUnavailable, TraceInstance

SYNC_TIMEOUT_S = 10.0  # how long a run waits for its token to come through the owner's reader
SYNC_POLL_S = 0.002
STOPPED_TAIL = 4096  # bytes at the log's end a new run reads for a stopped reader's last line
READER_NICENESS = -10  # as a pool's workers: they wait for it (netkit.scenario.pool.WORKER_NICENESS)
_END = "nk-feed-end"  # the owner's last marker: its reader stops there
_STOPPED = "nk-feed-stopped: "  # the reader's last line in the log when it fails: every run's sync says why at once
_ENTRY = re.compile(r"\[(\d+)\].*\btimer_expire_entry:\s+timer=(\S+)")
_EXIT = re.compile(r"\[(\d+)\].*\btimer_expire_exit:\s+timer=(\S+)")


@dataclass(frozen=True)
class FeedHandle:
    """What a pool's worker needs to read its owner's feed: the instance's path, the log's, the events recorded."""

    instance_path: str
    log_path: str
    events: frozenset[str]


def keep(line: str, running: dict[str, str]) -> bool:
    """Does the log keep this trace line?  Every line but a timer exit that ends no TCP timer's run.

    ``running``: CPU -> the timer whose entry was the last seen there (entries are recorded for TCP timers only).
    """
    entry = _ENTRY.search(line)
    if entry:
        running[entry.group(1)] = entry.group(2)
        return True
    ended = _EXIT.search(line)
    if ended is None:
        return True
    if running.get(ended.group(1)) == ended.group(2):
        del running[ended.group(1)]
        return True
    return False


class TraceFeed:
    """The owner's side: the instance, its reader thread, and the log it appends to."""

    _owned: ClassVar[dict[tuple[int, frozenset[str]], TraceFeed]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, instance: TraceInstance, log: int) -> None:
        self.instance = instance
        self.log = log  # the memory file's descriptor: the reader appends, every run opens it by its /proc path
        self.log_path = f"/proc/{os.getpid()}/fd/{log}"
        self._reader = threading.Thread(target=self._read, name="netkit-trace-feed", daemon=True)
        self._closed = False

    @classmethod
    def owned(cls, filters: Mapping[str, str]) -> TraceFeed:
        """This process's feed recording ``filters``' events, made on first use and removed at exit.

        Raises TracefsUnavailable (the message says why) when tracefs or an event cannot be had.
        """
        key = (os.getpid(), frozenset(filters))
        with cls._lock:
            feed = cls._owned.get(key)
            if feed is None or feed._closed:
                instance = TraceInstance.create(filters)
                try:
                    log = os.memfd_create(instance.name, os.MFD_CLOEXEC)
                except OSError as exc:
                    instance.close()
                    raise TracefsUnavailable(f"cannot make the trace's log (memfd_create): {exc.strerror}") from exc
                feed = cls(instance, log)
                feed._reader.start()
                atexit.register(feed.close)
                cls._owned[key] = feed
            return feed

    def handle(self) -> FeedHandle:
        return FeedHandle(self.instance.path, self.log_path, self.instance.events)

    def _read(self) -> None:
        """The reader: ``trace_pipe`` to the log, whole lines, until the owner's end marker; a failure is its last line."""
        try:
            self._copy()
        except Exception as exc:  # noqa: BLE001 (whatever stopped it, the runs waiting on it must hear why)
            os.write(self.log, f"\n{_STOPPED}the trace's reader stopped: {exc}\n".encode())

    def _copy(self) -> None:
        running: dict[str, str] = {}
        pending = b""
        try:  # every run's sync waits for this thread: beside CPU hogs, it must not wait behind them
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READER_NICENESS)
        except OSError:
            pass
        pipe = os.open(os.path.join(self.instance.path, "trace_pipe"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            with open(self.log, "ab", buffering=0, closefd=False) as log:
                while True:
                    chunk = os.read(pipe, 1 << 16)
                    if not chunk:  # trace_pipe blocks until there is something: this is not expected
                        time.sleep(SYNC_POLL_S)
                        continue
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    kept = [line for line in lines if keep(line.decode(errors="replace"), running)]
                    if kept:
                        log.write(b"\n".join(kept) + b"\n")  # whole lines, one write
                    if any(_END.encode() in line for line in lines):
                        return
        finally:
            os.close(pipe)

    def set_filter(self, event: str, expression: str) -> None:
        """Change a filter of the feed (only its owner's runs may: check-server and check-client follow a port)."""
        self.instance.set_filter(event, expression)

    def close(self) -> None:
        """Stop the reader (an end marker), remove the instance, let the log go. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        if self._reader.is_alive():
            try:
                self.instance.mark(_END)
            except OSError:
                pass
            self._reader.join(timeout=2.0)
        try:
            self.instance.close()
        except OSError:  # still busy: netkit cleanup removes it once this process is gone
            pass
        os.close(self.log)  # the memory is freed once no run holds it open either


class FeedReader:
    """A run's view of a feed: its markers, and the log's lines from where the run started."""

    _attached: ClassVar[FeedHandle | str | None] = None  # a pool worker's: its owner's feed, or why it has none

    def __init__(self, handle: FeedHandle, owner: TraceFeed | None) -> None:
        self.owner = owner  # the feed, when this process owns it (its filters may change)
        self._marker = os.open(os.path.join(handle.instance_path, "trace_marker"), os.O_WRONLY | os.O_CLOEXEC)
        try:
            self._log = open(handle.log_path, "rb")  # noqa: SIM115 (kept for the run's life, closed by close())
        except OSError:
            os.close(self._marker)
            raise
        end = self._log.seek(0, os.SEEK_END)  # earlier runs' lines are not this one's (a session's log grows to MBs)
        self._log.seek(max(0, end - STOPPED_TAIL))  # ... but a reader that stopped said why in its last line
        _, stopped, why = self._log.read().decode(errors="replace").rpartition(_STOPPED)
        self._text = stopped + why  # the log's whole lines since the run's start (a stopped reader's: sync raises)
        self._pending = b""

    @classmethod
    def attach(cls, handle: FeedHandle | str | None) -> None:
        """In a pool's worker: runs read the owner's feed (``handle``), or say why there is none (a string)."""
        cls._attached = handle

    @classmethod
    def open(cls, filters: Mapping[str, str]) -> FeedReader:
        """A reader positioned at this moment: the worker's owner's feed, or this process's own.

        Raises TracefsUnavailable (why) or OSError.
        """
        attached = cls._attached
        if isinstance(attached, str):
            raise TracefsUnavailable(attached)
        if attached is not None and attached.events >= frozenset(filters):
            reader = cls(attached, None)
        else:
            feed = TraceFeed.owned(filters)
            reader = cls(feed.handle(), feed)
        try:
            reader.sync(forget=True)  # what the trace held before this run is not the run's
        except BaseException:
            reader.close()
            raise
        return reader

    def mark(self, text: str) -> None:
        """Write ``text`` into the trace, as an event of the calling thread."""
        os.write(self._marker, text.encode())

    def sync(self, timeout_s: float = SYNC_TIMEOUT_S, forget: bool = False) -> str:
        """Everything the trace recorded from the run's start until now: the log's text up to a token written now.

        ``forget``: the run starts now (what came before the token is dropped).  Raises TracefsUnavailable when
        the token does not come through in time (the owner's reader stopped or fell too far behind).
        """
        token = f"nk-sync-{secrets.token_hex(6)}"
        self.mark(token)
        deadline = time.monotonic() + timeout_s
        while True:
            self._take()
            stopped = self._text.find(_STOPPED)
            if stopped >= 0:
                raise TracefsUnavailable(self._text[stopped + len(_STOPPED):].splitlines()[0])
            at = self._text.find(token)
            if at >= 0:
                if forget:
                    self._text = self._text[self._text.index("\n", at) + 1:]
                return self._text
            if time.monotonic() > deadline:
                raise TracefsUnavailable(f"the trace's reader did not pass a marker on within {timeout_s:.0f} s")
            time.sleep(SYNC_POLL_S)

    def _take(self) -> None:
        chunk = self._log.read()
        if not chunk:
            return
        data = self._pending + chunk
        end = data.rfind(b"\n") + 1  # a line being written stays for the next read
        self._text += data[:end].decode(errors="replace")
        self._pending = data[end:]

    def close(self) -> None:
        if self._marker >= 0:
            os.close(self._marker)
            self._marker = -1
        self._log.close()


__all__ = ["READER_NICENESS", "SYNC_TIMEOUT_S", "FeedHandle", "FeedReader", "TraceFeed", "keep"]
