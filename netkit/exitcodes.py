"""netkit's exit statuses: one meaning each, the same for every command (the README's table).

``netkit demo``, ``doctor``, ``cleanup``, ``inspect``, ``check-server``,
``check-client`` and ``gate`` all answer with these; a shell script or a CI
job reads them, so a number never changes its meaning between subcommands.

3 is the gate's *inconclusive*: neither a pass (nothing was proven) nor a
failure (the kernel kept the rule; the machine ran its timers late, measured
by the timer ledger, on the run and on its retry).  A CI can rerun the job or
treat it as a warning, but should not page anyone about the kernel.  The
precedence when a gate has several outcomes: 1 (fail, error, regression)
over 3 (inconclusive) over 0.
"""

from __future__ import annotations

EXIT_PASS = 0  # the proof passed, the audit matched, the report was printed (doctor: netkit can run here)
EXIT_FAIL = 1  # a failed proof, a mismatch, a gate failure or regression: the kernel did not do what the rule says
EXIT_UNUSABLE = 2  # bad input, or a machine netkit cannot run on (doctor: it cannot run here): the message says why
EXIT_INCONCLUSIVE = 3  # the gate could not judge: a scenario was machine late, and again on its retry (not the kernel)
EXIT_NOTHING_RAN = 4  # the gate could run nothing here (no privileges, no network namespaces): kselftest's skip
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); the labs were torn down
EXIT_TERMINATED = 143  # SIGTERM (128 + 15); the labs were torn down

__all__ = ["EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_INTERRUPTED", "EXIT_NOTHING_RAN", "EXIT_PASS", "EXIT_TERMINATED",
           "EXIT_UNUSABLE"]
