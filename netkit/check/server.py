"""``netkit check-server``: does *your* server's keepalive drop a dead client in time?

::

    netkit check-server --port P [--expect-s S] [--ipv6] [--json] -- COMMAND [ARGS...]

The server is a real program: netkit watches the kernel (:mod:`netkit.lab.diag`,
sock_diag) and reads its socket's options where ``pidfd_getfd`` is allowed:

1. COMMAND starts inside the lab's server namespace (under pdeathsig, its
   output kept in a temporary file); we wait until it listens on P on the
   lab's server address or on a wildcard address.
2. A silent client connects from the client namespace.  A server that
   defers the accept (``TCP_DEFER_ACCEPT``: pgbouncer's default, nginx's
   ``deferred``) leaves the connection a request (SYN_RECV) until data
   arrives, which a silent client never sends, or until the deferral's
   SYN-ACK retransmissions run out; we wait for the accept then.  Within
   ``KEEPALIVE_GRACE_S`` of it the server's socket must show a *keepalive*
   timer; if it does not, the verdict is "no keepalive timer on the socket; a
   dead client would stay forever" (exit 1) -- no waiting for a death that
   never comes.  ``idle`` is inferred from that timer: its expiry plus the
   time since the last segment received.  The socket's options are read off
   it as check-client reads a client's (borrowed with ``pidfd_getfd`` from
   whichever process holds it, :mod:`.options`): a ``TCP_USER_TIMEOUT``
   that ends the probes before ``cnt`` does is then the rule judged by, not
   a smaller count inferred from the probes.
3. We wait for the first keepalive probe to be answered (the receive
   timestamp drops back), which anchors the measurement exactly like netkit's
   own scenarios: from the last segment received.  ``intvl`` is inferred there:
   the probe re-armed the timer for ``intvl``, and the reply came
   microseconds after the probe.
4. The client's veth end goes down (:class:`netkit.lab.faults.LinkDown`).  Then we
   follow the server's socket: each probe (``idiag_retrans`` under a
   keepalive timer) and the moment the socket vanishes from sock_diag (the
   kernel unhashes a socket it kills, whether or not the program has closed
   it yet).  ``cnt`` is the number of probes outstanding at death, checked
   against the namespace's ``TcpExt TCPKeepAlive`` counter.

The pieces are reusable (a ``check-client`` is the same composition from the
other side): :mod:`.program` starts and stops the program, :mod:`.follow`
follows one socket through sock_diag (one poll helper; the death is
bracketed between the last dump that saw the socket and the first that did
not), :mod:`.infer` reads the settings off the timers, :mod:`.verdict` judges
the bracket against the window.  Argument parsing and printing are
:mod:`netkit.cli.check_server`.

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

import shlex
import socket
import time
from collections.abc import Callable

from ..enums import EventKind, FaultName, family_of
from ..errors import NetkitError, ProgramProblem, SettingError
from ..evidence.events import SAMPLED, Event
from ..kernel import kernel_info
from ..lab import counters
from ..lab.faults import FaultContext, get_fault
from ..lab.lab import CONNECT_TIMEOUT_S, Lab
from ..lab.proc import owners
from ..lab.timers import PROGRAM_FILTERS, TimerTrace
from ..privileges import require_privileges
from ..tcpsocket import REQUEST_STATES, Sample
from ..waiting import Drop
from .follow import POLL_S, LastLooks, SocketFollower, every, near_expiry, timer_event
from .infer import infer_idle, infer_intvl
from .options import read_into
from .program import Program, endpoint, require_executable, require_seconds
from .result import NO_KEEPALIVE, CheckResult
from .traced import kernel_zero, on_the_kernels_clock
from .verdict import conclude

KEEPALIVE_GRACE_S = 1.0  # how long the accepted socket may take to show a keepalive timer
DEFERRED_ACCEPT_MAX_S = 64.0  # a request lives through tcp_synack_retries (5) SYN-ACKs: 1 + 2 + ... + 32 = 63 s
ANSWER_GRACE_S = 2.0  # after the first probe's expiry, how long its answer may take to be seen
LISTEN_POLL_S = 0.02
COUNTED = ("TCPKeepAlive", "TCPAbortOnTimeout")  # TcpExt counters of the server namespace, fault to death
Say = Callable[[str], None]


class _Stopped(Exception):
    """A verdict reached before a death (no keepalive, closed by the server, no death): the check ends."""


def _validate(argv: list[str], port: int, family: str, expect_s: float | None, listen_timeout: float,
              timeout: float) -> None:
    family_of(family)
    if not argv:
        raise SettingError("COMMAND", "", "give the server program after `--`")
    if not 1 <= port <= 65535:
        raise SettingError("port", port, "a TCP port is 1..65535")
    require_seconds(("--expect-s", expect_s), ("--listen-timeout", listen_timeout), ("--timeout", timeout))


def check_server(
    argv: list[str], port: int, family: str = "ipv4", expect_s: float | None = None,
    listen_timeout: float = 10.0, timeout: float = 600.0, on_event: Say | None = None,
) -> CheckResult:
    """Run the whole check (module docstring); raises ProgramProblem for exit-2 problems."""
    _validate(argv, port, family, expect_s, listen_timeout, timeout)
    require_executable(argv)
    say = on_event or (lambda _line: None)
    require_privileges()
    kernel = kernel_info()
    result = CheckResult(list(argv), kernel, family, port, expect_s)
    say(f"netkit check-server: `{shlex.join(argv)}` in the lab's server namespace, port {port} over {family}; "
        f"kernel {kernel.release} (HZ={kernel.hz})")
    with Lab() as lab:
        trace = TimerTrace.start(kernel.hz, PROGRAM_FILTERS)
        lab.callback(trace.close)
        program = Program(argv, lab.server.namespace)
        result.pid = program.pid

        def stop() -> None:
            result.program_exit = program.stop()
            result.program_output_tail = program.output_tail

        lab.callback(stop)  # before the namespaces go, whatever happens
        try:
            trace.follow_port(port)
            follower, client = _connect(lab, program, result, listen_timeout, say)
            _accepted(follower, result, say)
            trace.learn_reference(client)
            first = _keepalive_timer(follower, lab, program, result, say)
            answered, last_rcv = _answered_probe(follower, program, first, result, say)
            assert answered.sock is not None
            zero_ns = kernel_zero(trace, answered.sock.cookie, last_rcv)
            if zero_ns is not None:
                last_rcv = zero_ns / 1e9  # the kernel's moment of the reply: every time below counts from it
            _follow_to_death(lab, follower, program, client, answered, last_rcv, result, timeout, say)
            on_the_kernels_clock(trace, zero_ns, result)
        except _Stopped:
            return result
    return conclude(result, kernel)


def _connect(lab: Lab, program: Program, result: CheckResult, listen_timeout: float,
             say: Say) -> tuple[SocketFollower, socket.socket]:
    """1. the program listens; a silent client connects from the client namespace."""
    address = lab.server.address(result.family)
    found = program.wait_listening(lab.server.namespace, address, result.port, listen_timeout)
    by = owners([s.inode for s in found])
    result.listening = [f"{endpoint(*s.local)} (pids {', '.join(map(str, by.get(s.inode, []))) or '?'})"
                        for s in found]
    say(f"listening: {'; '.join(result.listening)}")
    client = lab.client.socket(result.family)
    lab.callback(client.close)
    client.settimeout(CONNECT_TIMEOUT_S)
    try:
        client.connect((address, result.port))
    except OSError as exc:  # seen listening, gone by the connect: name why, not just the errno
        program.require_running(f"after listening on port {result.port}, before netkit's client could connect")
        raise ProgramProblem(f"netkit's client could not connect to {endpoint(address, result.port)}, where "
                             f"`{program.command}` was listening a moment before: {exc.strerror or exc}") from None
    client.settimeout(None)
    client_addr = client.getsockname()[:2]
    result.server, result.client = endpoint(address, result.port), endpoint(client_addr[0], client_addr[1])
    say(f"connected: silent client {result.client} -> server {result.server}")
    follower = SocketFollower(lab.server.namespace, (address, result.port), (client_addr[0], client_addr[1]))
    lab.callback(follower.close)
    return follower, client


def _accepted(follower: SocketFollower, result: CheckResult, say: Say) -> None:
    """2a. wait while the server's kernel defers the accept (TCP_DEFER_ACCEPT): the connection is a request till then."""
    started = time.monotonic()
    first, _ = follower.until(lambda sample: sample, 1.0, every(LISTEN_POLL_S))
    if first is None or first.sock is None or first.sock.state not in REQUEST_STATES:
        return
    say("accept deferred: the server's socket for it is a request (SYN_RECV) until data arrives, which netkit's "
        "silent client never sends (TCP_DEFER_ACCEPT), or until the deferral's SYN-ACK retransmissions run out; "
        "waiting for the accept...")
    accepted, _ = follower.until(lambda s: s if s.sock is None or s.sock.state not in REQUEST_STATES else None,
                                    DEFERRED_ACCEPT_MAX_S, every(LISTEN_POLL_S))
    if accepted is None or accepted.sock is None:
        result.verdict = "closed-by-server"
        result.problems.append("the server deferred the accept (TCP_DEFER_ACCEPT) and the kernel dropped the request "
                               "before it was accepted" if accepted is not None else
                               f"the connection was still a request (SYN_RECV) {DEFERRED_ACCEPT_MAX_S:g} s after the "
                               f"connect: the server never accepted it")
        raise _Stopped
    result.accept_deferred_s = round(accepted.end - started, 3)
    say(f"accepted {result.accept_deferred_s:.3f} s after the connect (the accept was deferred)")


def _keepalive_timer(follower: SocketFollower, lab: Lab, program: Program, result: CheckResult, say: Say) -> Sample:
    """2b. a keepalive timer on the server's socket, or not; ``idle`` from it; the socket's options read off it."""
    seen: list[Sample] = []

    def armed(sample: Sample) -> Sample | None:
        if sample.sock is not None:
            seen.append(sample)
            if sample.sock.timer == "keepalive" and sample.sock.info is not None:
                return sample
        return None

    follower.until(armed, KEEPALIVE_GRACE_S, every(LISTEN_POLL_S))
    if not seen:
        result.verdict = "closed-by-server"
        result.problems.append("the server's socket for the client vanished right after the connect")
        raise _Stopped
    first = seen[-1]
    assert first.sock is not None
    result.timer_at_connect = first.sock.to_dict()
    say(f"server's socket for it (sock_diag): {first.sock.state}, {first.sock.describe_timer()}")
    _read_options(first, lab, program, result, say)
    if first.sock.timer != "keepalive":
        result.verdict = "no-keepalive"
        result.problems.append(f"{NO_KEEPALIVE} (sock_diag, {KEEPALIVE_GRACE_S:g} s after the connect: "
                               f"{first.sock.describe_timer()})")
        ut = (result.options or {}).get("user_timeout_ms")
        if ut:
            result.problems.append(f"the socket has TCP_USER_TIMEOUT {ut} ms, which ends a connection only while "
                                   "data it sent is unacknowledged (or on keepalive probes): an idle one to a dead "
                                   "client stays")
        raise _Stopped
    result.keepalive = True
    result.inferred["idle"], result.inferred_from["idle"] = infer_idle(first.sock)
    return first


def _read_options(sample: Sample, lab: Lab, program: Program, result: CheckResult, say: Say) -> None:
    """The server's socket's options, read off it (its holder may be a child of the program: a forking server)."""
    assert sample.sock is not None
    if not sample.sock.inode:  # in the listener's accept queue: no file yet, so no fd to borrow
        result.options_unread = "the program has not accept()ed the connection yet: its socket has no file to borrow"
        say(f"socket options: not read ({result.options_unread})")
        return
    read_into(result, program.pid, sample, lab.server, say)


def _answered_probe(follower: SocketFollower, program: Program, first: Sample, result: CheckResult,
                    say: Say) -> tuple[Sample, float]:
    """3. the first probe, answered: the anchor (the reply's monotonic time); ``intvl`` from the re-armed timer."""
    assert first.sock is not None
    say(f"waiting for the first keepalive probe (~{first.sock.expires_ms / 1000:.3f} s) to be answered...")
    time.sleep(near_expiry(first))
    give_up_s = first.end + first.sock.expires_ms / 1000 + ANSWER_GRACE_S + 0.125 * result.inferred["idle"]
    dropped = Drop()

    def answered(sample: Sample) -> Sample | None:
        if sample.sock is None:
            result.verdict = "closed-by-server"
            result.problems.append("the server closed the idle connection itself before the first keepalive probe "
                                   "(an application timeout, not keepalive)")
            raise _Stopped
        assert sample.sock.info is not None
        if dropped(sample.sock.info.last_ack_recv_ms):
            return sample
        program.require_running("while we waited")
        return None

    found, last = follower.until(answered, give_up_s - time.monotonic(), every(POLL_S))
    if found is None:
        assert last.sock is not None
        raise NetkitError(f"no keepalive probe was answered within {give_up_s - first.end:.1f} s "
                          f"(sock_diag now: {last.sock.describe_timer()})")
    assert found.sock is not None and found.sock.info is not None
    last_rcv = found.mid - found.sock.info.last_ack_recv_ms / 1000  # monotonic time of the probe's reply
    result.inferred["intvl"], result.inferred_from["intvl"] = infer_intvl(found.sock)
    result.timeline.append(Event(0.0, f"last segment received (reply to a keepalive probe); next timer run in "
                                      f"{found.sock.expires_ms / 1000:.3f} s", kind=EventKind.LAST_SEGMENT))
    return found, last_rcv


def _follow_to_death(lab: Lab, follower: SocketFollower, program: Program, client: socket.socket, answered: Sample,
                     last_rcv: float, result: CheckResult, timeout: float, say: Say) -> None:
    """4. drop the client's link; follow the server's socket until it vanishes (the kernel unhashes what it kills)."""
    before = counters.tcpext_counts(lab.server.namespace, COUNTED)
    fault = get_fault(FaultName.LINK_DOWN)
    fault.apply(FaultContext(lab, result.family, lab.server, lab.client, client))
    result.fault_at_s = round(time.monotonic() - last_rcv, 3)
    result.timeline.append(Event(result.fault_at_s, f"link down: {fault.description}", kind=EventKind.FAULT))
    say(f"  {result.fault_at_s:7.3f} s  link down (client's veth end); time since the last segment received:")
    looks = LastLooks(answered)

    def gone(sample: Sample) -> Sample | None:
        if sample.sock is None:
            return sample
        witness, look = looks.see(sample)
        previous, sock = witness.sock, look.sock
        assert previous is not None and sock is not None
        # a keepalive timer with no probe out is the answered state, never a probe sent: sock_diag can read the
        # answer's receive time before tcp_ack clears icsk_probes_out, and the next look then sees "0 out"
        no_probe_out = sock.timer == "keepalive" and sock.retrans == 0
        if (sock.timer, sock.retrans) != (previous.timer, previous.retrans) and not no_probe_out:
            what = f"probe {sock.retrans} sent, unanswered" if sock.timer == "keepalive" else sock.describe_timer()
            event = Event(round(look.start - last_rcv, 3), f"{what} (sock_diag: next run in "
                                                           f"{sock.expires_ms / 1000:.3f} s)", SAMPLED,
                          timer_event(sock.timer))
            result.timeline.append(event)
            say(f"  {event.t_s:7.3f} s  {event.what}")
        program.require_running("during the check")
        return None

    dead, last = follower.until(gone, timeout, near_expiry)
    if dead is None:
        assert last.sock is not None
        result.verdict = "no-death"
        result.problems.append(f"the server's socket was still there {timeout:g} s after the link drop "
                               f"({last.sock.state}, {last.sock.describe_timer()})")
        raise _Stopped
    after = counters.tcpext_counts(lab.server.namespace, COUNTED)
    result.counters = counters.delta(before, after)
    seen, final = looks.alive, looks.timed.sock
    assert final is not None
    result.measured_s = round(dead.end - last_rcv, 3)
    result.dead_between_s = (round(seen.start - last_rcv, 3), result.measured_s)
    result.probes = final.retrans if final.timer == "keepalive" else None
    result.timeline.append(Event(result.measured_s, "socket gone from sock_diag: the kernel killed it",
                                 kind=EventKind.DEATH))
    say(f"  {result.measured_s:7.3f} s  socket gone (killed by the kernel; last seen at "
        f"{result.dead_between_s[0]:.3f} s)")


__all__ = ["NO_KEEPALIVE", "CheckResult", "check_server"]
