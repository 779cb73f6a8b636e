"""Every exhibit's check at once, each a ``netkit check-client``/``check-server`` process in its own lab.

A check is a subprocess, not a call: each holds its lab's namespaces, its
program and its trace, and a process is what netkit already knows how to
stop (SIGINT tears its lab down).  CPUs + 1 run at a time, the longest
first: ten audits starting together (Python, a lab, the program) are a burst
of CPU-seconds that would make the running ones' timers late, and the
longest (Go's defaults, 150 s) then sets the wall time alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..kernel import kernel_info
from ..privileges import require_privileges
from .exhibits import Exhibit
from .judging import GalleryDocument, Row, judge, skipped
from .programs import command_for, examples_dir, placeholders, skip_reason, version_of

SLACK_S = 60.0  # a check's own lab, program start and teardown, beyond its wait
STOP_S = 30.0  # how long a check interrupted with SIGINT may take to tear its lab down


@dataclass
class _Running:
    exhibit: Exhibit
    proc: subprocess.Popen[str]
    started: float
    version: str


def run_gallery(exhibits: list[Exhibit], say: Callable[[str], None] = lambda _line: None) -> GalleryDocument:
    """Run the exhibits this machine has programs for; the others are skipped rows that say what to install."""
    require_privileges()
    kernel = kernel_info()
    examples = examples_dir()
    rows: dict[str, Row] = {}
    runnable = []
    for exhibit in exhibits:
        reason = skip_reason(exhibit)
        if reason:
            rows[exhibit.name] = skipped(exhibit, reason)
            say(f"skip  {exhibit.name}: {reason}")
        else:
            runnable.append(exhibit)
    values = placeholders(examples, any("go" in e.needs for e in runnable))
    started = time.monotonic()
    waiting = sorted(runnable, key=lambda e: -e.takes_s)
    running: list[_Running] = []
    try:
        while waiting or running:
            while waiting and len(running) < len(os.sched_getaffinity(0)) + 1:
                running.append(_start(waiting.pop(0), values, say))
            finished = _wait_any(running)
            running.remove(finished)
            row = _finish(finished)
            rows[row.name] = row
            say(f"{row.outcome:5} {row.name} ({time.monotonic() - finished.started:.1f} s)"
                + (f": {row.why}" if row.why else ""))
    finally:
        for r in running:
            _interrupt(r.proc)
    return GalleryDocument(kernel.release, kernel.hz, [rows[e.name] for e in exhibits],
                           round(time.monotonic() - started, 1))


def _start(exhibit: Exhibit, values: dict[str, str], say: Callable[[str], None]) -> _Running:
    argv = [sys.executable, "-m", "netkit.cli", *exhibit.check_args(), *command_for(exhibit, values)]
    say(f"start {exhibit.name}")
    version = version_of(exhibit)  # before the check's program starts: a version probe is a burst of its own
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    return _Running(exhibit, proc, time.monotonic(), version)


def _wait_any(running: list[_Running]) -> _Running:
    """The first check to end; one past its deadline is interrupted (and then ends)."""
    while True:
        for r in running:
            if r.proc.poll() is not None:
                return r
            if time.monotonic() - r.started > r.exhibit.wait_s + SLACK_S:
                _interrupt(r.proc)
                return r
        time.sleep(0.1)


def _interrupt(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _finish(r: _Running) -> Row:
    out, err = r.proc.communicate()
    try:
        check = json.loads(out)
    except ValueError:
        check = {"verdict": "error", "error": f"exit {r.proc.returncode}, no JSON result: {(err or out).strip()[-500:]}"}
    return judge(r.exhibit, check, r.version)


__all__ = ["run_gallery"]
