"""A program audit's result as text (check-server's closing lines)."""

from __future__ import annotations

from typing import TextIO

from ..check.result import NO_KEEPALIVE, CheckResult


def print_check(result: CheckResult, out: TextIO) -> None:
    """The inferred settings, the rule, the verdict and the notes."""
    inf = result.inferred
    if result.verdict == "no-keepalive":
        print(f"verdict: NO KEEPALIVE - {NO_KEEPALIVE}", file=out)
        return
    if result.verdict == "closed-by-server":
        print(f"verdict: CLOSED BY SERVER - {'; '.join(result.problems)}", file=out)
        return
    if inf:
        parts = [f"{k}={inf[k]}{'s' if k != 'cnt' else ''}" for k in ("idle", "intvl", "cnt") if k in inf]
        print(f"inferred keepalive: {' '.join(parts)}", file=out)
        for k in ("idle", "intvl", "cnt"):
            if k in result.inferred_from:
                print(f"  {k}: {result.inferred_from[k]}", file=out)
    if result.rule:
        low, high = result.model_window_s or (0, 0)
        print(f"rule: {result.rule}; netkit's window [{low:.3f}, {high:.3f}] s", file=out)
    if result.verdict == "no-death":
        print(f"verdict: NO DEATH - {'; '.join(result.problems)}", file=out)
        return
    measured = (f"died {result.measured_s:.3f} s after the last segment received "
                f"(last seen {result.dead_between_s[0]:.3f} s); "
                f"{result.probes} probes (sock_diag), {result.counters.get('TCPKeepAlive')} sent "
                f"(TcpExt TCPKeepAlive)") if result.dead_between_s else "no death"
    if result.verdict == "measured":
        print(f"verdict: MEASURED - {measured}", file=out)
    else:
        low, high = result.window_s or (0, 0)
        print(f"verdict: {result.verdict.upper()} - {measured}; expected {result.expect_s:g} s, "
              f"window [{low:.3f}, {high:.3f}] s", file=out)
        print(f"  tolerance: {result.tolerance}", file=out)
    for problem in result.problems:
        print(f"  note: {problem}", file=out)
