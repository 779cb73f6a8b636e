"""What a program audit's measurement means: settings inferred, the model's window, the verdict. Pure."""

from __future__ import annotations

from ..evidence.timecheck import check_time
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from ..model.keepalive import keepalive_death
from .infer import infer_cnt, window_for_expectation
from .result import CheckResult

OUTSIDE_MODEL = ("the death ({first:.3f}..{last:.3f} s) is outside netkit's window [{low:.3f}, {high:.3f}] s "
                 "for the inferred settings (TCP_USER_TIMEOUT set?)")


def conclude(r: CheckResult, kernel: KernelInfo) -> CheckResult:
    """Fill in ``cnt``, the model's rule and window, the expectation's window and the verdict (a death was seen)."""
    assert r.dead_between_s is not None
    sent = r.counters.get("TCPKeepAlive")
    settings = None
    if r.probes:
        r.inferred["cnt"] = r.probes
        r.inferred_from["cnt"] = infer_cnt(r.probes, sent)
        if sent != r.probes:
            r.problems.append(f"sock_diag saw {r.probes} probes out but TcpExt TCPKeepAlive counted {sent}")
        settings = KeepaliveSettings(r.inferred["idle"], r.inferred["intvl"], r.probes)
        p = keepalive_death(settings, kernel)
        r.rule, r.model_expected_s, r.model_window_s = p.rule, p.expected_s, p.window_s
        outside = check_time("the death", p.window_s, r.dead_between_s, rule=p.rule,
                             early=OUTSIDE_MODEL, late=OUTSIDE_MODEL)
        if outside:
            r.problems.append(str(outside))
    if r.expect_s is None:
        r.verdict = "measured"
        return r
    r.window_s, r.tolerance = window_for_expectation(r.expect_s, settings, kernel)
    r.verdict = "mismatch" if check_time("the death", r.window_s, r.dead_between_s) else "match"
    return r
