"""A program audit's result as text: check-server's closing lines, check-client's report (verdict first)."""

from __future__ import annotations

import shlex
import signal
from typing import TextIO

from ..check.result import NO_KEEPALIVE, SET_ON_SOCKET, CheckResult, ClientCheckResult
from ..check.verdict import client_settings
from ..keepalive import KEEPALIVE_SYSCTLS
from ..model.rto import DEFAULT_RTO_MAX_MS
from .text import timer_ledger_lines


def ended(status: int | None) -> str:
    """A program's end in words: "exit status 0", or "stopped by SIGTERM" for Python's negative return code."""
    if status is None:
        return "exit status unknown"
    if status < 0:
        try:
            return f"stopped by {signal.Signals(-status).name}"
        except ValueError:
            return f"stopped by signal {-status}"
    return f"exit status {status}"


def evidence_lines(r: CheckResult | ClientCheckResult, intvl_s: int | None) -> list[str]:
    """The program's socket's timer ledger (``intvl_s``: the settings' interval, shown beside its re-arms), or why
    there is none."""
    if r.ledger is None:
        return [f"  evidence: observer ({r.evidence_note or 'no timer ledger'})"]
    if not r.ledger.armings and not r.ledger.runs:  # traced, but its end was not a keepalive timer's (data, a close)
        return ["  evidence: trace, but no keepalive timer of the socket ran after t = 0: judged from sock_diag"]
    return timer_ledger_lines(r.ledger, None if intvl_s is None else intvl_s * r.ledger.hz, "the last segment received")


def died_s(r: CheckResult | ClientCheckResult) -> float | None:
    """The death as judged: the kernel's CLOSE where the ledger has it, else sock_diag's first look without it."""
    return r.kernel_death_s if r.kernel_death_s is not None else r.measured_s


def print_check(result: CheckResult, out: TextIO) -> None:
    """The inferred settings, the rule, the verdict and the notes."""
    inf = result.inferred
    if result.verdict == "no-keepalive":
        print(f"verdict: NO KEEPALIVE - {NO_KEEPALIVE}", file=out)
        for problem in result.problems[1:]:  # the first is the verdict's own sentence, with sock_diag's view
            print(f"  note: {problem}", file=out)
        return
    if result.verdict == "closed-by-server":
        print(f"verdict: CLOSED BY SERVER - {'; '.join(result.problems)}", file=out)
        return
    if result.accept_deferred_s is not None:
        print(f"accept deferred (TCP_DEFER_ACCEPT): the connection was accepted {result.accept_deferred_s:.3f} s after "
              "the connect", file=out)
    print(options_line(result), file=out)
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
    print("\n".join(evidence_lines(result, result.inferred.get("intvl"))), file=out)
    if result.kernel_death_s is not None and result.measured_s is not None:
        when = (f"died {result.kernel_death_s:.3f} s after the last segment received (the kernel's CLOSE in its "
                f"keepalive timer's run; sock_diag saw it gone at {result.measured_s:.3f} s)")
    elif result.dead_between_s:
        when = (f"died {result.measured_s:.3f} s after the last segment received "
                f"(last seen {result.dead_between_s[0]:.3f} s)")
    measured = (f"{when}; {result.probes} probes (sock_diag), {result.counters.get('TCPKeepAlive')} sent "
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


# ---------------------------------------------------------------------------------------------------------------
# check-client: the verdict first, then the evidence


def _settings_text(r: ClientCheckResult) -> str:
    """``idle 1 s, intvl 1 s, cnt 9 from net.ipv4.tcp_keepalive_probes``: the settings judged by, and their source."""
    s = client_settings(r)
    if s is None:
        return ""
    parts = []
    for name, value, unit in (("idle", s.idle, " s"), ("intvl", s.intvl, " s"), ("cnt", s.cnt, "")):
        source = r.options_from.get(name, "")
        if r.options is None:  # inferred: the namespace's value may be where it came from, unproved
            inherited = f" = the client namespace's {KEEPALIVE_SYSCTLS[name]}" if r.namespace_sysctls.get(name) == value else ""
        elif source and source != SET_ON_SOCKET:
            inherited = f" from the client namespace's {source.rstrip('?')}"
        else:
            inherited = ""
        parts.append(f"{name} {value}{unit}{inherited}")
    if s.user_timeout_ms:
        parts.append(f"TCP_USER_TIMEOUT {s.user_timeout_ms} ms")
    how = "read off the socket" if r.options is not None else "inferred from its timers"
    return f"{', '.join(parts)}; {how}"


def found_out(r: ClientCheckResult) -> str:
    """How the client noticed, in words: the middle of the verdict line."""
    settings = _settings_text(r)
    if r.cause == "keepalive":
        return f"by the kernel's keepalive: {r.probes} unanswered probes ({settings})"
    if r.cause == "user-timeout":
        return f"by TCP_USER_TIMEOUT on the keepalive probes: {r.probes} unanswered ({settings})"
    if r.cause == "retransmission":
        ut = (r.options or {}).get("user_timeout_ms")
        ended_by = f"TCP_USER_TIMEOUT {ut} ms" if ut else "tcp_retries2 or TCP_USER_TIMEOUT"
        rto_max = (r.options or {}).get("rto_max_ms")
        if rto_max is not None and rto_max != DEFAULT_RTO_MAX_MS:
            ended_by += f", the backoff capped at TCP_RTO_MAX_MS {rto_max} ms"
        return (f"by the retransmission timeout ({ended_by}; it counts from the send, not from t = 0): "
                f"{r.retransmissions} retransmissions of data it sent after the break")
    if r.cause == "peer-reset":
        return (f"by the RST with which the server's side answered its first keepalive probe (ECONNRESET; {settings})"
                if r.keepalive and settings else "by a RST from the server's side (ECONNRESET)")
    if r.cause == "application-exit":
        return f"by itself: its process exited ({ended(r.program_exit)})"
    if r.cause == "application-fin":
        return f"by itself: it closed the socket (FIN queued; {r.state_after}) and kept running"
    if r.cause == "application-reset":
        return "by itself: it closed the socket with a RST (unread data or SO_LINGER 0)"
    return "not at all"


def client_verdict_line(r: ClientCheckResult) -> str:
    """The one-line verdict (the first line of check-client's report)."""
    if r.verdict in ("no-keepalive", "no-death"):
        return f"verdict: {r.verdict.upper().replace('-', ' ')} - {r.problems[0]}"
    if r.verdict == "survived":
        return (f"verdict: SURVIVED - still connected {r.max_wait_s:g} s after the last segment it received, behind a "
                f"router that forgets a flow idle for {r.middlebox_timeout_s} s: its keepalive probes "
                f"({r.counters.get('TCPKeepAlive', 0)} sent, all answered) kept the router's entry "
                f"({_settings_text(r)})")
    noticed = ("the broken path (the router had forgotten the flow)" if r.middlebox_timeout_s is not None
               else "the dead server")
    line = (f"verdict: {r.verdict.upper()} - the client noticed {noticed} {died_s(r):.3f} s after the last "
            f"segment it received, {found_out(r)}")
    if r.window_s is not None:
        line += f"; expected {r.expect_s:g} s, window [{r.window_s[0]:.3f}, {r.window_s[1]:.3f}] s"
    return line


def options_line(r: CheckResult | ClientCheckResult) -> str:
    """The socket's options as read off it, each keepalive value with where it comes from (or why they are unread)."""
    if r.options is None:
        return f"socket options: not read: {r.options_unread}"
    o, names = r.options, {"idle": "TCP_KEEPIDLE", "intvl": "TCP_KEEPINTVL", "cnt": "TCP_KEEPCNT"}
    parts = [f"SO_KEEPALIVE {'on' if o['keepalive'] else 'off'}"]
    for name, option in names.items():
        source = r.options_from.get(name, "")
        origin = ("set on the socket" if source == SET_ON_SOCKET
                  else f"= {source.rstrip('?')}, not proved" if source.endswith("?")
                  else f"inherited from {source}")
        parts.append(f"{option} {o[name]}{' s' if name != 'cnt' else ''} ({origin})")
    parts.append(f"TCP_USER_TIMEOUT {o['user_timeout_ms']} ms" if o["user_timeout_ms"] else "TCP_USER_TIMEOUT not set")
    rto_max = o.get("rto_max_ms")  # None: a kernel before 6.15, no such option
    if rto_max is not None:
        parts.append(f"TCP_RTO_MAX_MS {rto_max} ms" + (" (the kernel's default)" if rto_max == DEFAULT_RTO_MAX_MS else ""))
    return "socket options (borrowed with pidfd_getfd, read with getsockopt): " + ", ".join(parts)


def print_client_check(r: ClientCheckResult, out: TextIO) -> None:
    """The verdict line, then the client, its socket's options, the inferred settings, the rule and the timeline."""
    lines = [client_verdict_line(r),
             f"client: `{shlex.join(r.started)}` (pid {r.pid}), {r.client} -> silent server {r.server} over {r.family}",
             options_line(r)]
    if r.inferred:
        lines.append("inferred from the kernel's timers: " + " ".join(
            f"{k}={r.inferred[k]}{'s' if k != 'cnt' else ''}" for k in ("idle", "intvl", "cnt") if k in r.inferred))
        lines += [f"  {k}: {r.inferred_from[k]}" for k in ("idle", "intvl", "cnt") if k in r.inferred_from]
    if r.rule:
        low, high = r.model_window_s or (0, 0)
        lines.append(f"rule: {r.rule}; netkit's window [{low:.3f}, {high:.3f}] s")
    lines.append("timeline (s since the last segment the client received):")
    lines += [f"  {e.t_s:8.3f} s  {e.what}" for e in r.timeline]
    settings = client_settings(r)
    lines += evidence_lines(r, None if settings is None else settings.intvl)
    if r.tolerance:
        lines.append(f"tolerance: {r.tolerance}")
    lines += [f"note: {p}" for p in r.problems[1 if r.verdict in ('no-keepalive', 'no-death') else 0:]]
    if r.program_output_tail:
        lines.append("the client's output (its end):")
        lines += [f"  {line}" for line in r.program_output_tail.splitlines()[-5:]]
    print("\n".join(lines), file=out)
