"""Proving the handshake states: connect() to a dead peer (SYN-SENT), a client that vanishes mid-handshake (SYN-RECV).

No connection is ever established, so the procedure differs from the
established states' (:mod:`.run`), while the lab, the capture, the
prediction and the judging are the same:

SYN-SENT (the tested side is the client):

1. the server listens; unless the fault is link-down, each side's
   neighbour entry for the other is pinned (:meth:`Lab.pin_neighbours`), so
   that the rule is the SYN timer's alone;
2. the fault breaks the path *before* the connect (peer-reboot: nothing
   listens any more; peer-gone: the server's namespace is destroyed);
3. the prediction is made -- with the tested namespace's
   ``tcp_syn_linear_timeouts`` and neighbour timers -- and the client
   connects (TCP_SYNCNT on its socket, or the namespace's
   ``tcp_syn_retries``), non-blocking;
4. a real-time observer polls the socket until connect() ends: its error
   (SO_ERROR), the time since the connect() call, and the SYN
   retransmissions (TcpExt.TCPSynRetrans of the tested namespace; the wire's
   SYNs where the fault lets them reach the tap).  A refusal is timed by the
   peer's RST on the wire.

SYN-RECV (the tested side is the server's listener):

1. neighbours pinned; the listener's SYN-ACK retries set (TCP_SYNCNT on it,
   or the namespace's ``tcp_synack_retries``);
2. the fault (blackhole) makes the client drop everything it receives,
   before it connects: it sends its SYN and never sees the SYN-ACK;
3. once the listener holds the request (sock_diag shows it), the client's
   socket is closed -- a SYN-SENT socket leaves without a word -- so no SYN
   retransmission restarts the request's timer: the client has vanished;
4. the observer waits until shortly before the predicted drop, then asks
   sock_diag every few ms whether the request is still there.  Its time is
   counted from the first SYN-ACK on the tested veth (the tap's timestamp),
   and read at the end of the dump that no longer shows it: never before the
   drop.  The SYN-ACK retransmissions are TcpExt.TCPSynRetrans and the
   wire's SYN-ACKs.  No application hears of it: the error is "none".
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from ..enums import EventKind, KeepaliveVia, State
from ..errors import NetkitError, ScenarioCancelled
from ..evidence.classify import classify
from ..evidence.death import count_of
from ..evidence.events import SAMPLED, Event
from ..evidence.frames import Frame
from ..evidence.ledger import WRITE_TIMER
from ..evidence.verdict import OBSERVER_SAMPLE_S
from ..evidence.wire import WireEvidence, evidence
from ..lab.diag import DiagWatch
from ..lab.faults import FaultContext, fault_object
from ..lab.features import has_sysctl
from ..lab.lab import SERVER_PORT, Endpoint, Lab
from ..lab.sysctl import set_sysctl
from ..lab.tcpinfo import tcp_info
from ..lab.timers import NOT_TRACED, TimerTrace
from ..model.fault_rule import DataPath
from ..model.handshake import HandshakeFacts
from ..model.prediction import DeathPrediction
from ..tcpsocket import REQUEST_STATES
from .build import Observed, WireView, result_from, wire_evidence
from .context import RunContext
from .observe import WARMUP_LEAD_S, Death, give_up_after_s, prompt_observer, socket_error
from .result import Progress, ScenarioResult
from .spec import Scenario
from .steps import Counted

TCP_SYNCNT = getattr(socket, "TCP_SYNCNT", 7)
HANDSHAKE_COUNTERS = ("TCPSynRetrans", "TCPTimeouts", "TCPSpuriousRtxHostQueues")
REQUEST_SEEN_TIMEOUT_S = 0.5  # the SYN reaches the listener within microseconds on a veth
DIAG_POLL_S = 0.002  # near the predicted drop; one dump on an open raw socket takes a fraction of a millisecond
SYN_SYSCTL = {State.SYN_SENT: "net.ipv4.tcp_syn_retries", State.SYN_RECV: "net.ipv4.tcp_synack_retries"}
LINEAR_TIMEOUTS_SYSCTL = "net.ipv4.tcp_syn_linear_timeouts"  # 6.5
Address = tuple[str, int]


def handshake_facts(endpoint: Endpoint) -> HandshakeFacts:
    """What the handshake rules read from the tested namespace: its linear SYN timeouts."""
    try:
        return HandshakeFacts(int(endpoint.sysctl(LINEAR_TIMEOUTS_SYSCTL)))
    except FileNotFoundError:  # before 6.5: no linear timeouts
        return HandshakeFacts(0)


def new_namespace_facts() -> HandshakeFacts:
    """A new namespace's handshake facts on the running kernel, with no lab: asked of the kernel, not its version.

    A kernel with the sysctl starts every namespace at its default (4); one
    without it (before 6.5, or a backport's absence) has no linear timeouts.
    """
    return HandshakeFacts() if has_sysctl(LINEAR_TIMEOUTS_SYSCTL) else HandshakeFacts(0)


def prove_handshake(run: RunContext) -> ScenarioResult:
    """The procedure (module docstring) for a handshake state, in a built lab whose tested veth is being captured."""
    return _syn_sent(run) if run.scenario.state == State.SYN_SENT else _syn_recv(run)


def _listen(lab: Lab, family: str) -> socket.socket:
    listener = lab.server.socket(family)
    lab.callback(listener.close)
    lab.listeners.append(listener)
    listener.bind((lab.server.address(family), SERVER_PORT))
    listener.listen(8)
    return listener


def _set_retries(scenario: Scenario, tested: Endpoint, sock: socket.socket) -> None:
    """TCP_SYNCNT on the socket, or the namespace's SYN / SYN-ACK retries (before the socket needs them)."""
    retries = scenario.syn_retries or 0  # the Scenario requires it for a handshake state
    if scenario.keepalive_via == KeepaliveVia.SOCKET:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_SYNCNT, retries)
        return
    set_sysctl(tested, SYN_SYSCTL[State(scenario.state)], retries)


def _syn_sent(run: RunContext) -> ScenarioResult:
    scenario, lab = run.scenario, run.lab
    family, tested, peer = scenario.family, lab.client, lab.server
    fault = fault_object(scenario.fault)
    listener = _listen(lab, family)
    if fault.info.rule.data_path is not DataPath.LOCAL:
        lab.pin_neighbours(family)
    sock = tested.socket(family)
    lab.callback(sock.close)
    _set_retries(scenario, tested, sock)
    if scenario.keepalive.user_timeout_ms is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, scenario.keepalive.user_timeout_ms)
    facts = handshake_facts(tested)  # before the fault: peer-gone takes the tested veth away
    ctx = FaultContext(lab, family, tested, peer, listener)
    fault.prepare(ctx)
    fault.apply(ctx)
    fault.settle(ctx)
    prediction = run.predict(handshake=facts)
    address = (peer.address(family), SERVER_PORT)
    sock.setblocking(False)
    trace = TimerTrace.start(run.kernel.hz)
    lab.callback(trace.close)
    counted = Counted.start(tested.namespace, HANDSHAKE_COUNTERS)
    with trace.learning(WRITE_TIMER):  # tcp_connect arms the SYN's retransmission timer, in this call
        connect_ns = time.time_ns()  # inside the block: its trace marker is written before, not in between
        started = time.monotonic()
        code = sock.connect_ex(address)
        returned = time.monotonic()  # before the learning's own work on the way out (reading the trace: ms)
    samples: list[Event] = []
    if code == errno.EINPROGRESS:
        with prompt_observer():
            measured, error = _wait_for_connect(sock, started, prediction, run.cancel, run.on_progress, samples)
    else:
        measured, error = round(returned - started, 6), errno.errorcode.get(code, str(code))
        if trace.unarmed:  # nothing to learn: judged from the call's return, and the note says so plainly
            trace.note = f"connect() failed at once ({error}), before any timer was armed: no ledger"
    retransmits = tcp_info(sock).retransmits  # icsk_retransmits: every RTO run's attempt, sent or not
    counts = counted.since()
    local = sock.getsockname()[:2]
    run.stop_capture()
    timeline = [Event(0.0, "connect(): the first SYN", kind=EventKind.CONNECT)] + samples
    if measured is None:
        timeline.append(Event(round(time.monotonic() - started, 3), "still connecting; gave up waiting",
                              kind=EventKind.GAVE_UP))
    elif error != "none":
        timeline.append(Event(measured, f"connect() failed: {error}", kind=EventKind.DEATH))
    else:
        timeline.append(Event(measured, "connect() succeeded", kind=EventKind.CONNECT))
    observed = Observed(scenario, run.kernel, prediction, Death(measured, error, 0, retransmits), counts,
                        _in_time_order(timeline), lab.name)
    view = _wire_view(prediction, observed.count, local, address, connect_ns, "SYN")
    wire, pcap_data = wire_evidence(scenario, run.capture, run.capture_error, view)
    ledger = trace.finish(wire.anchor_ns or connect_ns)
    if ledger is not None and wire.anchor_ns in (0, connect_ns):  # no SYN on the tap: t = 0 moves to the kernel's
        ledger = ledger.moved_to_first_call(WRITE_TIMER)
    return result_from(observed, wire, pcap_data, ledger, trace.note)


def _in_time_order(timeline: list[Event]) -> tuple[Event, ...]:
    return tuple(sorted(timeline, key=lambda e: e.t_s))


def _wait_for_connect(
    sock: socket.socket, started: float, prediction: DeathPrediction, cancel: threading.Event,
    on_progress: Callable[[Progress], None] | None, samples: list[Event],
) -> tuple[float | None, str]:
    """Poll the connecting socket until connect() ends: (time since the connect() call, its error)."""
    give_up_s = give_up_after_s(prediction)
    poller = select.poll()
    poller.register(sock, select.POLLOUT | select.POLLERR | select.POLLHUP)
    seen = 0
    while True:
        if cancel.is_set():
            raise ScenarioCancelled("cancelled while waiting for connect() to end")
        if poller.poll(OBSERVER_SAMPLE_S * 1000):
            measured = round(time.monotonic() - started, 6)  # first: every later syscall adds to it
            return measured, socket_error(sock)
        elapsed = time.monotonic() - started
        retransmits = tcp_info(sock).retransmits
        if retransmits > seen:
            seen = retransmits
            samples.append(Event(round(elapsed, 3), f"SYN retransmission {retransmits} (tcpi_retransmits)", SAMPLED,
                                 EventKind.RETRANSMISSION))
        if on_progress:
            on_progress(Progress(elapsed, retransmits, prediction.expected_s))
        if elapsed > give_up_s:
            return None, "none"


def _syn_recv(run: RunContext) -> ScenarioResult:
    scenario, lab, cancel = run.scenario, run.lab, run.cancel
    family, tested, peer = scenario.family, lab.server, lab.client
    fault = fault_object(scenario.fault)
    listener = _listen(lab, family)
    _set_retries(scenario, tested, listener)
    lab.pin_neighbours(family)
    client = peer.socket(family)
    lab.callback(client.close)
    facts = handshake_facts(tested)
    ctx = FaultContext(lab, family, tested, peer, client)
    fault.prepare(ctx)
    fault.apply(ctx)
    fault.settle(ctx)
    prediction = run.predict(handshake=facts)
    counted = Counted.start(tested.namespace, HANDSHAKE_COUNTERS)
    connect_ns = time.time_ns()
    client.setblocking(False)
    watch = DiagWatch(tested.namespace)  # one socket for every poll: no thread, no new socket per dump
    lab.callback(watch.close)
    client.connect_ex((tested.address(family), SERVER_PORT))
    client_address = client.getsockname()[:2]
    server_address = (tested.address(family), SERVER_PORT)
    seen_at = _wait_for_request(watch, server_address, client_address, cancel)
    client.close()  # SYN-SENT: closing sends nothing; no SYN retransmission will restart the request's timer
    samples: list[Event] = []
    with prompt_observer():
        gone_ns = _wait_for_drop(watch, server_address, client_address, seen_at, prediction, cancel, run.on_progress,
                                 samples)
    counts = counted.since()
    run.stop_capture()
    count = count_of(prediction.count_source, 0, None, counts)
    wire, pcap_data = wire_evidence(scenario, run.capture, run.capture_error,
                                    _wire_view(prediction, count, server_address, client_address, connect_ns,
                                               "SYN-ACK"))
    anchor_ns = wire.anchor_ns if wire.anchor_ns else connect_ns  # the measurement's t = 0 is the wire's
    measured = None if gone_ns is None else round((gone_ns - anchor_ns) / 1e9, 6)
    timeline = [Event(0.0, "the listener's first SYN-ACK (the client has vanished)", kind=EventKind.CONNECT)] + samples
    timeline.append(Event(measured, "the request socket is gone (sock_diag)", kind=EventKind.DEATH)
                    if measured is not None
                    else Event(round((time.time_ns() - anchor_ns) / 1e9, 3), "the request is still there; gave up",
                               kind=EventKind.GAVE_UP))
    death = Death(measured, "none" if measured is not None else "alive", 0)
    observed = Observed(scenario, run.kernel, prediction, death, counts, _in_time_order(timeline), lab.name)
    return result_from(observed, wire, pcap_data, evidence_note=NOT_TRACED)


def _request(watch: DiagWatch, server_address: tuple[str, int], client_address: tuple[str, int]) -> int | None:
    """The listener's request socket for the client: its SYN-ACK retransmissions so far (None: no such request)."""
    found = watch.lookup(server_address, client_address, info=False)
    return found.retrans if found is not None and found.state in REQUEST_STATES else None


def _wait_for_request(watch: DiagWatch, server_address: tuple[str, int], client_address: tuple[str, int],
                      cancel: threading.Event) -> float:
    """Until sock_diag shows the listener's request for the client; returns when (monotonic)."""
    deadline = time.monotonic() + REQUEST_SEEN_TIMEOUT_S
    while _request(watch, server_address, client_address) is None:
        if cancel.is_set():
            raise ScenarioCancelled("cancelled while waiting for the client's SYN")
        if time.monotonic() > deadline:
            raise NetkitError(f"the listener held no request from {client_address[0]} port {client_address[1]} "
                              f"{REQUEST_SEEN_TIMEOUT_S} s after the client's connect()")
        time.sleep(0.001)
    return time.monotonic()


def _wait_for_drop(
    watch: DiagWatch, server_address: tuple[str, int], client_address: tuple[str, int], seen_at: float,
    prediction: DeathPrediction, cancel: threading.Event, on_progress: Callable[[Progress], None] | None,
    samples: list[Event],
) -> int | None:
    """The end of the first dump (CLOCK_REALTIME ns) that no longer shows the request; None if it outlived the wait."""
    low = min(w[0] for w, _ in prediction.outcomes())
    give_up_s = give_up_after_s(prediction)
    seen = 0
    while True:
        elapsed = time.monotonic() - seen_at
        near = elapsed >= low - WARMUP_LEAD_S
        if cancel.wait(DIAG_POLL_S if near else min(0.2, low - WARMUP_LEAD_S - elapsed)):
            raise ScenarioCancelled("cancelled while waiting for the request to be dropped")
        retrans = _request(watch, server_address, client_address)
        if retrans is None:
            return time.time_ns()
        if retrans > seen:
            seen = retrans
            samples.append(Event(round(time.monotonic() - seen_at, 3), f"SYN-ACK retransmission {retrans} "
                                 "(sock_diag idiag_retrans)", SAMPLED, EventKind.RETRANSMISSION))
        if on_progress:
            on_progress(Progress(time.monotonic() - seen_at, retrans, prediction.expected_s))
        if time.monotonic() - seen_at > give_up_s:
            return None


def _wire_view(prediction: DeathPrediction, count: int | None, tested: Address, peer: Address, start_ns: int,
               name: str) -> WireView:
    """The handshake on the tested veth: t = 0 is the tested side's first SYN (or SYN-ACK); the rest retransmit it."""

    def read(frames: Sequence[Frame]) -> tuple[WireEvidence, int]:
        items = classify(frames, tested, peer)
        syns = [i for i, item in enumerate(items) if item.sent and item.kind == "syn" and item.ts_ns >= start_ns]
        if syns:
            anchor_ns, anchor, index = items[syns[0]].ts_ns, f"the first {name}", syns[0]
        else:
            anchor_ns, anchor, index = start_ns, f"the connect() call (no {name} reached the tap)", len(items)
        wire = replace(evidence(items, anchor_ns - 1, anchor, index), anchor_ns=anchor_ns if syns else 0,
                       retransmissions_s=[round((items[i].ts_ns - anchor_ns) / 1e9, 6) for i in syns[1:]])
        return wire, len(syns)

    return WireView(read, {str(prediction.count_source): count}, count, f"{name}s", name, counted="retransmitted")
