"""netkit's exit statuses: one meaning each, the same for every command (the docs' table).

``netkit demo``, ``doctor``, ``cleanup``, ``inspect``, ``check-server``,
``check-client``, ``gallery``, ``kernels`` and ``gate`` (``diff``, ``merge``)
all answer with these; a shell script or a CI job reads them, so a number never
changes its meaning between subcommands.

======  =====================================================  ==================
status  netkit                                                 kselftest's
======  =====================================================  ==================
0       pass (the proof passed; ``doctor``: netkit can run)     PASS (the same)
1       fail (the kernel did not do what the rule says)        FAIL (the same)
2       bad input or usage (argparse's own 2 too)              XFAIL (*not* this)
3       inconclusive (the gate: the machine ran late twice)    XPASS (*not* this)
4       cannot run here (nothing could run on this machine)    SKIP (the same)
130     interrupted (Ctrl-C); the labs were torn down          --
143     terminated (SIGTERM); the labs were torn down          --
======  =====================================================  ==================

kselftest's codes are ``KSFT_PASS 0``, ``KSFT_FAIL 1``, ``KSFT_XFAIL 2``,
``KSFT_XPASS 3``, ``KSFT_SKIP 4`` (tools/testing/selftests/kselftest.h): 0, 1
and 4 mean what they mean there; netkit's 2 and 3 do not.  netkit never exits
with kselftest's XFAIL or XPASS: an expected failure (a known difference) is
reported in the gate's documents and exits 0, an unexpected pass exits 0 too.

4, *cannot run here*, is one meaning for every command: no privileges (not
root, no CAP_NET_ADMIN / CAP_SYS_ADMIN), no network namespaces, a kernel
feature the run needs missing (so nothing could be proven), ``doctor``'s
"netkit cannot run here", a gallery whose programs are not installed.  Not a
failure: a CI job may allow it (kselftest's skip).  2 is for what the person
typed: a bad option, a file netkit cannot read, a combination netkit has no
rule for (:class:`netkit.errors.NotModelled`: no machine would run it).

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
EXIT_BAD_INPUT = 2  # bad input or usage (an option, a file, a combination with no rule): argparse's 2 too
EXIT_INCONCLUSIVE = 3  # the gate could not judge: a scenario was machine late, and again on its retry (not the kernel)
EXIT_CANNOT_RUN_HERE = 4  # nothing could run on this machine (no privileges, no netns, a missing kernel feature): SKIP
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); the labs were torn down
EXIT_TERMINATED = 143  # SIGTERM (128 + 15); the labs were torn down

__all__ = ["EXIT_BAD_INPUT", "EXIT_CANNOT_RUN_HERE", "EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_INTERRUPTED", "EXIT_PASS",
           "EXIT_TERMINATED"]
