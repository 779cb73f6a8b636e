"""What a program audit's measurement means: settings inferred, the model's window, the verdict. Pure.

:func:`conclude` judges check-server's measurement; :func:`classify` and :func:`conclude_client`, check-client's.
"""

from __future__ import annotations

from typing import Any

from ..evidence.ledger_check import rule_failures
from ..evidence.timecheck import check_time
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from ..model.expectation import window_for_expectation
from ..model.keepalive import keepalive_death, reset_at_first_probe
from ..model.prediction import DeathPrediction
from .infer import infer_cnt
from .result import NO_KEEPALIVE_CLIENT, CheckResult, ClientCheckResult

OUTSIDE_MODEL = ("the death ({first:.3f}..{last:.3f} s) is outside netkit's window [{low:.3f}, {high:.3f}] s "
                 "for the inferred settings (TCP_USER_TIMEOUT set?)")
OUTSIDE_READ_MODEL = ("the death ({first:.3f}..{last:.3f} s) is outside netkit's window [{low:.3f}, {high:.3f}] s "
                      "for the settings read off the socket")


def conclude(r: CheckResult, kernel: KernelInfo) -> CheckResult:
    """Fill in ``cnt``, the model's rule and window, the expectation's window and the verdict (a death was seen).

    The settings judged by are the socket's own where netkit read them (with
    its TCP_USER_TIMEOUT, which ends the probes before ``cnt`` can), else
    the inferred ones with the probes out at death as ``cnt``.  The death
    judged is the kernel's own moment where the program's socket was traced
    (``judged_s``), else sock_diag's bracket; the ledger's keepalive re-arms
    are checked against ``intvl`` to the jiffy.
    """
    judged = r.judged_s
    assert judged is not None
    sent = r.counters.get("TCPKeepAlive")
    read = r.options if r.options is not None and r.options["keepalive"] else None
    p = None
    if r.probes:
        if read is None or not read["user_timeout_ms"]:  # with a user timeout the probes out are not the count
            r.inferred["cnt"] = r.probes
            r.inferred_from["cnt"] = infer_cnt(r.probes, sent)
        if sent != r.probes:
            r.problems.append(f"sock_diag saw {r.probes} probes out but TcpExt TCPKeepAlive counted {sent}")
        settings = (read_settings(read) if read is not None
                    else KeepaliveSettings(r.inferred["idle"], r.inferred["intvl"], r.probes))
        p = keepalive_death(settings, kernel)
        r.rule, r.model_expected_s, r.model_window_s = p.rule, p.expected_s, p.window_s
        windows = [window for window, _ in p.outcomes()]
        text = OUTSIDE_MODEL if read is None else OUTSIDE_READ_MODEL
        outside = check_time("the death", windows, judged, rule=p.rule, early=text, late=text)
        if outside:
            r.problems.append(str(outside))
    if read is not None:
        compare_inferred(r.inferred, read, skip_cnt=bool(read["user_timeout_ms"]), problems=r.problems)
    if r.ledger is not None:
        failures = rule_failures(r.ledger, r.inferred.get("intvl"), r.probes, r.inferred.get("idle"))
        r.rule_failures = [str(f) for f in failures]
        r.problems += r.rule_failures
    if r.expect_s is None:
        r.verdict = "measured"
        return r
    r.window_s, r.tolerance = window_for_expectation(r.expect_s, p, kernel)
    r.verdict = "mismatch" if check_time("the death", r.window_s, judged) else "match"
    return r


# ---------------------------------------------------------------------------------------------------------------
# check-client

KERNEL_NOTICED = ("keepalive", "user-timeout", "peer-reset")  # the causes the keepalive model predicts
CLIENT_OUTSIDE_MODEL = ("the client's socket died {first:.3f}..{last:.3f} s after the last segment received, outside "
                        "netkit's window [{low:.3f}, {high:.3f}] s for its settings")


def classify(end: str, last_timer: str, counters: dict[str, int], exited: bool, user_timeout_ms: int) -> str:
    """How the client found out (one of ``CAUSES``), from what the follow saw. Pure.

    ``end``: "gone" (the socket vanished from sock_diag), "closed" (still
    there, but no longer ESTABLISHED: the client closed it, FIN queued) or
    "none" (still established at the end of the wait).  A socket the kernel
    killed on a timer went through ``tcp_write_err``, which counts
    ``TCPAbortOnTimeout``; one the client closed with a RST counts
    ``TCPAbortOnClose`` (unread data) or ``TCPAbortOnData`` (SO_LINGER 0);
    what vanished with neither was reset by the other side (``tcp_reset``).
    ``exited``: the process had exited by the first look that saw the end.
    """
    if end == "none":
        return "none"
    if end == "closed":
        return "application-exit" if exited else "application-fin"
    if counters.get("TCPAbortOnTimeout"):
        if last_timer == "keepalive":
            return "user-timeout" if user_timeout_ms else "keepalive"
        return "retransmission"
    if counters.get("TCPAbortOnClose") or counters.get("TCPAbortOnData"):
        return "application-exit" if exited else "application-reset"
    return "peer-reset"


def read_settings(options: dict[str, Any]) -> KeepaliveSettings:
    """The keepalive settings a socket holds, from its options as an audit read them (TCP_USER_TIMEOUT 0: not set)."""
    return KeepaliveSettings(options["idle"], options["intvl"], options["cnt"], options["user_timeout_ms"] or None)


def client_settings(r: ClientCheckResult) -> KeepaliveSettings | None:
    """The keepalive settings to judge by: read off the socket if netkit could, else inferred (all three), else None."""
    o = r.options
    if o is not None:
        return read_settings(o) if o["keepalive"] else None
    if all(k in r.inferred for k in ("idle", "intvl", "cnt")):
        return KeepaliveSettings(r.inferred["idle"], r.inferred["intvl"], r.inferred["cnt"])
    return None


def client_prediction(settings: KeepaliveSettings, fault: str, last_segment: str, kernel: KernelInfo) -> DeathPrediction:
    """The keepalive model for the client's settings: the peer's RST at the first probe (peer-reboot), else the rule."""
    if fault == "peer-reboot":
        return reset_at_first_probe(settings, kernel, last_segment)
    return keepalive_death(settings, kernel, last_segment)


def conclude_client(r: ClientCheckResult, kernel: KernelInfo) -> ClientCheckResult:
    """Fill in the model's rule and window, check the settings and the death against them, and the verdict."""
    settings = client_settings(r)
    p = client_prediction(settings, r.fault, r.last_segment, kernel) if settings and r.keepalive else None
    if p is None and r.cause == "peer-reset" and r.keepalive and "idle" in r.inferred and r.last_segment == "idle":
        # options unread, and the RST ended it at probe 1, which leaves at idle: intvl and cnt play no part
        p = reset_at_first_probe(KeepaliveSettings(r.inferred["idle"]), kernel, "idle")
    if p is not None:
        r.rule, r.model_expected_s, r.model_window_s = p.rule, p.expected_s, p.window_s
    if r.options is not None:
        compare_inferred(r.inferred, r.options, skip_cnt=r.cause != "keepalive" or bool(r.options["user_timeout_ms"]),
                         problems=r.problems)
    if r.cause == "none":
        answered = r.counters.get("TCPKeepAlive", 0)
        if r.middlebox_timeout_s is not None and r.keepalive and answered and not r.probes:
            r.verdict = "survived"  # the probes crossed the router, were answered, and kept its entry
            return r
        if not r.keepalive:
            r.verdict = "no-keepalive"
            r.problems.insert(0, f"{NO_KEEPALIVE_CLIENT} (still connected {r.max_wait_s:g} s after the break)")
        else:
            r.verdict = "no-death"
            beyond = (f"; its keepalive would notice at {p.expected_s:g} s after the last segment received"
                      if p is not None else "")
            r.problems.insert(0, f"still connected {r.max_wait_s:g} s after the break (--max-wait){beyond}")
        return r
    judged = r.judged_s
    assert judged is not None
    if r.cause in KERNEL_NOTICED and p is not None:
        windows = [window for window, _ in p.outcomes()]
        outside = check_time("the death", windows, judged, rule=p.rule,
                             early=CLIENT_OUTSIDE_MODEL, late=CLIENT_OUTSIDE_MODEL)
        if outside:
            r.problems.append(str(outside))
    elif r.cause.startswith("application") and p is not None and r.measured_s is not None and \
            r.measured_s < p.expected_s:
        r.problems.append(f"the client gave up by itself before its keepalive would have noticed "
                          f"({p.expected_s:g} s after the last segment received)")
    if r.ledger is not None and settings is not None and r.cause in ("keepalive", "user-timeout"):
        r.rule_failures = [str(f) for f in rule_failures(r.ledger, settings.intvl, r.probes, settings.idle)]
        r.problems += r.rule_failures
    if r.expect_s is None:
        r.verdict = "measured"
        return r
    r.window_s, r.tolerance = window_for_expectation(r.expect_s, p if r.cause in KERNEL_NOTICED else None, kernel)
    r.verdict = "mismatch" if check_time("the death", r.window_s, judged) else "match"
    return r


def compare_inferred(inferred: dict[str, int], options: dict[str, Any], skip_cnt: bool, problems: list[str]) -> None:
    """A value inferred from the timers that differs from the one read off the socket is a problem worth naming.

    ``skip_cnt``: the probes out at death are the count only when keepalive's
    count ended it (not a user timeout, not a reset, not the program).
    """
    for name, value in inferred.items():
        if name == "cnt" and skip_cnt:
            continue
        if options["keepalive"] and options[name] != value:
            problems.append(f"{name} inferred from the timers is {value}, but the socket holds {options[name]}")
