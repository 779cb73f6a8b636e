"""``netkit check-server``: does *your* server's keepalive drop a dead client in time?

::

    netkit check-server --port P [--expect-s S] [--ipv6] [--json] -- COMMAND [ARGS...]

The server is a real program, so netkit cannot read its socket options; it
watches the kernel instead (:mod:`netkit.diag`, sock_diag):

1. COMMAND starts inside the lab's server namespace (under pdeathsig, its
   output kept in a temporary file); we wait until it listens on P on the
   lab's server address or on a wildcard address.
2. A silent client connects from the client namespace.  Within
   ``KEEPALIVE_GRACE_S`` the server's socket for it must show a *keepalive*
   timer; if it does not, the verdict is "no keepalive timer on the socket; a
   dead client would stay forever" (exit 1) -- no waiting for a death that
   never comes.  ``idle`` is inferred from that timer: its expiry plus the
   time since the last segment received.
3. We wait for the first keepalive probe to be answered (the receive
   timestamp drops back), which anchors the measurement exactly like netkit's
   own scenarios: from the last segment received.  ``intvl`` is inferred there:
   the probe re-armed the timer for ``intvl``, and the reply came
   microseconds after the probe.
4. The client's veth end goes down (:class:`netkit.faults.LinkDown`).  Then we
   follow the server's socket: each probe (``idiag_retrans`` under a
   keepalive timer) and the moment the socket vanishes from sock_diag (the
   kernel unhashes a socket it kills, whether or not the program has closed
   it yet).  ``cnt`` is the number of probes outstanding at death, checked
   against the namespace's ``TcpExt TCPKeepAlive`` counter.

Polling is cheap (a dump costs ~1.5 ms) and sparse: we sleep until just
before the timer's requested expiry, then sample every ``POLL_S``.  So the
death is bracketed between the last dump that still saw the socket and the
first that did not; the verdict asks that bracket to meet the window.

Window.  With settings inferred, the window is netkit's model
(:func:`netkit.model.keepalive_death`): one jiffy early, late by the timer
wheel's accumulated rounding of every timer run plus two jiffies, capped by
packetdrill's 12.5 %.  ``--expect-s S`` is judged with the same tolerance
centred on S: ``[S - 1 jiffy, S + that lateness]`` (capped at 12.5 % of S);
if nothing could be inferred, the lateness is packetdrill's bound alone.

Exit status: 0 the death matched ``--expect-s`` (or, without it, was measured),
1 mismatch / no keepalive / no death / the server closed the connection
itself, 2 errors (the program would not start or listen, bad input).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from ..lab import counters
from ..lab.diag import TcpSocketDiag, accepts, find_connection, listeners, owners, tcp_sockets
from ..doctor import require_privileges
from ..errors import NetkitError, SettingError
from ..lab.faults import FaultContext, get_fault
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo, kernel_info
from ..lab.lab import CONNECT_TIMEOUT_S, Lab, family_number
from ..model import keepalive_death, packetdrill_bound_s

EXIT_MATCH, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2
POLL_S = 0.005  # sampling step near a timer's expiry
WAKE_EARLY_S = 0.05  # wake this long before a timer's requested expiry
LISTEN_POLL_S = 0.02
KEEPALIVE_GRACE_S = 1.0  # how long the accepted socket may take to show a keepalive timer
ANSWER_GRACE_S = 2.0  # after the first probe's expiry, how long its answer may take to be seen
STOP_GRACE_S = 5.0  # SIGTERM, then this long, then SIGKILL
OUTPUT_TAIL_CHARS = 2000
COUNTED = ("TCPKeepAlive", "TCPAbortOnTimeout")  # TcpExt counters of the server namespace, fault to death
NO_KEEPALIVE = "no keepalive timer on the socket; a dead client would stay forever"
HELP = {
    "port": "the TCP port the server listens on (inside the lab)",
    "expect_s": "the death you expect, in seconds after the last segment the server received "
                "(e.g. idle + intvl x cnt); exit 0 only if the measured death matches it",
    "ipv6": "connect over IPv6 (server 2001:2::1) instead of IPv4 (198.18.0.1)",
    "json": "print exactly one JSON object (the result) on stdout",
    "listen_timeout": "seconds to wait for the program to listen (default 10)",
    "timeout": "seconds to wait for the death after the link drop (default 600)",
    "command": "the server program and its arguments, after `--`; it must listen on the lab's server "
               "address (198.18.0.1 / 2001:2::1) or on any address, in the foreground",
}


class ServerProblem(NetkitError):
    """The program under test could not be started or would not listen (exit 2)."""


@dataclass(frozen=True)
class Event:
    """Something observed, timed from the last segment the server received (negative: before it)."""

    t_s: float
    what: str


@dataclass
class CheckResult:
    command: list[str]
    kernel: KernelInfo
    family: str
    port: int
    expect_s: float | None = None
    pid: int | None = None
    listening: list[str] = field(default_factory=list)
    server: str = ""  # address:port of the server's end of the tested connection
    client: str = ""
    timer_at_connect: dict[str, Any] | None = None  # sock_diag of the accepted socket, first look
    keepalive: bool = False
    inferred: dict[str, int] = field(default_factory=dict)  # idle, intvl, cnt
    inferred_from: dict[str, str] = field(default_factory=dict)
    rule: str | None = None  # netkit's model for the inferred settings
    model_expected_s: float | None = None
    model_window_s: tuple[float, float] | None = None
    fault_at_s: float | None = None
    measured_s: float | None = None  # first dump that no longer saw the socket
    dead_between_s: tuple[float, float] | None = None  # last dump that saw it .. first that did not
    probes: int | None = None  # keepalive probes outstanding at the last sight (idiag_retrans)
    counters: dict[str, int] = field(default_factory=dict)  # TcpExt deltas of the server namespace, link drop to death
    window_s: tuple[float, float] | None = None  # for --expect-s
    tolerance: str = ""
    timeline: list[Event] = field(default_factory=list)
    verdict: str = "error"  # match | mismatch | measured | no-keepalive | no-death | closed-by-server
    problems: list[str] = field(default_factory=list)
    program_exit: int | None = None
    program_output_tail: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_MATCH if self.verdict in ("match", "measured") else EXIT_MISMATCH

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kernel"] = self.kernel.release
        data["hz"] = self.kernel.hz
        data["exit_code"] = self.exit_code
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


# -- the program under test ---------------------------------------------------


def endpoint(address: str, port: int) -> str:
    """``198.18.0.1:6379``, ``[2001:2::1]:6379``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _descendants(pid: int) -> list[int]:
    """Pids of ``pid``'s children, grandchildren, ... (from /proc/*/stat)."""
    parent_of: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent_of[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, pp in parent_of.items() if pp in frontier]
        found += children
        frontier = children
    return found


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_program(proc: subprocess.Popen) -> int | None:
    """SIGTERM our program (and what it forked), SIGKILL whatever is left after STOP_GRACE_S.

    Only processes we started are signalled, by pid: ``proc`` itself and its
    descendants, listed before the signal while the tree is still intact.
    """
    forked = _descendants(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _signal(forked, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while any(os.path.exists(f"/proc/{p}") for p in forked) and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal([p for p in forked if os.path.exists(f"/proc/{p}")], signal.SIGKILL)
    return proc.returncode


def _tail(log: Any) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace")
    return text[-OUTPUT_TAIL_CHARS:].strip()


def _wait_listening(lab: Lab, proc: subprocess.Popen, log: Any, family: str, port: int,
                    timeout: float, argv: list[str]) -> list[TcpSocketDiag]:
    address = lab.server.address(family)
    deadline = time.monotonic() + timeout
    seen: list[TcpSocketDiag] = []
    while True:
        if proc.poll() is not None:
            raise ServerProblem(
                f"`{' '.join(argv)}` exited with status {proc.returncode} before listening on port {port}; "
                f"its output:\n{_tail(log) or '(none)'}\n(it must run in the foreground: no daemonizing)")
        seen = listeners(lab.server.namespace, port)
        usable = [s for s in seen if accepts(s, address)]
        if usable:
            return usable
        if time.monotonic() > deadline:
            where = ", ".join(endpoint(*s.local) for s in seen)
            hint = (f"it listens on {where} only: bind it to {address} or to any address" if seen
                    else "nothing listens on that port in the lab's server namespace")
            raise ServerProblem(
                f"`{' '.join(argv)}` did not listen on {address}:{port} within {timeout:g} s ({hint}); "
                f"its output so far:\n{_tail(log) or '(none)'}")
        time.sleep(LISTEN_POLL_S)


# -- watching the server's socket --------------------------------------------


class Watch:
    """Samples the server's socket for one 4-tuple through sock_diag."""

    def __init__(self, lab: Lab, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.lab = lab
        self.local = local
        self.remote = remote

    def sample(self) -> tuple[float, float, TcpSocketDiag | None]:
        """(monotonic time before the dump, after it, the socket or None)."""
        start = time.monotonic()
        found = find_connection(tcp_sockets(self.lab.server.namespace), self.local, self.remote)
        return start, time.monotonic(), found


def _sleep_until_near(expires_ms: int, sampled_at: float) -> None:
    wake = sampled_at + expires_ms / 1000 - WAKE_EARLY_S
    time.sleep(max(POLL_S, wake - time.monotonic()))


def _window_for_expectation(expect_s: float, settings: KeepaliveSettings | None, kernel: KernelInfo
                            ) -> tuple[tuple[float, float], str]:
    """[S - 1 jiffy, S + lateness]: the model's lateness for the inferred settings, else packetdrill's bound."""
    low = round(expect_s - kernel.jiffy_s, 6)
    if settings is None:
        late = packetdrill_bound_s(expect_s)
        how = (f"no keepalive settings could be inferred, so late by packetdrill's bound max(4 ms, 12.5 %) = "
               f"{late * 1000:.0f} ms, early by one jiffy ({kernel.jiffy_s * 1000:g} ms)")
    else:
        p = keepalive_death(settings, kernel)
        late = min(p.window_s[1] - p.expected_s, packetdrill_bound_s(expect_s))
        how = (f"early by one jiffy ({kernel.jiffy_s * 1000:g} ms); late by the timer wheel's rounding of the "
               f"{len(p.timer_runs_s)} timer runs of the inferred settings plus 2 jiffies, capped at 12.5 %: "
               f"{late * 1000:.0f} ms")
    return (low, round(expect_s + late, 6)), how


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def check_server(
    argv: list[str],
    port: int,
    family: str = "ipv4",
    expect_s: float | None = None,
    listen_timeout: float = 10.0,
    timeout: float = 600.0,
    on_event: Callable[[str], None] | None = None,
) -> CheckResult:
    """Run the whole check (see the module docstring); raises ServerProblem for exit-2 problems."""
    family_number(family)
    if not argv:
        raise SettingError("COMMAND", "", "give the server program after `--`")
    if not 1 <= port <= 65535:
        raise SettingError("port", port, "a TCP port is 1..65535")
    if expect_s is not None and not expect_s > 0:
        raise SettingError("--expect-s", expect_s, "a time in seconds > 0")
    if shutil.which(argv[0]) is None:
        raise ServerProblem(f"program {argv[0]!r} not found (not executable, or not on PATH)")
    say = on_event or (lambda _line: None)
    require_privileges()
    kernel = kernel_info()
    result = CheckResult(list(argv), kernel, family, port, expect_s)
    say(f"netkit check-server: `{' '.join(argv)}` in the lab's server namespace, port {port} over {family}; "
        f"kernel {kernel.release} (HZ={kernel.hz})")
    with tempfile.TemporaryFile() as log, Lab() as lab:
        proc = lab.server.namespace.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        result.pid = proc.pid

        def stop() -> None:
            result.program_exit = stop_program(proc)
            result.program_output_tail = _tail(log)

        lab.callback(stop)  # before the namespaces go, whatever happens
        address = lab.server.address(family)
        found = _wait_listening(lab, proc, log, family, port, listen_timeout, argv)
        by = owners([s.inode for s in found])
        result.listening = [f"{endpoint(*s.local)} (pids {', '.join(map(str, by.get(s.inode, []))) or '?'})"
                            for s in found]
        say(f"listening: {'; '.join(result.listening)}")

        client = lab.client.socket(family)
        lab.callback(client.close)
        client.settimeout(CONNECT_TIMEOUT_S)
        client.connect((address, port))
        client.settimeout(None)
        client_addr = client.getsockname()[:2]
        result.server, result.client = endpoint(address, port), endpoint(client_addr[0], client_addr[1])
        say(f"connected: silent client {result.client} -> server {result.server}")
        watch = Watch(lab, (address, port), (client_addr[0], client_addr[1]))

        # 2. a keepalive timer on the server's socket, or not
        first: TcpSocketDiag | None = None
        deadline = time.monotonic() + KEEPALIVE_GRACE_S
        while True:
            t0, t1, sock = watch.sample()
            if sock is not None:
                first = sock
                if sock.timer == "keepalive" and sock.info is not None:
                    break
            if time.monotonic() > deadline:
                break
            time.sleep(LISTEN_POLL_S)
        if first is None:
            result.verdict = "closed-by-server"
            result.problems.append("the server's socket for the client vanished right after the connect")
            return result
        result.timer_at_connect = first.to_dict()
        say(f"server's socket for it (sock_diag): {first.state}, {first.describe_timer()}")
        if first.timer != "keepalive":
            result.verdict = "no-keepalive"
            result.problems.append(f"{NO_KEEPALIVE} (sock_diag, {KEEPALIVE_GRACE_S:g} s after the connect: "
                                   f"{first.describe_timer()})")
            return result
        result.keepalive = True
        assert first.info is not None
        idle = max(1, round((first.expires_ms + first.info.last_ack_recv_ms) / 1000))
        result.inferred["idle"] = idle
        result.inferred_from["idle"] = (
            f"the keepalive timer right after the connect: expires in {first.expires_ms} ms, "
            f"{first.info.last_ack_recv_ms} ms after the last segment received")

        # 3. the first probe, answered: the anchor
        say(f"waiting for the first keepalive probe (~{first.expires_ms / 1000:.3f} s) to be answered...")
        _sleep_until_near(first.expires_ms, t0)
        answer_deadline = t1 + first.expires_ms / 1000 + ANSWER_GRACE_S + 0.125 * idle
        previous = None
        while True:
            t0, t1, sock = watch.sample()
            if sock is None:
                result.verdict = "closed-by-server"
                result.problems.append("the server closed the idle connection itself before the first keepalive probe "
                                       "(an application timeout, not keepalive)")
                return result
            assert sock.info is not None
            now = sock.info.last_ack_recv_ms
            if previous is not None and now < previous:
                break
            previous = now
            if proc.poll() is not None:
                raise ServerProblem(f"`{' '.join(argv)}` exited with status {proc.returncode} while we waited; "
                                    f"its output:\n{_tail(log) or '(none)'}")
            if time.monotonic() > answer_deadline:
                raise NetkitError(f"no keepalive probe was answered within {answer_deadline - t1:.1f} s "
                                  f"(sock_diag now: {sock.describe_timer()})")
            time.sleep(POLL_S)
        last_rcv = (t0 + t1) / 2 - sock.info.last_ack_recv_ms / 1000  # monotonic time of the probe's reply
        intvl = max(1, round((sock.expires_ms + sock.info.last_ack_recv_ms) / 1000))
        result.inferred["intvl"] = intvl
        result.inferred_from["intvl"] = (
            f"the timer the answered probe re-armed: next run in {sock.expires_ms} ms, "
            f"{sock.info.last_ack_recv_ms} ms after the reply")
        result.timeline.append(Event(0.0, f"last segment received (reply to a keepalive probe); next timer run in "
                                          f"{sock.expires_ms / 1000:.3f} s"))

        # 4. drop the client's link; follow the socket until it vanishes
        before = counters.tcpext_counts(lab.server.namespace, COUNTED)
        ctx = FaultContext(lab, family, lab.server, lab.client, client)
        fault = get_fault("link-down")
        fault.apply(ctx)
        result.fault_at_s = round(time.monotonic() - last_rcv, 3)
        result.timeline.append(Event(result.fault_at_s, f"link down: {fault.description}"))
        say(f"  {result.fault_at_s:7.3f} s  link down (client's veth end); time since the last segment received:")
        seen = (sock.timer, sock.retrans)
        last_seen, last = t0, sock
        give_up = time.monotonic() + timeout
        while True:
            t0, t1, sock = watch.sample()
            if sock is None:
                gone = t1
                break
            last_seen, last = t0, sock
            if (sock.timer, sock.retrans) != seen:
                seen = (sock.timer, sock.retrans)
                what = (f"probe {sock.retrans} sent, unanswered" if sock.timer == "keepalive"
                        else sock.describe_timer())
                event = Event(round(t0 - last_rcv, 3), f"{what} (sock_diag: next run in {sock.expires_ms / 1000:.3f} s)")
                result.timeline.append(event)
                say(f"  {event.t_s:7.3f} s  {event.what}")
            if time.monotonic() > give_up:
                result.verdict = "no-death"
                result.problems.append(f"the server's socket was still there {timeout:g} s after the link drop "
                                       f"({sock.state}, {sock.describe_timer()})")
                return result
            if proc.poll() is not None:
                raise ServerProblem(f"`{' '.join(argv)}` exited with status {proc.returncode} during the check; "
                                    f"its output:\n{_tail(log) or '(none)'}")
            if sock.expires_ms / 1000 > 2 * WAKE_EARLY_S:
                _sleep_until_near(sock.expires_ms, t0)
            else:
                time.sleep(POLL_S)
        after = counters.tcpext_counts(lab.server.namespace, COUNTED)
        result.counters = {name: after[name] - before[name] for name in COUNTED}
        result.measured_s = round(gone - last_rcv, 3)
        result.dead_between_s = (round(last_seen - last_rcv, 3), result.measured_s)
        result.probes = last.retrans if last.timer == "keepalive" else None
        result.timeline.append(Event(result.measured_s, "socket gone from sock_diag: the kernel killed it"))
        say(f"  {result.measured_s:7.3f} s  socket gone (killed by the kernel; last seen at "
            f"{result.dead_between_s[0]:.3f} s)")

    # 5. what it means
    sent = result.counters.get("TCPKeepAlive")
    settings = None
    if result.probes:
        result.inferred["cnt"] = result.probes
        result.inferred_from["cnt"] = (f"probes outstanding at the last sight of the socket (idiag_retrans); "
                                       f"TcpExt TCPKeepAlive counted {sent} sent")
        if sent != result.probes:
            result.problems.append(f"sock_diag saw {result.probes} probes out but TcpExt TCPKeepAlive counted {sent}")
        settings = KeepaliveSettings(result.inferred["idle"], result.inferred["intvl"], result.probes)
        p = keepalive_death(settings, kernel)
        result.rule, result.model_expected_s, result.model_window_s = p.rule, p.expected_s, p.window_s
        if not _overlaps(result.dead_between_s, p.window_s):
            result.problems.append(
                f"the death ({result.dead_between_s[0]:.3f}..{result.measured_s:.3f} s) is outside netkit's window "
                f"[{p.window_s[0]:.3f}, {p.window_s[1]:.3f}] s for the inferred settings (TCP_USER_TIMEOUT set?)")
    if expect_s is None:
        result.verdict = "measured"
        return result
    result.window_s, result.tolerance = _window_for_expectation(expect_s, settings, kernel)
    result.verdict = "match" if _overlaps(result.dead_between_s, result.window_s) else "mismatch"
    return result


# -- the command ----------------------------------------------------------------


def _print_human(result: CheckResult, out: TextIO) -> None:
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


def cmd_check_server(args: argparse.Namespace) -> int:
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    out = sys.stdout
    family = "ipv6" if args.ipv6 else "ipv4"

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        result = check_server(argv, args.port, family, args.expect_s, args.listen_timeout, args.timeout,
                              on_event=None if args.json else say)
    except (NetkitError, OSError) as exc:  # ServerProblem, SettingError, EnvironmentUnusable, a failed connect...
        if args.json:
            print(json.dumps({"verdict": "error", "error": str(exc), "command": argv, "exit_code": EXIT_ERROR}), file=out)
        print(f"netkit check-server: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(result.to_json(), file=out)
    else:
        _print_human(result, out)
        print(f"server stopped (exit status {result.program_exit}); lab torn down", file=out)
    return result.exit_code


def add_parser(sub: Any) -> None:
    """Register ``check-server`` on the CLI's subparsers."""
    p = sub.add_parser("check-server", help="does a real server's keepalive drop a dead client? (runs it in a lab)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True, help=HELP["port"])
    p.add_argument("--expect-s", type=float, metavar="S", help=HELP["expect_s"])
    p.add_argument("--ipv6", action="store_true", help=HELP["ipv6"])
    p.add_argument("--json", action="store_true", help=HELP["json"])
    p.add_argument("--listen-timeout", type=float, default=10.0, metavar="S", help=HELP["listen_timeout"])
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help=HELP["timeout"])
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]", help=HELP["command"])
    p.set_defaults(func=cmd_check_server)
