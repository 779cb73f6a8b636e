"""Proving a routed scenario: the middlebox that forgets (:mod:`netkit.model.middlebox` has the rules).

The procedure, in a :class:`netkit.lab.routed.RoutedLab` whose router forgets
an idle flow ``middlebox_timeout_s`` after its last packet:

1. the client connects to the server through the router; the tested side
   enables keepalive; the router's conntrack entry for the flow is read
   (it must be there, ESTABLISHED);
2. the one prediction is made (:func:`netkit.model.predict`) and handed to
   ``on_prediction``; nothing else crosses the idle connection, so t = 0
   is the handshake (the tested socket's last segment received);
3. a thread inside the router's namespace samples the flow's entry every
   10 ms through ctnetlink (whole seconds left, entry id);
4. *survives* (max(idle, intvl) below the timeout): the connection is
   watched for ``SURVIVE_TIMEOUTS`` middlebox timeouts -- it must not die,
   and the same entry must be there in every sample, its remaining timeout
   jumping back at the probes -- then data must cross both ways;
   *expires* (idle above it): the entry must vanish at the timeout; the
   tested socket's death is awaited as in the direct lab
   (:func:`.observe.wait_for_death`); then the peer, which the router never
   let learn anything, must still be ESTABLISHED without error, and its own
   next send must meet the router's verdict: a RST (reject: ECONNRESET) or
   silence (drop: unanswered, the router's conntrack ``invalid`` counter
   rising);
5. the tested veth's capture, the kernel's counters and the router's
   evidence make one :class:`ScenarioResult` (its ``middlebox`` field).
"""

from __future__ import annotations

import select
import socket
import threading
import time

from ..enums import EventKind, MiddleboxAction, Topology
from ..evidence.events import Event
from ..evidence.ledger import KEEPALIVE_TIMER
from ..evidence.middlebox import MiddleboxEvidence, Sample
from ..lab.lab import SERVER_PORT, Lab
from ..lab.routed import ConntrackEntry, MiddleboxConfig, RoutedLab, get_entry, open_conntrack
from ..lab.tcpinfo import tcp_info
from ..lab.timers import TimerTrace
from .build import Observed, established_view, result_from, wire_evidence
from .context import RunContext
from .observe import prompt_observer, socket_error, wait_for_death, watch_alive
from .result import ScenarioResult
from .spec import Scenario
from .steps import Counted, enable_keepalive, write_keepalive_sysctls

SAMPLE_S = 0.005  # the router's entry, read this often in its last second (a lookup takes ~0.5 ms)
COARSE_SAMPLE_S = 0.05  # and this often before: enough to see every refresh (probes are >= 1 s apart)
PEER_SEND = b"are you there?"
PEER_ANSWER_S = 0.5  # the peer's next send: how long the router's RST (reject) may take, or silence (drop) must last
DATA_TIMEOUT_S = 2.0
ANCHOR_SLACK_S = 0.02  # the survival watch's extra length: a few jiffies, for the anchor's rounding
TCPEXT_COUNTERS = ("TCPKeepAlive", "TCPAbortOnTimeout")


def lab_for(scenario: Scenario) -> Lab:
    """The lab a scenario runs in: the two-namespace lab, or the routed one with the scenario's middlebox."""
    if scenario.topology != Topology.ROUTED:
        return Lab()
    return RoutedLab(middlebox_config(scenario))


def middlebox_config(scenario: Scenario) -> MiddleboxConfig:
    assert scenario.middlebox_timeout_s is not None  # a routed Scenario has one (its __post_init__)
    return MiddleboxConfig(scenario.middlebox_timeout_s, str(scenario.middlebox), bool(scenario.masquerade))


def describe(entry: ConntrackEntry | None) -> str | None:
    return None if entry is None else f"{entry.state}, {entry.timeout_s} s left, id {entry.id}"


class EntrySampler:
    """A thread inside the router's namespace reading the flow's conntrack entry until stopped.

    Every SAMPLE_S while the entry is in its last second (ctnetlink's
    timeout, whole seconds rounded down, reads 0) or has just vanished --
    the moments that bracket its expiry -- and every COARSE_SAMPLE_S
    otherwise: a gate runs dozens of routed labs at once beside other
    scenarios' observers, and sampling every 5 ms throughout cost each a
    tenth of a core (the gate's zero-window faults then landed late).
    Each read is one ctnetlink lookup by the flow's original tuple, stamped
    on CLOCK_REALTIME before and after it -- the packet capture's clock -- so
    the samples can be put on the wire's t = 0 (the handshake's last segment,
    to the nanosecond) instead of the jiffy-rounded ``tcpi_last_ack_recv``.
    """

    def __init__(self, lab: RoutedLab, family: str, original: tuple[str, int, str, int]) -> None:
        self.lab, self.family, self.original = lab, family, original
        self.samples: list[tuple[int, int, int | None, int | None]] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="netkit-conntrack", daemon=True)

    def start(self) -> EntrySampler:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.lab.router.namespace.enter_current_thread()  # a throwaway thread: it dies inside the router
            number = socket.AF_INET6 if self.family == "ipv6" else socket.AF_INET
            with open_conntrack(number) as ct:  # one socket for every lookup
                had_entry = False
                while not self.stop_event.is_set():
                    start = time.time_ns()
                    entry = get_entry(ct, self.original)  # a hash lookup (0.5 ms), not a dump (12 ms)
                    self.samples.append((start, time.time_ns(), None if entry is None else entry.timeout_s,
                                         None if entry is None else entry.id))
                    near_expiry = entry.timeout_s == 0 if entry is not None else had_entry
                    had_entry = entry is not None
                    self.stop_event.wait(SAMPLE_S if near_expiry else COARSE_SAMPLE_S)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()
        if self.error is not None:
            raise self.error

    def wait_past(self, t_ns: int, timeout_s: float = 2.0) -> None:
        """Return once a dump has started at or after ``t_ns`` (CLOCK_REALTIME), so the samples cover it."""
        deadline = time.monotonic() + timeout_s
        while not (self.samples and self.samples[-1][0] >= t_ns) and time.monotonic() < deadline:
            if self.error is not None or not self.thread.is_alive():
                return
            time.sleep(SAMPLE_S / 2)

    def relative_to(self, anchor_ns: int) -> tuple[Sample, ...]:
        """The samples in seconds since ``anchor_ns`` (CLOCK_REALTIME)."""
        return tuple((round((a - anchor_ns) / 1e9, 4), round((b - anchor_ns) / 1e9, 4), left, i)
                     for a, b, left, i in self.samples)


def prove_routed(run: RunContext) -> ScenarioResult:
    """The procedure (module docstring), in a built routed lab whose tested veth is being captured."""
    scenario, lab, cancel = run.scenario, run.lab, run.cancel
    assert isinstance(lab, RoutedLab)
    tested, peer = run.sides
    write_keepalive_sysctls(scenario, tested)
    trace = TimerTrace.start(run.kernel.hz)
    lab.callback(trace.close)
    server_sock, client_sock = lab.connect(scenario.family)
    fault_ns = time.time_ns()  # the capture's clock: the handshake is the connection's past
    sock, peer_sock = run.tested_first(server_sock, client_sock)
    with trace.learning(KEEPALIVE_TIMER):  # SO_KEEPALIVE arms the tested socket's keepalive timer
        enable_keepalive(scenario, sock)
    since_handshake_ms = tcp_info(sock).last_ack_recv_ms  # one reading for both clocks
    anchor = time.monotonic() - since_handshake_ms / 1000
    anchor_ns = time.time_ns() - since_handshake_ms * 1_000_000  # replaced by the wire's, if any
    original = (client_sock.getsockname()[0], client_sock.getsockname()[1], lab.server.address(scenario.family),
                SERVER_PORT)  # pre-NAT
    entry = lab.conntrack_lookup(original)
    looked_up_s = round(time.monotonic() - anchor, 3)  # past the entry's timeout: it may have gone unseen
    sampler = EntrySampler(lab, scenario.family, original).start()
    entry_after: str | None = None
    peer_send = data_after = None
    try:
        prediction = run.predict()  # NotModelled for a survival the timer wheel could spoil
        invalid_before = lab.invalid_count()
        counted = Counted.start(tested.namespace, TCPEXT_COUNTERS)
        addresses = (sock.getsockname()[:2], sock.getpeername()[:2])
        since = lambda: tcp_info(sock).last_ack_recv_ms / 1000  # noqa: E731 -- the prediction's clock
        if prediction.alive_until_s is not None:
            death = watch_alive(sock, prediction, anchor, cancel, run.on_progress)
            # anchor_ns is the handshake from tcpi_last_ack_recv, a jiffy coarse either way (jiffies_to_msecs of
            # two tick-aligned stamps): watch ANCHOR_SLACK_S longer, so the samples cover alive_until_s on the
            # wire's clock too (measured once without it: the last dump started 0.5 ms short of 9 s)
            sampler.wait_past(anchor_ns + int(((prediction.alive_until_s or 0.0) + ANCHOR_SLACK_S) * 1e9))
            sampler.stop()
            peer_state, peer_error = tcp_info(peer_sock).state, socket_error(peer_sock)
            data_after = None if death.measured_s is not None else _data_both_ways(sock, peer_sock)
        else:
            with prompt_observer():
                death = wait_for_death(sock, None, prediction, since, cancel, run.on_progress)
            peer_state, peer_error = tcp_info(peer_sock).state, socket_error(peer_sock)
            sampler.stop()
            entry_after = describe(lab.conntrack_entry(scenario.family, (SERVER_PORT, original[1])))  # either way
            peer_send = _peer_send(peer_sock, str(scenario.middlebox))
    finally:
        if sampler.thread.is_alive():
            sampler.stop_event.set()
            sampler.thread.join()
    invalid = lab.invalid_count() - invalid_before
    counts = counted.since()
    run.stop_capture()
    events = (Event(0.0, "last segment received (the handshake)", kind=EventKind.LAST_SEGMENT), *death.events)
    observed = Observed(scenario, run.kernel, prediction, death, counts, events, lab.name)
    wire, pcap_data = wire_evidence(scenario, run.capture, run.capture_error,
                                    established_view(observed, addresses, fault_ns, None))
    if wire.anchor_ns:  # the handshake's last segment on the tap: the samples' t = 0
        anchor_ns, clock = wire.anchor_ns, "the handshake's last segment, its frame on the tested veth"
    else:
        clock = "the handshake's last segment, from tcpi_last_ack_recv (to a jiffy)"
    evidence = MiddleboxEvidence(
        scenario.middlebox_timeout_s or 0, str(scenario.middlebox), bool(scenario.masquerade), describe(entry),
        sampler.relative_to(anchor_ns), SAMPLE_S, clock, entry_after=entry_after, invalid=invalid,
        peer_state=peer_state, peer_error=peer_error, peer_send=peer_send, data_after=data_after,
        looked_up_s=looked_up_s)
    ledger = trace.finish(anchor_ns)  # on the samples' axis: t = 0 is the handshake's last segment
    return result_from(observed, wire, pcap_data, ledger, trace.note, middlebox=evidence)


def _data_both_ways(sock: socket.socket, peer_sock: socket.socket) -> str:
    """Send a few bytes each way; "both ways" when both arrive, else what went wrong."""
    for name, sender, receiver in (("tested -> peer", sock, peer_sock), ("peer -> tested", peer_sock, sock)):
        payload = f"netkit {name}".encode()
        sender.sendall(payload)
        receiver.settimeout(DATA_TIMEOUT_S)
        try:
            got = b""
            while len(got) < len(payload):
                chunk = receiver.recv(len(payload) - len(got))
                if not chunk:
                    return f"{name}: the connection closed"
                got += chunk
        except OSError as exc:
            return f"{name}: {type(exc).__name__} {exc}"
        finally:
            receiver.settimeout(None)
    return "both ways"


def _peer_send(peer_sock: socket.socket, action: str) -> str:
    """The peer's next send after the tested side's death: the router's RST (ECONNRESET) or nothing ("unanswered")."""
    try:
        peer_sock.send(PEER_SEND)
    except OSError as exc:
        return f"send failed: {exc}"
    poller = select.poll()
    poller.register(peer_sock, select.POLLERR | select.POLLHUP | select.POLLIN)
    deadline = time.monotonic() + PEER_ANSWER_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            info = tcp_info(peer_sock)
            return "unanswered" if info.unacked and socket_error(peer_sock) == "none" else (
                f"no error, {info.unacked} segments unacked")
        error = socket_error(peer_sock)
        if error != "none":
            return error
        try:
            data = peer_sock.recv(64, socket.MSG_DONTWAIT)
        except OSError as exc:
            return type(exc).__name__
        if not data:
            return "closed (FIN)"
        if action == MiddleboxAction.REJECT:
            return f"data: {data!r}"
