"""The trace feed's reading side, without a kernel: a fake instance whose ``trace_marker`` a thread echoes into the log.

What the kernel's side does (one instance for a process and its pool) is in
tests/test_ledger_lab.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from netkit.lab.timers import TimerTrace
from netkit.lab.tracefeed import FeedHandle, FeedReader
from netkit.lab.tracefs import TracefsUnavailable

LINE = "python3-{pid} [000] ..... 10.{n:06d}: tracing_mark_write: {text}\n"


class FakeFeed:
    """An instance directory with a plain ``trace_marker`` file, and a thread standing in for the owner's reader:
    every marker written is appended to the log as the trace would print it, after ``lag_s``."""

    def __init__(self, tmp_path: Path, lag_s: float = 0.0) -> None:
        (tmp_path / "instance").mkdir()
        self.marker = tmp_path / "instance" / "trace_marker"
        self.marker.write_text("")
        self.log = tmp_path / "log"
        self.log.write_text(LINE.format(pid=1, n=0, text="an earlier run's line"))
        self.handle = FeedHandle(str(tmp_path / "instance"), str(self.log), frozenset())
        self.lag_s = lag_s
        self._stop = threading.Event()
        self._echo = threading.Thread(target=self._run, daemon=True)
        self._echo.start()

    def _run(self) -> None:
        done = 0
        while not self._stop.is_set():
            written = self.marker.read_text()
            if len(written) > done:
                time.sleep(self.lag_s)
                with self.log.open("a") as log:
                    for n, token in enumerate(written[done:].split("nk-")[1:]):
                        log.write(LINE.format(pid=os.getpid(), n=n, text=f"nk-{token}"))
                done = len(written)
            time.sleep(0.001)

    def append(self, text: str) -> None:
        with self.log.open("a") as log:
            log.write(text)

    def close(self) -> None:
        self._stop.set()
        self._echo.join()


@pytest.fixture
def feed(tmp_path):
    fake = FakeFeed(tmp_path)
    yield fake
    fake.close()


def test_a_run_reads_from_its_start_and_a_sync_returns_once_its_token_came_through(feed):
    reader = FeedReader(feed.handle, None)
    reader.sync(forget=True)
    assert reader.sync(timeout_s=2).count("tracing_mark_write") == 1  # its own token: not the earlier run's line
    reader.mark("nk-learning-1")
    text = reader.sync(timeout_s=2)
    assert "an earlier run's line" not in text and "nk-learning-1" in text
    reader.close()


def test_a_line_being_written_waits_for_its_end(tmp_path):
    fake = FakeFeed(tmp_path)
    reader = FeedReader(fake.handle, None)
    reader.sync(forget=True)
    fake.close()  # from here the test is the owner's reader, writing one line in two parts
    fake.append("<idle>-0 [001] ..s1. 10.5: timer_expire_entry: timer=00000000beef now=5")

    def finish_the_line() -> None:
        time.sleep(0.05)  # the run reads the log meanwhile: the part must stay unread
        token = fake.marker.read_text().split("nk-")[-1]
        fake.append(" function=tcp_keepalive_timer\n" + LINE.format(pid=1, n=1, text=f"nk-{token}"))

    threading.Thread(target=finish_the_line).start()
    text = reader.sync(timeout_s=2)
    assert "timer=00000000beef now=5 function=tcp_keepalive_timer\n" in text
    reader.close()


def test_a_reader_that_stopped_is_said_at_once_by_the_runs_that_start_after_it(feed):
    feed.append("\nnk-feed-stopped: the trace's reader stopped: [Errno 5] Input/output error\n")
    reader = FeedReader(feed.handle, None)
    started = time.monotonic()
    with pytest.raises(TracefsUnavailable, match=r"^the trace's reader stopped: \[Errno 5\] Input/output error$"):
        reader.sync(forget=True)
    assert time.monotonic() - started < 1  # not the sync's whole timeout
    reader.close()


def test_a_reader_that_passes_nothing_on_times_out_with_a_reason(tmp_path):
    fake = FakeFeed(tmp_path, lag_s=0.5)
    reader = FeedReader(fake.handle, None)
    with pytest.raises(TracefsUnavailable, match="the trace's reader did not pass a marker on within 0 s"):
        reader.sync(timeout_s=0.2)
    reader.close()
    fake.close()


def test_a_reader_that_stops_mid_run_turns_the_runs_trace_off_with_its_reason_instead_of_breaking_the_run(feed):
    trace = TimerTrace(FeedReader(feed.handle, None), 250)
    feed.append("\nnk-feed-stopped: the trace's reader stopped: [Errno 5] Input/output error\n")
    with trace.learning("tcp_keepalive_timer"):
        pass  # the call whose timer the trace would learn
    assert trace.feed is None and trace.timers == {}
    assert trace.note == "the trace's reader stopped: [Errno 5] Input/output error"
