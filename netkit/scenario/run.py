"""Running a scenario: build a lab, prove the rule, tear the lab down, return one frozen result.

The procedure (for the default, idle state):

1. the client (client namespace) connects to the server (server namespace);
   the *tested* side (the server unless ``side="client"``) enables keepalive
   on its socket -- per socket, or from its namespace's sysctls -- and reads
   it back;
2. the scenario's one prediction is made (:func:`netkit.model.predict`, with
   the connection's own RTO for the data states) and handed to
   ``on_prediction`` -- the demo prints exactly the prediction it is judged by;
3. the connection stays silent; we wait until one keepalive probe has been
   answered (proof that the peer is up and probing works);
4. right after that reply the fault breaks the peer away;
5. we wait for the tested socket to die (poll wakes with POLLERR/POLLHUP)
   and read the kernel's own figures at once: ``tcpi_last_ack_recv`` (time
   since the last segment received -- the probe reply of step 3),
   ``tcpi_probes``, ``SO_ERROR``, and the namespace's TCPKeepAlive counter.
   If the model says the peer dies too (one-way), its death is timed against
   the tested side's on the monotonic clock.

The handshake states (``syn-sent``, ``syn-recv``) never establish a
connection: their procedure is :mod:`.handshake`'s, in the same lab,
capture and judging.

With ``connections=N`` (idle only) the server accepts N clients on one
listener, the tested side's keepalive is set on all N sockets in one go,
the fault waits for every connection's answered probe and happens once, and
every connection is followed until it dies, each read the moment poll
reports it (:func:`.observe.wait_for_death`).  The first connection is the
one measured in detail (wire, timeline, peer); the result's ``connections``
lists every one, with each connection's RST from the capture where the wire
shows it.  While it waits for the death(s) the observer runs SCHED_FIFO
(:func:`.observe.prompt_observer`): under a hundred concurrent labs a
normal-priority observer woke up to 60 ms late, and ``tcpi_last_ack_recv``
grows with that lateness.  That holds for one connection too: where no frame
marks the death (retransmission and persist timeouts) only the observer's
reading exists, and a normal-priority one once read a gate's scenario 3 ms
past its window while other labs were set up and torn down beside it
(scripts/soak-gate).  A fault that silently closes the peer's end of the
connection (peer-gone, peer-reboot) closes every connection's end alike.

Throughout, a packet socket in the tested namespace captures the tested veth
(:mod:`netkit.lab.capture`): the result's ``wire`` holds the probes, replies and
RST with their kernel timestamps, and the judging asserts them where the fault
lets them reach a wire.  Where it does not (the fault's ``wire_blind``),
the result says so and the kernel's counters are the evidence.  The capture
is written as pcap on request (``pcap=``) and for every failed scenario
(into ``pcap_dir``, or a temporary file).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..enums import Clock, EventKind, Side, State, Topology
from ..errors import FeatureMissing, InputError, NetkitError, NotModelled, ScenarioCancelled
from ..evidence.events import Event
from ..evidence.ledger import KEEPALIVE_TIMER, WRITE_TIMER
from ..evidence.ledger_check import first_run_after
from ..evidence.pcap import write_pcap
from ..kernel import kernel_info
from ..lab.capture import Capture
from ..lab.faults import Fault, FaultContext, close_silently, fault_object
from ..lab.lab import Endpoint, Lab
from ..lab.tcpinfo import tcp_info
from ..lab.timers import TimerTrace
from ..model.predict import not_modelled_reason
from ..model.prediction import DeathPrediction
from ..outputs import file_problem, folder_problem
from ..privileges import require_privileges
from .build import Observed, connections_on_the_wire, established_view, result_from, wire_evidence
from .context import RunContext
from .handshake import prove_handshake
from .middlebox import lab_for, prove_routed
from .observe import (
    RETRACTED_BURST,
    Death,
    fill_until_zero_window,
    prompt_observer,
    retract_window,
    wait_for_answered_probe,
    wait_for_answered_probes,
    wait_for_death,
    watch_alive,
)
from .requirements import require_supported
from .result import ConnectionDeath, Progress, ScenarioResult
from .spec import Scenario, require_scenario
from .steps import (
    Counted,
    enable_keepalive,
    let_the_peer_retract,
    route_rto_min,
    set_rto_max,
    write_keepalive_sysctls,
    write_retries2,
    write_rto_sysctls,
)

FAULT_DEADLINE_FRACTION = 0.5  # idle: the fault must land well before the next keepalive timer run
ZERO_WINDOW_RCVBUF = 4096  # the peer's receive buffer: the window closes after a few KB
UNACKED_PAYLOAD = b"x" * 100
TCPEXT_COUNTERS = ("TCPKeepAlive", "TCPWinProbe", "TCPTimeouts", "TCPAbortOnTimeout", "TCPLossProbes",
                   "TCPSpuriousRtxHostQueues", "RetransSegs")  # RetransSegs: Tcp's, not TcpExt's (lab.counters)
FIRST_EVENT = {
    State.IDLE: ("last segment received (reply to a keepalive probe)", EventKind.LAST_SEGMENT),
    State.ZERO_WINDOW: ("last segment received (the ACK that closed the window)", EventKind.LAST_SEGMENT),
    State.RETRACTED_WINDOW: (f"{len(RETRACTED_BURST)} bytes sent; the peer takes part and its window back",
                             EventKind.DATA),
    State.UNACKED: (f"{len(UNACKED_PAYLOAD)} bytes sent into the broken path", EventKind.DATA),
}


def failure_pcap_path(scenario: Scenario, lab: str, directory: str | None = None) -> str:
    """Where a failed scenario's capture goes: ``directory``, or a new temporary file."""
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", scenario.id)
    if directory:
        os.makedirs(directory, exist_ok=True)
        return os.path.join(directory, f"{name}-{lab}.pcap")
    fd, path = tempfile.mkstemp(prefix=f"netkit-{name}-", suffix=".pcap")
    os.close(fd)
    return path


def check_capture_paths(pcap: str | None, pcap_dir: str | None) -> None:
    """Raise InputError (the CLI's exit 2) naming ``pcap`` or ``pcap_dir`` if a capture could not be written there."""
    for name, path, problem in (("pcap", pcap, pcap and file_problem(pcap, create_folders=True)),
                                ("pcap_dir", pcap_dir, pcap_dir and folder_problem(pcap_dir))):
        if problem:
            raise InputError(f"{name} {path!r}: {problem}")


def run_scenario(
    scenario: Scenario,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_prediction: Callable[[DeathPrediction], None] | None = None,
    cancel: threading.Event | None = None,
    keep_failed: bool = False,
    pcap: str | None = None,
    pcap_dir: str | None = None,
) -> ScenarioResult:
    """Prove one scenario on this kernel. Raises FeatureMissing / NotModelled if it cannot run here.

    ``on_prediction`` receives the scenario's one prediction as soon as it is
    made, before the fault.  With ``keep_failed`` a failing scenario's
    namespaces are named under /run/netns before teardown, for ``ip netns
    exec``.  The tested veth is captured throughout: with ``pcap`` the capture
    is written there; a failed scenario's capture is always written -- to
    ``pcap``, else into ``pcap_dir``, else to a temporary file -- and
    ``result.pcap`` says where.  A scenario that breaks off with a NetkitError
    writes it the same way and names it in the exception's notes.
    """
    require_scenario(scenario, "run_scenario()")
    check_capture_paths(pcap, pcap_dir)  # before the run, not after it: a bad path must cost nothing
    require_privileges()  # before anything else: the message names the command to run instead
    cancel = cancel or threading.Event()
    kernel = kernel_info()
    require_supported(scenario)  # its fault, and the kernel features its settings need
    reason = not_modelled_reason(scenario)
    if reason:
        raise NotModelled(reason)
    with lab_for(scenario) as lab:  # the routed topology: a router between them (netkit.scenario.middlebox)
        tested = lab.server if scenario.side == Side.SERVER else lab.client
        capture: Capture | None = None
        capture_error = None
        try:
            capture = Capture(tested.namespace, tested.ifindex, f"{tested.ifname} in {tested.namespace.name}").start()
            lab.callback(capture.stop)  # before the namespaces are released
        except OSError as exc:
            capture_error = f"no packet capture ({exc}; needs CONFIG_PACKET)"
        run = RunContext(scenario, kernel, lab, capture, capture_error, cancel, on_progress, on_prediction)
        try:
            result = procedure(scenario)(run)
        except NetkitError as exc:
            if capture is not None and not isinstance(exc, (ScenarioCancelled, FeatureMissing, NotModelled)):
                _note_broken_off(exc, scenario, lab, capture, pcap, pcap_dir)
            raise
        if pcap:
            result = result.with_pcap(pcap)
        elif result.failures:
            result = result.with_pcap(failure_pcap_path(scenario, lab.name, pcap_dir))
        if keep_failed and result.failures:
            result = replace(result, kept_namespaces=tuple(lab.keep()))
    return result


def procedure(scenario: Scenario) -> Callable[[RunContext], ScenarioResult]:
    """The procedure that proves ``scenario``: routed (:mod:`.middlebox`), a handshake (:mod:`.handshake`), or this one's."""
    if scenario.topology == Topology.ROUTED:
        return prove_routed
    if State(scenario.state).handshake:
        return prove_handshake
    return prove_established


def _note_broken_off(exc: NetkitError, scenario: Scenario, lab: Lab, capture: Capture, pcap: str | None,
                     pcap_dir: str | None) -> None:
    capture.stop()
    path = write_pcap(pcap or failure_pcap_path(scenario, lab.name, pcap_dir), capture.pcap())
    note = f"capture of {scenario.id} until it broke off: {path} (tcpdump -nr {path})"
    if hasattr(exc, "add_note"):  # Python 3.11+
        exc.add_note(note)


@dataclass
class _Connection:
    """The tested connection in its lab, and who is who."""

    tested: Endpoint
    peer: Endpoint
    sock: socket.socket
    peer_sock: socket.socket
    ctx: FaultContext
    fault: Fault
    others: list[tuple[socket.socket, socket.socket]]  # the other connections: (tested, peer) sockets
    armed: list[float]  # when each connection's keepalive was armed (monotonic), the first's first

    def since_last_received(self) -> float:
        return tcp_info(self.sock).last_ack_recv_ms / 1000


def _more_connections(run: RunContext) -> list[tuple[socket.socket, socket.socket]]:
    """Connections 2..N to the first connection's listener, one at a time: (tested, peer) sockets."""
    lab = run.lab
    listener = lab.listeners[-1]
    address = listener.getsockname()[:2]
    pairs = []
    for _ in range(run.scenario.connections - 1):
        client = lab.client.socket(run.scenario.family)
        lab.callback(client.close)
        client.settimeout(listener.gettimeout())
        client.connect(address)
        client.settimeout(None)
        server, _ = listener.accept()
        lab.callback(server.close)
        pairs.append(run.tested_first(server, client))
    return pairs


def _connect(run: RunContext, trace: TimerTrace) -> _Connection:
    """Steps 1: the connection, keepalive on the tested side (its timer learned by the trace), the fault's slow part
    done ahead."""
    scenario, lab = run.scenario, run.lab
    tested, peer = run.sides
    write_keepalive_sysctls(scenario, tested)
    write_retries2(scenario, tested)
    write_rto_sysctls(scenario, tested)
    route_rto_min(scenario, tested, peer)
    let_the_peer_retract(scenario, peer)
    rcvbuf = {peer.role: ZERO_WINDOW_RCVBUF} if scenario.state == State.ZERO_WINDOW else None
    sock, peer_sock = run.tested_first(*lab.connect(scenario.family, rcvbuf=rcvbuf))
    others = _more_connections(run)
    with trace.learning(KEEPALIVE_TIMER):  # SO_KEEPALIVE arms the tested socket's keepalive timer
        enable_keepalive(scenario, sock)  # in the data states too: it must not interfere
        armed = [time.monotonic()]
    set_rto_max(scenario, sock, run.kernel.hz)
    for other, _ in others:  # in one go: their timers land in the first connection's wheel slot or the next
        enable_keepalive(scenario, other)
        armed.append(time.monotonic())
    fault = fault_object(scenario.fault)
    ctx = FaultContext(lab, scenario.family, tested, peer, peer_sock, lab.listeners if peer is lab.server else [])
    fault.prepare(ctx)
    return _Connection(tested, peer, sock, peer_sock, ctx, fault, others, armed)


def prove_established(run: RunContext) -> ScenarioResult:
    """The procedure (module docstring) for an established state, in a built lab whose tested veth is being captured."""
    scenario, cancel = run.scenario, run.cancel
    trace = TimerTrace.start(run.kernel.hz)
    run.lab.callback(trace.close)
    c = _connect(run, trace)
    armed_at = time.monotonic()
    if scenario.state == State.ZERO_WINDOW:
        with trace.learning(WRITE_TIMER):  # one byte arms the retransmission timer (later the probe timer's too)
            c.sock.send(b"\0")
        fill_until_zero_window(c.sock, cancel)  # the bulk transfer moves the RTO: read it after
    burst = None
    if scenario.state == State.RETRACTED_WINDOW:
        with trace.learning(WRITE_TIMER):  # the burst arms the retransmission timer
            burst = retract_window(c.sock, c.peer_sock, cancel)
    prediction = run.predict(tcp_info(c.sock).rto_us / 1e6)  # the one prediction
    if scenario.state == State.IDLE and c.others:
        wait_for_answered_probes([c.sock] + [s for s, _ in c.others], c.armed, scenario.keepalive, cancel)
    elif scenario.state == State.IDLE:
        wait_for_answered_probe(c.sock, scenario.keepalive, armed_at, cancel)
    addresses = (c.sock.getsockname()[:2], c.sock.getpeername()[:2])
    other_addresses = [(s.getsockname()[:2], s.getpeername()[:2]) for s, _ in c.others]  # gone at death
    counted = Counted.start(c.tested.namespace, TCPEXT_COUNTERS)
    fault_ns = time.time_ns()  # the capture's clock (CLOCK_REALTIME): frames before it are the connection's past
    broken = _break(run, c, trace, Clock(prediction.measured_from), burst)
    if prediction.alive_until_s is not None:  # a survival (a local drop on an idle connection): watch it live
        death = watch_alive(c.sock, prediction, time.monotonic() - broken.since_anchor(), cancel, run.on_progress)
    else:
        with prompt_observer():
            death = wait_for_death(c.sock, c.peer_sock if prediction.peer_expected_error else None, prediction,
                                   broken.since_anchor, cancel, run.on_progress, [s for s, _ in c.others])
    counts = counted.since()
    run.stop_capture()
    first, first_kind = FIRST_EVENT[State(scenario.state)]
    events = [Event(0.0, first, kind=first_kind)]
    if broken.fault_at_s is not None:
        events.append(Event(broken.fault_at_s, f"fault: {c.fault.description}", kind=EventKind.FAULT))
    observed = Observed(scenario, run.kernel, prediction, death, counts, (*events, *death.events), run.lab.name,
                        broken.fault_at_s, broken.deadline_s, _connection_deaths(c, death, broken))
    wire, pcap_data = wire_evidence(scenario, run.capture, run.capture_error,
                                    established_view(observed, addresses, fault_ns, broken.sent_ns))
    if wire.visible and run.capture is not None and observed.connections:
        observed = replace(observed, connections=connections_on_the_wire(observed.connections, wire, run.capture,
                                                                         other_addresses, fault_ns))
    ledger = trace.finish(wire.anchor_ns)
    if ledger is not None and scenario.state in (State.UNACKED, State.RETRACTED_WINDOW) and wire.anchored_on_process_clock:
        # No frame of the data reached the tap, so t = 0 was this process's clock before send(): a worker
        # descheduled there put it up to 59 ms early (a gate on 2 CPUs).  The kernel's own moment of the send
        # is the retransmission timer it armed in that call (tcp_event_new_data_sent): t = 0 moves there.
        ledger = ledger.moved_to_first_call(WRITE_TIMER)
    if ledger is not None and observed.fault_deadline_s is not None:  # the run the fault had to precede, measured
        timer = KEEPALIVE_TIMER if scenario.state == State.IDLE else WRITE_TIMER
        # A retracted window: the ACK's tail loss probe runs a jiffy or two later and sends nothing (its segment
        # lies past the zero window: __tcp_retransmit_skb says -EAGAIN, TCPLossProbes stays 0); it only re-arms the
        # RTO from the send (tcp_rearm_rto).  The run to precede is the first that can retransmit, none before
        # the nominal deadline.
        after = broken.deadline_s if scenario.state == State.RETRACTED_WINDOW and broken.deadline_s else 0.0
        observed = replace(observed, fault_deadline_s=first_run_after(ledger, timer, after))
    return result_from(observed, wire, pcap_data, ledger, trace.note)


def _connection_deaths(c: _Connection, death: Death, broken: _Broken) -> tuple[ConnectionDeath, ...]:
    """Every connection's death (the first one's too), for a many-connection scenario; () for one."""
    if not c.others:
        return ()
    first = ConnectionDeath(0, death.measured_s, death.error, death.probes, broken.fault_at_s)
    rest = [ConnectionDeath(i, None, None, None, at) if e is None
            else ConnectionDeath(i, e.measured_s, e.error, e.probes, at)
            for i, (e, at) in enumerate(zip(death.others, broken.others_fault_at_s, strict=True), 1)]
    return (first, *rest)


@dataclass(frozen=True)
class _Broken:
    since_anchor: Callable[[], float]
    fault_at_s: float | None = None  # since the last segment received
    deadline_s: float | None = None  # the fault had to land before it
    sent_ns: int | None = None  # the data's send (unacked), on the capture's clock
    others_fault_at_s: tuple[float, ...] = ()  # the other connections' fault_at_s


def _break(run: RunContext, c: _Connection, trace: TimerTrace, clock: Clock,
           burst: tuple[float, int] | None = None) -> _Broken:
    """Step 4: apply the fault; for unacked data, break the path completely, then send into it.

    ``clock``: what the prediction counts from.  ``burst``: a retracted
    window's send (monotonic, CLOCK_REALTIME), which its times count from.
    """
    rto_s = tcp_info(c.sock).rto_us / 1e6
    # The last segment received, on the monotonic clock, read before the fault: for a closed window it is the
    # window-closing ACK, and nothing else may arrive before the fault.  Read after it, a segment that arrived
    # meanwhile -- the first window probe answered, because the machine was late placing the fault -- would
    # have moved tcpi_last_ack_recv and hidden that lateness (CI, stop 38: the fault "at 0.076 s", after a
    # probe at 0.202 s that was answered; the death then 1.6 s "late", a kernel failure where the machine was).
    last_received_before = time.monotonic() - c.since_last_received()
    c.fault.apply(c.ctx)
    if run.scenario.state == State.UNACKED:
        c.fault.settle(c.ctx)
        with trace.learning(WRITE_TIMER):  # its marker is written on the way in: t = 0 is taken after it
            sent_at = time.monotonic()
            sent_ns = time.time_ns()
            c.sock.send(UNACKED_PAYLOAD)
        return _Broken(lambda: time.monotonic() - sent_at, sent_ns=sent_ns)
    if run.scenario.state in (State.ZERO_WINDOW, State.RETRACTED_WINDOW):
        # The rule needs the fault in place before the first window probe, and that probe never leaves before
        # rto after the window-closing ACK: tcp_ack_probe() arms ICSK_TIME_PROBE0 for tcp_probe0_when(), which is
        # rto << backoff with backoff 0, and the timer wheel only rounds up.  A retracted window's first
        # retransmission leaves rto after the send (netkit.model.retracted).  fault_at counts from the
        # window-closing ACK (read before the fault, above) to once the fault took effect: two jiffies of
        # margin.  (It was half the rto, a guess: in a quiet fresh-Debian container peer-gone's teardown took
        # 132 ms, the first probe still left at 0.208 s, unanswered, and every figure matched the rule.)
        deadline = rto_s - 2 / run.kernel.hz
    else:
        k = run.scenario.keepalive  # idle and intvl read from the settings, after the prediction exists
        deadline = FAULT_DEADLINE_FRACTION * min(k.idle, k.intvl)  # well before the next keepalive run
    if burst is not None:
        sent_at, sent_ns = burst
        fault_at = time.monotonic() - sent_at
        c.fault.settle(c.ctx)
        return _Broken(lambda: time.monotonic() - sent_at, fault_at, deadline, sent_ns)
    if run.scenario.state == State.ZERO_WINDOW:
        fault_at = time.monotonic() - last_received_before
    else:
        fault_at = c.since_last_received()
    others_at = tuple(tcp_info(s).last_ack_recv_ms / 1000 for s, _ in c.others)
    if clock == Clock.WINDOW_CLOSED:  # a hung peer's answers move tcpi_last_ack_recv: count on from the closing
        closed_at = time.monotonic() - fault_at
        c.fault.settle(c.ctx)
        return _Broken(lambda: time.monotonic() - closed_at, fault_at, deadline)
    if c.others and c.peer_sock.fileno() == -1:  # the fault made the peer forget the connection: all of them
        for _, peer_sock in c.others:
            close_silently(peer_sock)
    c.fault.settle(c.ctx)
    return _Broken(c.since_last_received, fault_at, deadline, others_fault_at_s=others_at)
