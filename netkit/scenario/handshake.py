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
from collections.abc import Callable
from dataclasses import dataclass

from ..enums import KeepaliveVia, State
from ..errors import NetkitError, ScenarioCancelled
from ..evidence.classify import classify
from ..evidence.events import SAMPLED, Event
from ..evidence.wire import WireEvidence, evidence
from ..kernel import KernelInfo
from ..lab import counters
from ..lab.capture import Capture
from ..lab.diag import DiagWatch
from ..lab.faults import FaultContext, fault_object
from ..lab.lab import SERVER_PORT, Endpoint, Lab
from ..lab.tcpinfo import tcp_info
from ..model.fault_rule import DataPath
from ..model.handshake import HandshakeFacts
from ..model.predict import predict
from ..model.prediction import DeathPrediction
from .build import merge_timeline
from .observe import SAMPLE_INTERVAL_S, WARMUP_LEAD_S, prompt_observer, socket_error
from .result import Progress, ScenarioResult, count_of
from .spec import Scenario

TCP_SYNCNT = getattr(socket, "TCP_SYNCNT", 7)
HANDSHAKE_COUNTERS = ("TCPSynRetrans", "TCPTimeouts", "TCPSpuriousRtxHostQueues")
REQUEST_SEEN_TIMEOUT_S = 0.5  # the SYN reaches the listener within microseconds on a veth
DIAG_POLL_S = 0.002  # near the predicted drop; one dump on an open raw socket takes a fraction of a millisecond
REQUEST_STATES = ("SYN_RECV", "12")  # sock_diag shows a request socket as SYN_RECV (or its own state, 12)
SYN_SYSCTL = {State.SYN_SENT: "net.ipv4.tcp_syn_retries", State.SYN_RECV: "net.ipv4.tcp_synack_retries"}


def handshake_facts(endpoint: Endpoint) -> HandshakeFacts:
    """What the handshake rules read from the tested namespace: its linear SYN timeouts."""
    try:
        return HandshakeFacts(int(endpoint.sysctl("net.ipv4.tcp_syn_linear_timeouts")))
    except FileNotFoundError:  # before 6.5: no linear timeouts
        return HandshakeFacts(0)


@dataclass(frozen=True)
class _Run:
    """One handshake scenario's run: what to prove, where, and who listens."""

    scenario: Scenario
    kernel: KernelInfo
    lab: Lab
    capture: Capture | None
    capture_error: str | None
    cancel: threading.Event
    on_progress: Callable[[Progress], None] | None
    on_prediction: Callable[[DeathPrediction], None] | None

    def predict(self, facts: HandshakeFacts) -> DeathPrediction:
        """The one prediction, with the tested namespace's facts; announced before the connect."""
        prediction = predict(self.scenario, self.kernel, handshake=facts)
        if self.on_prediction:
            self.on_prediction(prediction)
        return prediction


def prove_handshake(
    scenario: Scenario, kernel: KernelInfo, lab: Lab, capture: Capture | None, capture_error: str | None,
    cancel: threading.Event, on_progress: Callable[[Progress], None] | None,
    on_prediction: Callable[[DeathPrediction], None] | None,
) -> ScenarioResult:
    """The procedure (module docstring) for a handshake state, in a built lab whose tested veth is being captured."""
    run = _Run(scenario, kernel, lab, capture, capture_error, cancel, on_progress, on_prediction)
    return _syn_sent(run) if scenario.state == State.SYN_SENT else _syn_recv(run)


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
    name = SYN_SYSCTL[State(scenario.state)]
    if tested.sysctl(name, retries) != str(retries):
        raise NetkitError(f"{name} in {tested.namespace.name} did not keep {retries}")


def _syn_sent(run: _Run) -> ScenarioResult:
    scenario, lab, capture = run.scenario, run.lab, run.capture
    family, tested, peer = scenario.family, lab.client, lab.server
    fault = fault_object(scenario.fault)
    listener = _listen(lab, family)
    if fault.rule.data_path is not DataPath.LOCAL:
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
    prediction = run.predict(facts)
    address = (peer.address(family), SERVER_PORT)
    sock.setblocking(False)
    before = counters.tcpext_counts(tested.namespace, HANDSHAKE_COUNTERS)
    connect_ns = time.time_ns()
    started = time.monotonic()
    code = sock.connect_ex(address)
    samples: list[Event] = []
    if code == errno.EINPROGRESS:
        with prompt_observer():
            measured, error = _wait_for_connect(sock, started, prediction, run.cancel, run.on_progress, samples)
    else:
        measured, error = round(time.monotonic() - started, 6), errno.errorcode.get(code, str(code))
    retransmits = tcp_info(sock).retransmits  # icsk_retransmits: every RTO run's attempt, sent or not
    counted = counters.delta(before, counters.tcpext_counts(tested.namespace, HANDSHAKE_COUNTERS))
    local = sock.getsockname()[:2]
    if capture is not None:
        capture.stop()
    timeline = [Event(0.0, "connect(): the first SYN")] + samples
    if measured is not None:
        timeline.append(Event(measured, f"connect() failed: {error}" if error != "none" else "connect() succeeded"))
    else:
        timeline.append(Event(round(time.monotonic() - started, 3), "still connecting; gave up waiting"))
    wire, pcap_data = _wire(scenario, capture, run.capture_error, local, address, connect_ns, "syn", counted,
                            prediction, retransmits)
    return _result(run, prediction, measured, error, counted, timeline, wire, pcap_data, retransmits)


def _wait_for_connect(
    sock: socket.socket, started: float, prediction: DeathPrediction, cancel: threading.Event,
    on_progress: Callable[[Progress], None] | None, samples: list[Event],
) -> tuple[float | None, str]:
    """Poll the connecting socket until connect() ends: (time since the connect() call, its error)."""
    give_up_s = max(w[1] for w, _ in prediction.outcomes()) + max(2.0, 0.5 * prediction.expected_s)
    poller = select.poll()
    poller.register(sock, select.POLLOUT | select.POLLERR | select.POLLHUP)
    seen = 0
    while True:
        if cancel.is_set():
            raise ScenarioCancelled("cancelled while waiting for connect() to end")
        if poller.poll(SAMPLE_INTERVAL_S * 1000):
            measured = round(time.monotonic() - started, 6)  # first: every later syscall adds to it
            return measured, socket_error(sock)
        elapsed = time.monotonic() - started
        retransmits = tcp_info(sock).retransmits
        if retransmits > seen:
            seen = retransmits
            samples.append(Event(round(elapsed, 3), f"SYN retransmission {retransmits} (tcpi_retransmits)", SAMPLED))
        if on_progress:
            on_progress(Progress(elapsed, retransmits, prediction.expected_s))
        if elapsed > give_up_s:
            return None, "none"


def _syn_recv(run: _Run) -> ScenarioResult:
    scenario, lab, capture, cancel = run.scenario, run.lab, run.capture, run.cancel
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
    prediction = run.predict(facts)
    before = counters.tcpext_counts(tested.namespace, HANDSHAKE_COUNTERS)
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
    counted = counters.delta(before, counters.tcpext_counts(tested.namespace, HANDSHAKE_COUNTERS))
    if capture is not None:
        capture.stop()
    wire, pcap_data = _wire(scenario, capture, run.capture_error, server_address, client_address, connect_ns,
                            "syn-ack", counted, prediction)
    anchor_ns = wire.anchor_ns if wire.anchor_ns else connect_ns
    measured = None if gone_ns is None else round((gone_ns - anchor_ns) / 1e9, 6)
    timeline = [Event(0.0, "the listener's first SYN-ACK (the client has vanished)")] + samples
    timeline.append(Event(measured, "the request socket is gone (sock_diag)") if measured is not None
                    else Event(round((time.time_ns() - anchor_ns) / 1e9, 3), "the request is still there; gave up"))
    return _result(run, prediction, measured, "none" if measured is not None else "alive", counted, timeline, wire,
                   pcap_data)


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
    give_up_s = max(w[1] for w, _ in prediction.outcomes()) + max(2.0, 0.5 * prediction.expected_s)
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
                                                                       "(sock_diag idiag_retrans)", SAMPLED))
        if on_progress:
            on_progress(Progress(time.monotonic() - seen_at, retrans, prediction.expected_s))
        if time.monotonic() - seen_at > give_up_s:
            return None


def _wire(
    scenario: Scenario, capture: Capture | None, capture_error: str | None, tested: tuple[str, int],
    peer: tuple[str, int], start_ns: int, first: str, counted: dict[str, int], prediction: DeathPrediction,
    retransmits: int | None = None,
) -> tuple[WireEvidence, bytes]:
    """The handshake on the tested veth: t = 0 is the tested side's first SYN (or SYN-ACK); the rest retransmit it."""
    count = count_of(prediction.count_source, 0, retransmits, counted)
    if capture is None:
        return WireEvidence(visible=False, note=capture_error or "no capture", error=capture_error,
                            kernel={str(prediction.count_source): count}), b""
    items = classify(capture.frames, tested, peer)
    syns = [i for i, item in enumerate(items) if item.sent and item.kind == "syn" and item.ts_ns >= start_ns]
    name = "SYN" if first == "syn" else "SYN-ACK"
    if syns:
        anchor_ns, anchor, index = items[syns[0]].ts_ns, f"the first {name}", syns[0]
    else:
        anchor_ns, anchor, index = start_ns, f"the connect() call (no {name} reached the tap)", len(items)
    wire = evidence(items, anchor_ns - 1, anchor, index)
    wire.anchor_ns = anchor_ns if syns else 0
    wire.retransmissions_s = [round((items[i].ts_ns - anchor_ns) / 1e9, 6) for i in syns[1:]]
    wire.frames, wire.interface, wire.drops, wire.error = len(capture.frames), capture.label, capture.drops, capture.error
    wire.kernel = {str(prediction.count_source): count}
    blind = scenario.fault_info.wire_blind
    if blind or capture.error:
        wire.visible = False
        wire.note = (f"the wire cannot show the {name}s: {blind or capture.error} ({len(syns)} captured, the kernel "
                     f"retransmitted {count if count is not None else '?'})")
    else:
        wire.note = f"every {name} passed the tested veth's tap"
    return wire, capture.pcap()


def _result(
    run: _Run, prediction: DeathPrediction, measured: float | None, error: str, counted: dict[str, int],
    timeline: list[Event], wire: WireEvidence, pcap_data: bytes, retransmits: int | None = None,
) -> ScenarioResult:
    events = tuple(sorted(timeline, key=lambda e: e.t_s))
    if wire.visible:
        events = merge_timeline(events, wire, prediction)
    return ScenarioResult(run.scenario, run.kernel, prediction, measured_s=measured, error=error, probes=0,
                          retransmits=retransmits, counters=counted, timeline=events, lab=run.lab.name, wire=wire,
                          pcap_data=pcap_data)
