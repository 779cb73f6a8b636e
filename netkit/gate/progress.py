"""Live progress of a gate on stderr: one updating line on a terminal, one line per scenario elsewhere.

A CI log must stay readable (no carriage returns or escape codes when stderr
is a file or a pipe); a person at a terminal wants to see the gate breathe.
Plain ANSI (erase line, carriage return) is all this needs.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TextIO

from .run import GateProgress

REDRAW_S = 0.2


class LiveProgress:
    """``expected_to_fail``: the ids a known difference (``--known``) marks xfail, so their lines say xfail/XPASS
    as the summary will, not FAIL/pass."""

    def __init__(self, out: TextIO, total: int, expected_to_fail: Collection[str] = ()) -> None:
        self.out = out
        self.total = total
        self.expected_to_fail = expected_to_fail
        self.tty = out.isatty()
        self._drawn = 0.0

    def __call__(self, p: GateProgress) -> None:
        if p.just_finished is not None:
            self._finished(p)
        if self.tty and (time.monotonic() - self._drawn >= REDRAW_S or p.just_finished is not None):
            self._drawn = time.monotonic()
            self.out.write(f"\r\033[Kgate: {p.done}/{self.total} done, {p.running} running, {p.left} waiting, "
                           f"{p.failed} failed; longest due in {max(p.due_in_s, 0):.1f} s")
            self.out.flush()

    def _finished(self, p: GateProgress) -> None:
        runs = p.just_finished
        assert runs is not None
        if runs.skipped is not None:
            what = "skip"
        elif runs.errors:
            what = "ERROR"
        elif runs.failed and all(r.machine_late for r in runs.results if not r.passed):
            what = "LATE"  # machine late: the gate retries it after this pass (netkit.gate.retry)
        elif runs.scenario.id in self.expected_to_fail:
            what = "xfail" if runs.failed else "XPASS"
        else:
            what = "FAIL" if runs.failed else "pass"
        measured = [r.death_s for r in runs.results if r.death_s is not None]
        took = f" died at {', '.join(f'{m:.3f}' for m in measured)} s" if measured else ""
        line = f"gate: [{p.done}/{self.total}] {what:<5} {runs.scenario.id}{took}"
        if self.tty:
            self.out.write("\r\033[K" + line + "\n")
        elif what != "skip":  # off a terminal: the skips are listed once in the summary
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\r\033[K")
            self.out.flush()
