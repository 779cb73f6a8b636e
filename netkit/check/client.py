"""``netkit check-client``: how, and when, does *your* client notice that its server has died?

::

    netkit check-client [--expect-s S] [--ipv6] [--json] [--fault F] [--max-wait S] -- COMMAND [ARGS...]

check-server's mirror image, composed of the same pieces (:mod:`.program`,
:mod:`.follow`, :mod:`.infer`, :mod:`.verdict`):

1. A *silent* server listens in the lab's server namespace: netkit's own
   socket, which accepts; the kernel acknowledges whatever arrives and nothing
   is ever read or answered -- a hung or dead server as a client sees it.
2. COMMAND runs in the client namespace, ``{host}`` and ``{port}`` in its
   arguments replaced by the silent server's address and port.  It must
   connect there within ``--connect-timeout``; a command that exits first, or
   connects elsewhere, is an error (exit 2) that says so, with its output.
3. The client's socket (found through sock_diag by the accepted connection's
   addresses) is followed until the client is idle: nothing unacknowledged or
   queued, and no segment either way for ``QUIET_S``.  Its options are read
   off the socket and each keepalive value's source proved (:mod:`.options`).
4. The fault breaks the path; by default the server's veth end goes down
   (:class:`netkit.lab.faults.LinkDown`, the server being the peer).  With
   ``--middlebox-timeout S`` nothing breaks it: a router between the two
   (:class:`netkit.lab.routed.RoutedLab`) forgets the flow once it has been
   idle S s, as a cloud load balancer or a NAT gateway does, and drops what
   the client sends after that; a keepalive shorter than S keeps the flow,
   and the client *survives*.  Times
   count from the last segment the client received: the keepalive timer's own
   origin (``keepalive_time_elapsed``, the later of the last data and the last
   ACK received).
5. The socket is followed until the client finds out (:func:`.verdict.classify`):
   the kernel kills it (it vanishes from sock_diag: keepalive, TCP_USER_TIMEOUT,
   retransmissions, or the peer's RST), the client closes it (no longer
   ESTABLISHED, its FIN queued) or its process exits (a pidfd wakes netkit at
   that moment), or ``--max-wait`` passes.  Each probe is timed as it goes; the
   settings are inferred from the timers the probes run on
   (:func:`.infer.infer_first_probe_idle`, :func:`.infer.infer_rearmed_intvl`)
   and the count from the probes outstanding at death.

The death is judged against netkit's keepalive model for the settings read
off the socket (else the inferred ones), and ``--expect-s`` like check-server's.
Exit status: 0 match (or, without ``--expect-s``, measured), 1 mismatch / no
keepalive / still connected after ``--max-wait``, 2 errors (the command would
not start, exited or never connected; bad input).
"""

from __future__ import annotations

import select
import shlex
import socket
import time
from collections.abc import Callable

from ..enums import EventKind, FaultName, family_of
from ..errors import FeatureMissing, ProgramProblem, SettingError
from ..evidence.events import SAMPLED, Event
from ..faults import NOTICEABLE_FAULTS
from ..kernel import kernel_info
from ..lab import counters
from ..lab.diag import tcp_sockets
from ..lab.faults import Fault, FaultContext, fault_object, get_fault
from ..lab.lab import Lab
from ..lab.routed import MiddleboxConfig, RoutedLab
from ..lab.timers import PROGRAM_FILTERS, TimerTrace
from ..privileges import require_privileges
from ..tcpsocket import Sample
from .follow import LastLooks, SocketFollower, every, near_expiry, timer_event
from .infer import ProbeTimes, infer_cnt, infer_first_probe_idle, infer_rearmed_intvl
from .options import read_into
from .program import Program, endpoint, require_executable, require_seconds
from .result import ClientCheckResult
from .traced import kernel_zero, on_the_kernels_clock
from .verdict import classify, conclude_client

DEFAULT_MAX_WAIT_S = 300.0  # five minutes: more than any keepalive a test would configure, less than the defaults'
DEFAULT_CONNECT_TIMEOUT_S = 10.0
QUIET_S = 0.2  # no segment either way for this long before the break
QUIET_TIMEOUT_S = 10.0  # a client never that quiet is broken while it talks (and the notes say so)
ACCEPT_POLL_S = 0.02
LOOK_EVERY_S = 0.1  # the longest pause between two looks at the client's socket
AFTERMATH_S = 2.0  # how long to wait for the client to exit once its socket has died
COUNTED = ("TCPKeepAlive", "TCPAbortOnTimeout", "TCPAbortOnClose", "TCPAbortOnData", "TCPTimeouts")
PLACEHOLDERS = ("{host}", "{port}")
Say = Callable[[str], None]


def substitute(argv: list[str], host: str, port: int) -> list[str]:
    """``{host}`` and ``{port}`` replaced in every argument (nothing else: other braces stay as they are)."""
    return [a.replace("{host}", host).replace("{port}", str(port)) for a in argv]


def _validate(argv: list[str], family: str, expect_s: float | None, max_wait: float, connect_timeout: float,
              port: int, fault: str, middlebox_timeout_s: int | None) -> None:
    family_of(family)
    if middlebox_timeout_s is not None:
        if isinstance(middlebox_timeout_s, bool) or not isinstance(middlebox_timeout_s, int) or middlebox_timeout_s < 1:
            raise SettingError("--middlebox-timeout", middlebox_timeout_s,
                               "the router's conntrack timeout is a whole number of seconds, at least 1")
        if fault != FaultName.LINK_DOWN:
            raise SettingError("--fault", fault, "behind a middlebox nothing else breaks the path (the router "
                                                 "forgetting the idle flow is the fault): drop --fault")
    if fault not in NOTICEABLE_FAULTS and middlebox_timeout_s is None:
        raise SettingError("--fault", fault, "a client is checked for noticing a dead server; "
                           + ("a local drop refuses the client's own keepalive probes, which the kernel never counts, "
                              "so it never notices (netkit demo --fault local-drop shows the connection surviving); "
                              if fault == FaultName.LOCAL_DROP else "")
                           + "use one of " + ", ".join(NOTICEABLE_FAULTS))
    if not argv:
        raise SettingError("COMMAND", "", "give the client program after `--`, with {host} and {port} where the "
                                          "server's address and port go")
    if not 0 <= port <= 65535:
        raise SettingError("--port", port, "a TCP port is 1..65535 (0: any free port)")
    require_seconds(("--expect-s", expect_s), ("--max-wait", max_wait), ("--connect-timeout", connect_timeout))


def check_client(
    argv: list[str], family: str = "ipv4", expect_s: float | None = None, fault: str = FaultName.LINK_DOWN,
    max_wait: float = DEFAULT_MAX_WAIT_S, port: int = 0, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    on_event: Say | None = None, middlebox_timeout_s: int | None = None,
) -> ClientCheckResult:
    """Run the whole check (module docstring); raises ProgramProblem and other NetkitErrors for exit-2 problems."""
    _validate(argv, family, expect_s, max_wait, connect_timeout, port, fault, middlebox_timeout_s)
    if middlebox_timeout_s is not None:
        fault = FaultName.MIDDLEBOX_FORGETS
        breaker = fault_object(fault)
    else:
        breaker = get_fault(fault)  # a direct lab's fault only
    missing = breaker.unsupported_reason()
    if missing:
        raise FeatureMissing(f"fault {fault!r} cannot run here: {missing}")
    require_executable(argv)
    say = on_event or (lambda _line: None)
    require_privileges()
    kernel = kernel_info()
    r = ClientCheckResult(list(argv), kernel, family, port, fault, expect_s, max_wait,
                          middlebox_timeout_s=middlebox_timeout_s)
    lab_for_check = Lab() if middlebox_timeout_s is None else RoutedLab(MiddleboxConfig(middlebox_timeout_s))
    with lab_for_check as lab:
        listener = _silent_server(lab, r)
        trace = TimerTrace.start(kernel.hz, PROGRAM_FILTERS)
        lab.callback(trace.close)
        trace.follow_port(r.port)
        r.started = substitute(argv, lab.server.address(family), r.port)
        say(f"running `{shlex.join(r.started)}` in the lab's client namespace against a silent server at "
            f"{r.server} over {family} (fault {fault}; kernel {kernel.release}, HZ={kernel.hz})")
        program = Program(r.started, lab.client.namespace)
        r.pid = program.pid

        def stop() -> None:
            r.program_exit = program.stop()
            r.program_output_tail = program.output_tail

        lab.callback(stop)  # before the namespaces go, whatever happens
        accepted, follower, connected_at = _accept(lab, listener, program, r, connect_timeout, say)
        trace.learn_reference(accepted)
        ctx = FaultContext(lab, family, lab.client, lab.server, accepted, [listener])
        breaker.prepare(ctx)
        quiet = _wait_quiet(follower, program, r, connected_at, say)
        _read_options(program, quiet, lab, r, say)
        anchor, before, counted, zero_ns = _break(lab, follower, trace, breaker, ctx, r, connected_at, say)
        _follow(lab, follower, program, anchor, before, counted, r, say)
        on_the_kernels_clock(trace, zero_ns, r)
    return conclude_client(r, kernel)


def _silent_server(lab: Lab, r: ClientCheckResult) -> socket.socket:
    """1. netkit's listener in the server namespace: it accepts, and never reads or writes."""
    listener = lab.server.socket(r.family)
    lab.callback(listener.close)
    address = lab.server.address(r.family)
    listener.bind((address, r.port))
    listener.listen(16)
    r.port = listener.getsockname()[1]
    r.server = endpoint(address, r.port)
    return listener


def _accept(lab: Lab, listener: socket.socket, program: Program, r: ClientCheckResult, timeout: float,
            say: Say) -> tuple[socket.socket, SocketFollower, float]:
    """2. the client connects to the silent server, or the error says what it did instead (exit 2)."""
    address = lab.server.address(r.family)
    elsewhere: dict[str, str] = {}  # the client's other connections seen meanwhile: endpoint -> state
    deadline = time.monotonic() + timeout
    while not select.select([listener], [], [], ACCEPT_POLL_S)[0]:
        for s in tcp_sockets(lab.client.namespace, info=False):
            if s.state != "LISTEN" and s.remote != (address, r.port):
                elsewhere[endpoint(*s.remote)] = s.state
        tried = (f" (it tried {', '.join(f'{where} ({state})' for where, state in elsewhere.items())} instead)"
                 if elsewhere else "")
        if program.proc.poll() is not None:
            raise ProgramProblem(f"`{shlex.join(r.started)}` exited with status {program.proc.returncode} before it "
                                 f"connected to the silent server at {r.server}{tried}; its output:\n"
                                 f"{program.tail() or '(none)'}")
        if time.monotonic() > deadline:
            raise ProgramProblem(f"`{shlex.join(r.started)}` did not connect to the silent server at {r.server} within "
                                 f"{timeout:g} s{tried or ' (it made no TCP connection in the lab)'}: put {{host}} and "
                                 f"{{port}} where the client takes its server's address; its output so far:\n"
                                 f"{program.tail() or '(none)'}")
    accepted, peer = listener.accept()
    connected_at = time.monotonic()
    lab.callback(accepted.close)
    r.client = endpoint(peer[0], peer[1])
    say(f"connected: client {r.client} (pid {program.pid}) -> silent server {r.server}")
    follower = SocketFollower(lab.client.namespace, (peer[0], peer[1]), (address, r.port))
    lab.callback(follower.close)
    return accepted, follower, connected_at


def _wait_quiet(follower: SocketFollower, program: Program, r: ClientCheckResult, connected_at: float,
                say: Say) -> Sample:
    """3. until the client is idle: nothing unacknowledged or queued, no segment either way for QUIET_S."""
    quiet_ms = QUIET_S * 1000

    def quiet(sample: Sample) -> Sample | None:
        sock = sample.sock
        if sock is None or sock.state != "ESTABLISHED":
            raise ProgramProblem(
                f"the client closed its connection {sample.start - connected_at:.3f} s after connecting, before "
                f"netkit could break the path ({sock.state if sock else 'socket gone'}): check-client needs a client "
                f"that stays connected while it waits for the server's answer; its output:\n"
                f"{program.tail() or '(none)'}")
        info = sock.info
        assert info is not None
        idle = min(info.last_data_sent_ms, info.last_data_recv_ms, info.last_ack_recv_ms) >= quiet_ms
        settled = info.unacked == 0 and sock.wqueue == 0 and sock.timer in ("keepalive", "none")
        return sample if idle and settled else None

    found, last = follower.until(quiet, QUIET_TIMEOUT_S, every(ACCEPT_POLL_S), program.sleep)
    if found is None:
        assert last.sock is not None
        r.problems.append(f"the client never fell quiet for {QUIET_S:g} s within {QUIET_TIMEOUT_S:g} s "
                          f"(sock_diag: {last.sock.describe_timer()}, {last.sock.wqueue} bytes queued): netkit "
                          "broke the path while it was talking")
        return last
    assert found.sock is not None
    say(f"client idle (sock_diag: {found.sock.state}, {found.sock.describe_timer()})")
    return found


def _read_options(program: Program, quiet: Sample, lab: Lab, r: ClientCheckResult, say: Say) -> None:
    """The socket's options, read off it, and each keepalive value's source (:mod:`.options`)."""
    r.namespace_sysctls = read_into(r, program.pid, quiet, lab.client, say).sysctls


def _break(lab: Lab, follower: SocketFollower, trace: TimerTrace, breaker: Fault, ctx: FaultContext, r: ClientCheckResult,
           connected_at: float, say: Say) -> tuple[float, Sample, dict[str, int], int | None]:
    """4. the last look, then the break; returns the anchor (monotonic time of the last segment received: the
    kernel's moment where the trace has it, ``zero_ns``)."""
    counted = counters.tcpext_counts(lab.client.namespace, COUNTED)
    r.last_segment = "probe-reply" if counted["TCPKeepAlive"] else "idle"  # a probe answered before the break
    before = follower.sample()
    sock = before.sock
    if sock is None or sock.state != "ESTABLISHED":
        raise ProgramProblem(f"the client closed its connection before netkit could break the path "
                             f"({sock.state if sock else 'socket gone'})")
    assert sock.info is not None
    anchor = before.mid - min(sock.info.last_ack_recv_ms, sock.info.last_data_recv_ms) / 1000
    zero_ns = kernel_zero(trace, sock.cookie, anchor)
    if zero_ns is not None:
        anchor = zero_ns / 1e9
    r.timer_at_break = sock.to_dict()
    r.keepalive = sock.timer == "keepalive"
    address = lab.server.address(r.family)
    r.connections = sum(1 for s in tcp_sockets(lab.client.namespace, info=False)
                        if s.state == "ESTABLISHED" and s.remote == (address, r.port))
    if r.connections > 1:
        r.problems.append(f"the client had {r.connections} connections to the silent server; netkit followed the "
                          "first (its namespace's counters count them all)")
    breaker.apply(ctx)
    r.fault_at_s = round(time.monotonic() - anchor, 3)
    breaker.settle(ctx)
    fault_event = Event(r.fault_at_s, f"{r.fault}: {breaker.description}", kind=EventKind.FAULT)
    if r.middlebox_timeout_s is not None:  # time breaks the path: the router's entry expires, unless refreshed
        r.fault_at_s = float(r.middlebox_timeout_s)
        fault_event = Event(r.fault_at_s, f"the router forgets the flow if nothing has crossed it since t = 0 "
                                          f"(conntrack timeout {r.middlebox_timeout_s} s)", "", EventKind.FAULT)
    r.timeline += [Event(round(connected_at - anchor, 3), f"connected to the silent server at {r.server}",
                         kind=EventKind.CONNECT),
                   Event(0.0, "last segment received from the server (t = 0)", SAMPLED, EventKind.LAST_SEGMENT),
                   fault_event]
    say(f"client's socket: {sock.describe_timer()}; {fault_event.what} at {r.fault_at_s:.3f} s after the last "
        f"segment received; following the client's socket:")
    if not r.keepalive:
        say(f"  no keepalive timer: the kernel will not notice while the client is idle; waiting up to --max-wait "
            f"{r.max_wait_s:g} s for the client itself")
    return anchor, before, counted, zero_ns


def _pause(sample: Sample) -> float:
    """Look again just before the socket's timer is due, and at least every LOOK_EVERY_S (a close has no timer)."""
    if sample.sock is not None and sample.sock.timer != "none":
        return min(near_expiry(sample), LOOK_EVERY_S)
    return LOOK_EVERY_S


def _follow(lab: Lab, follower: SocketFollower, program: Program, anchor: float, before: Sample,
            counted: dict[str, int], r: ClientCheckResult, say: Say) -> None:
    """5. follow the client's socket until the client finds out, or --max-wait."""
    looks = LastLooks(before)  # of the socket established
    probes = ProbeTimes(anchor)

    def note(t: float, what: str, kind: EventKind, source: str = SAMPLED) -> None:
        event = Event(round(t - anchor, 3), what, source, kind)
        r.timeline.append(event)
        say(f"  {event.t_s:8.3f} s  {event.what}")

    def exited() -> None:
        if program.exited_at is not None and r.program_exited_s is None:
            r.program_exited_s = round(program.exited_at - anchor, 3)
            note(program.exited_at, f"the client's process exited (status {program.proc.poll()})", EventKind.OTHER, "")

    def ended(sample: Sample) -> str | None:
        program.sleep(0)  # an exit during the look: seen now, not only by the next pause
        exited()
        if sample.sock is None:
            probes.vanished(looks.timed)
            return "gone"
        if sample.sock.state != "ESTABLISHED":
            return "closed"
        witness, reference = looks.see(sample)
        previous, sock = witness.sock, reference.sock
        assert previous is not None and sock is not None
        for k in probes.saw(witness, reference):
            note((witness.end + reference.start) / 2,
                 f"probe {k} sent, unanswered (sock_diag: next run in {sock.expires_ms / 1000:.3f} s)", EventKind.PROBE)
        if sock.timer != "keepalive" and (sock.timer, sock.retrans) != (previous.timer, previous.retrans):
            note(reference.start, sock.describe_timer(), timer_event(sock.timer))
        return None

    end, last = follower.until(ended, r.max_wait_s, _pause, program.sleep)
    r.counters = counters.delta(counted, counters.tcpext_counts(lab.client.namespace, COUNTED))
    seen = looks.timed.sock
    assert seen is not None
    ut = (r.options or {}).get("user_timeout_ms", 0)
    r.cause = classify(end or "none", seen.timer, r.counters, program.exited_at is not None, ut)
    r.probes = seen.retrans if seen.timer == "keepalive" else None
    r.retransmissions = seen.retrans if seen.timer == "retransmit" else None
    _inferred(probes, r)
    if end is None:
        note(last.start, f"still connected after --max-wait {r.max_wait_s:g} s ({seen.describe_timer()})",
             EventKind.GAVE_UP, "")
        r.timeline.sort(key=lambda e: e.t_s)
        return
    if end == "closed":
        assert last.sock is not None
        r.state_after = last.sock.state
    r.dead_between_s = (round(looks.alive.start - anchor, 3), round(last.end - anchor, 3))
    r.measured_s = r.dead_between_s[1]
    if r.cause == "application-exit" and r.program_exited_s is not None:
        r.measured_s = r.program_exited_s  # the exit closed the socket: the pidfd timed it exactly
        r.dead_between_s = (r.measured_s, r.measured_s)
    seen_at = f"last seen established at {r.dead_between_s[0]:.3f} s"
    what = (f"socket gone from sock_diag ({seen_at}): the kernel killed it"
            if r.cause in ("keepalive", "user-timeout", "retransmission")
            else f"socket gone from sock_diag ({seen_at}): reset" if end == "gone"
            else f"the client closed its socket ({r.state_after}; {seen_at})")
    note(last.end, what, EventKind.DEATH)
    deadline = time.monotonic() + AFTERMATH_S  # does the client exit once it knows (and when)?
    while program.exited_at is None and time.monotonic() < deadline:
        program.sleep(deadline - time.monotonic())
    exited()
    r.timeline.sort(key=lambda e: e.t_s)


def _inferred(probes: ProbeTimes, r: ClientCheckResult) -> None:
    """idle, intvl and (when keepalive's count ended it) cnt, read off the probes' timers."""
    if probes.first_requested_s is not None:
        r.inferred["idle"], r.inferred_from["idle"] = infer_first_probe_idle(probes.first_requested_s)
    if probes.rearmed_s is not None:
        spacing = [round(b - a, 3) for a, b in zip(probes.at_s, probes.at_s[1:], strict=False)]
        r.inferred["intvl"], r.inferred_from["intvl"] = infer_rearmed_intvl(probes.rearmed_s, spacing)
    if r.cause == "keepalive" and r.probes:
        r.inferred["cnt"] = r.probes
        r.inferred_from["cnt"] = infer_cnt(r.probes, r.counters.get("TCPKeepAlive"))


__all__ = ["DEFAULT_MAX_WAIT_S", "check_client", "substitute"]
