"""Watching the tested socket: the answered probe, the closed window, the death -- each returned as a value."""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..enums import Clock, CountSource, EventKind
from ..errors import NetkitError, ScenarioCancelled
from ..evidence.events import SAMPLED, Event
from ..evidence.verdict import OBSERVER_SAMPLE_S
from ..keepalive import KeepaliveSettings
from ..lab.tcpinfo import peer_window, tcp_info
from ..model.prediction import DeathPrediction
from ..tcpsocket import TcpInfo
from ..waiting import Drop, WaitTimeout, wait_until
from .result import Progress

WARMUP_SAMPLE_S = 0.002
WARMUP_LEAD_S = 0.1  # start sampling this long before the first probe is due
PEER_GRACE_S = 0.5  # how long to wait for the peer's death after the tested side's
FILL_TIMEOUT_S = 5.0
FRESH_FRACTION = 0.25  # many connections: a reply older than this share of min(idle, intvl) waits for the next round
OBSERVER_RT_PRIORITY = 1  # SCHED_FIFO's lowest: above every normal task, below the kernel's own threads
ARMED_MARGIN_S = 0.05  # tcpi_last_ack_recv counts in jiffies: a segment this close to the arming is not a reply


def wait_for_answered_probe(sock: socket.socket, k: KeepaliveSettings, armed_at: float, cancel: threading.Event) -> None:
    """Return right after a keepalive probe's reply was received.

    A reply resets the socket's receive timestamp, so ``tcpi_last_ack_recv``
    drops back towards zero.  The first probe is due ``idle`` after keepalive
    was armed (``armed_at``, monotonic); we sleep until shortly before and
    then sample every 2 ms (sampling the whole time would cost dozens of
    concurrent scenarios a core), so the fault follows the reply within a few
    ms, long before the next timer run (>= 1 s).
    """
    limit = max(k.idle, k.intvl) + 2.0
    start = time.monotonic()
    if cancel.wait(max(0.0, armed_at + k.idle - WARMUP_LEAD_S - time.monotonic())):
        raise ScenarioCancelled("cancelled while waiting for the first probe")
    dropped = Drop(tcp_info(sock).last_ack_recv_ms)

    def answered() -> bool:
        return dropped(tcp_info(sock).last_ack_recv_ms)

    try:
        wait_until(answered, limit - (time.monotonic() - start), WARMUP_SAMPLE_S, what="the first probe", cancel=cancel)
    except WaitTimeout:
        raise NetkitError(f"no keepalive probe was answered within {limit:.0f} s while the peer was up") from None


def wait_for_answered_probes(
    socks: Sequence[socket.socket], armed: Sequence[float], k: KeepaliveSettings, cancel: threading.Event,
) -> None:
    """Many connections: return right after the last of them received its probe's reply.

    The fault must follow every connection's reply closely: a connection
    whose probe was still unanswered would count its death from an older
    segment.  No baseline sample is needed (one taken late, on a loaded
    machine, would miss a reply and wait a whole interval for the next): an
    idle connection receives nothing after its keepalive was armed
    (``armed``, monotonic, per socket) but probe replies, so a connection is
    answered once ``tcpi_last_ack_recv`` is younger than its arming and at
    most ``FRESH_FRACTION`` of the shorter timer old -- a stale reply waits
    for the next round, which all connections answer together.
    """
    fresh_s = FRESH_FRACTION * min(k.idle, k.intvl)
    limit = max(k.idle, k.intvl) + 2.0
    start = time.monotonic()
    if cancel.wait(max(0.0, min(armed) + k.idle - WARMUP_LEAD_S - time.monotonic())):
        raise ScenarioCancelled("cancelled while waiting for the first probe")
    unanswered = [0]

    def answered() -> bool:
        now = time.monotonic()
        for i, (s, armed_at) in enumerate(zip(socks, armed, strict=True)):
            since = tcp_info(s).last_ack_recv_ms / 1000
            if not (since <= fresh_s and since < now - armed_at - ARMED_MARGIN_S):
                unanswered[0] = len(socks) - i
                return False
        return True

    try:
        wait_until(answered, limit - (time.monotonic() - start), WARMUP_SAMPLE_S, what="the first probes",
                   cancel=cancel)
    except WaitTimeout:
        raise NetkitError(f"up to {unanswered[0]} of {len(socks)} connections had no keepalive probe answered within "
                          f"{limit:.0f} s while the peer was up") from None


def fill_until_zero_window(sock: socket.socket, cancel: threading.Event) -> None:
    """Send until the peer advertises a zero window and everything in flight is acknowledged.

    Then nothing is unacknowledged, the rest waits in the write queue, and the
    persist timer (not the RTO) owns the connection.

    TCP_NODELAY is on while filling: when the peer's window ends less than an
    MSS past what is in flight, Nagle (``tcp_nagle_check`` from
    ``tcp_mss_split_point``) holds that sub-MSS remainder back, and once all is
    acknowledged ``tcp_snd_wnd_test`` still wants a full MSS to fit.  The
    window then never reaches 0: the persist timer sends the remainder as
    *data* (``tcp_write_wakeup``) and the connection dies by the retransmission
    rule.  Seen on Debian 6.1, whose receiver opens the window in smaller
    steps (a 24-byte remainder); 6.12 and later opened it at once.  Where the
    kernel reports the peer's window (``tcpi_snd_wnd``, Linux >= 5.4) the
    state is reached only when it reads 0.
    """
    window: list[int | None] = [None]

    def closed() -> bool:
        try:
            while True:
                sock.send(b"\0" * 65536)
        except BlockingIOError:
            pass
        window[0] = peer_window(sock)
        return tcp_info(sock).unacked == 0 and window[0] in (0, None)

    def not_closed() -> str:
        left = "" if window[0] is None else f" (it still offers {window[0]} bytes)"
        return f"the peer's window did not close within {FILL_TIMEOUT_S:.0f} s{left}"

    nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    try:
        wait_until(closed, FILL_TIMEOUT_S, WARMUP_SAMPLE_S / 4, what="the window to close", cancel=cancel,
                   on_timeout=not_closed)
    finally:
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, nodelay)


RETRACTED_BURST = b"r" * 16384  # more than the peer's cut buffer holds: the rest is in flight when it retracts
RETRACT_TIMEOUT_S = 2.0


def retract_window(sock: socket.socket, peer_sock: socket.socket, cancel: threading.Event) -> tuple[float, int]:
    """Have the peer take its window back with data in flight (state retracted-window); return when the burst left.

    The peer's receive buffer is cut to the kernel's minimum (SO_RCVBUF 1:
    ``SOCK_MIN_RCVBUF``, a few KB) after the handshake, so the window scale
    stays what it was -- ``tcp_select_window`` retracts only with a scale.
    Then one burst: the peer takes what fits, and with
    ``net.ipv4.tcp_shrink_window`` = 1 (:func:`.steps.let_the_peer_retract`)
    it answers with a zero window and drops the rest, which stays in flight.
    Reached when the tested socket has data unacknowledged and the peer's
    window (``tcpi_snd_wnd``) reads 0.  Returned: the moment just before the
    send, on the monotonic and the capture's (CLOCK_REALTIME) clocks -- the
    first retransmission is ``rto`` after it (:mod:`netkit.model.retracted`).
    """
    peer_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sent_at, sent_ns = time.monotonic(), time.time_ns()
    sock.sendall(RETRACTED_BURST)

    def retracted() -> bool:
        return tcp_info(sock).unacked > 0 and peer_window(sock) == 0

    wait_until(retracted, RETRACT_TIMEOUT_S, WARMUP_SAMPLE_S, what="the peer to retract its window", cancel=cancel,
               on_timeout=lambda: (f"the peer did not retract its window within {RETRACT_TIMEOUT_S:g} s "
                                   f"({tcp_info(sock).unacked} segments unacknowledged, its window "
                                   f"{peer_window(sock)} bytes)"))
    return sent_at, sent_ns


def socket_error(sock: socket.socket) -> str:
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return errno.errorcode.get(err, str(err)) if err else "none"


@dataclass(frozen=True)
class Death:
    """The kernel's figures read at the tested socket's death (``measured_s`` None: it did not die)."""

    measured_s: float | None = None
    error: str | None = None
    probes: int | None = None
    retransmits: int | None = None
    peer_error: str | None = None
    peer_lag_s: float | None = None
    events: tuple[Event, ...] = ()
    others: tuple[Ended | None, ...] = ()  # the other connections, in order (None: did not die)
    backoff_max: int | None = None  # the highest tcpi_backoff sampled while it lived (death zeroes it: see _Samples)


@dataclass(frozen=True)
class Ended:
    """Another connection's death, read when the observer woke: ``tcpi_last_ack_recv`` first, then the rest."""

    measured_s: float
    error: str
    probes: int


class _Others:
    """The other connections of a many-connection scenario: each read at once when poll reports its death."""

    def __init__(self, socks: Sequence[socket.socket], poller: select.poll) -> None:
        self.socks = list(socks)
        self.poller = poller
        self.pending = {s.fileno(): i for i, s in enumerate(self.socks)}
        self.ended: list[Ended | None] = [None] * len(self.socks)
        for fd in self.pending:
            poller.register(fd, select.POLLERR | select.POLLHUP | select.POLLIN)

    def read(self, events: dict[int, int]) -> None:
        ready = [fd for fd in events if fd in self.pending]
        infos = [tcp_info(self.socks[self.pending[fd]]) for fd in ready]  # first: later syscalls add to it
        for fd, info in zip(ready, infos, strict=True):
            i = self.pending.pop(fd)
            self.poller.unregister(fd)
            self.ended[i] = Ended(round(info.last_ack_recv_ms / 1000, 6), socket_error(self.socks[i]), info.probes)

    def wait(self, until: Callable[[], bool], cancel: threading.Event) -> tuple[Ended | None, ...]:
        """Poll until every other connection has died or ``until()`` says to give up."""
        while self.pending and not until():
            if cancel.is_set():
                raise ScenarioCancelled("cancelled while waiting for the connections to die")
            self.read(dict(self.poller.poll(OBSERVER_SAMPLE_S * 1000)))
        return tuple(self.ended)


class _Samples:
    """The sampled timeline while waiting: one event per new probe or retransmission, and the highest backoff.

    ``tcpi_backoff`` is read while the socket lives: a timeout's
    ``tcp_done_with_error`` purges the write queue, which zeroes
    ``icsk_backoff`` (``tcp_write_queue_purge``), so at death it reads 0
    whatever the timer did.
    """

    def __init__(self) -> None:
        self.seen = (0, 0)
        self.events: list[Event] = []
        self.backoff_max = 0

    def add(self, probes: int, retransmits: int, elapsed: float, backoff: int = 0) -> None:
        self.backoff_max = max(self.backoff_max, backoff)
        if (probes, retransmits) == self.seen:
            return
        if probes > self.seen[0]:
            self.events.append(Event(round(elapsed, 3), f"probe {probes} sent, unanswered (tcpi_probes)", SAMPLED,
                                     EventKind.PROBE))
        if retransmits > self.seen[1]:
            self.events.append(Event(round(elapsed, 3), f"retransmission {retransmits} (tcpi_retransmits)", SAMPLED,
                                     EventKind.RETRANSMISSION))
        self.seen = (probes, retransmits)


@contextmanager
def prompt_observer() -> Iterator[bool]:
    """While waiting for the death(s), this thread runs SCHED_FIFO: it wakes when a socket dies, not when a CPU frees.

    ``tcpi_last_ack_recv`` is read when the observer wakes, so its figure
    grows with the observer's lateness.  With a hundred labs on two cores
    the deaths coincide with other labs' setup, bookkeeping and teardown, and
    a normal-priority observer was measured up to 60 ms late while the RSTs
    on the wire were all inside the window (``scripts/bench-scale``).  A
    real-time observer preempts them; it sleeps in poll() nearly all the
    time and does microseconds of work per wake-up, and the previous policy
    is restored before any bookkeeping.  Without CAP_SYS_NICE (or with no
    real-time budget in this cgroup) it stays as it was; yields whether it
    is real-time.
    """
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(OBSERVER_RT_PRIORITY))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, policy, param)


def give_up_after_s(prediction: DeathPrediction) -> float:
    """How long a watch waits for a death before it gives up: past the last window by half the expected time, >= 2 s."""
    return max(w[1] for w, _ in prediction.outcomes()) + max(2.0, 0.5 * prediction.expected_s)


def wait_for_death(
    sock: socket.socket,
    peer: socket.socket | None,
    prediction: DeathPrediction,
    since_anchor: Callable[[], float],
    cancel: threading.Event,
    on_progress: Callable[[Progress], None] | None,
    others: Sequence[socket.socket] = (),
) -> Death:
    """Poll the dying socket (and the peer's, if it should die too); read the kernel's figures at death.

    ``since_anchor`` reads the clock the prediction counts on (time since the
    last segment received, or since the send).  ``others``: the scenario's
    other connections (idle), polled in the same loop and each read the
    moment poll reports it; after the first connection's death the loop goes
    on until every one has died or the same give-up time has passed.
    """
    expected = prediction.expected_s
    give_up_s = give_up_after_s(prediction)
    source = CountSource(prediction.count_source)
    counted_from = tcp_info(sock).total_retrans if source is CountSource.RETRANS_SEGS else 0  # live_count's base
    poller = select.poll()
    for s in (sock, peer):
        if s is not None:
            poller.register(s, select.POLLERR | select.POLLHUP | select.POLLIN)
    rest = _Others(others, poller)
    peer_died_at: float | None = None
    samples = _Samples()
    while True:
        if cancel.is_set():
            raise ScenarioCancelled("cancelled while waiting for the connection to die")
        events = dict(poller.poll(OBSERVER_SAMPLE_S * 1000))
        if peer is not None and peer_died_at is None and peer.fileno() in events:
            peer_died_at = time.monotonic()
            poller.unregister(peer)
        if sock.fileno() in events:
            break
        rest.read(events)
        info = tcp_info(sock)
        elapsed = since_anchor()
        samples.add(info.probes, info.retransmits, elapsed, info.backoff)
        if on_progress:
            on_progress(Progress(elapsed, live_count(source, info, counted_from), expected))
        if elapsed > give_up_s:
            gave_up = Event(round(elapsed, 3), "still alive; gave up waiting", kind=EventKind.GAVE_UP)
            return Death(events=tuple(samples.events) + (gave_up,), others=tuple(rest.ended),
                         backoff_max=samples.backoff_max)
    death = replace(_read_death(sock, peer, peer_died_at, prediction, since_anchor, samples.events),
                    backoff_max=samples.backoff_max)
    if not others:
        return death
    rest.read(events)  # the first connection's poll batch: the others that died with it
    poller.unregister(sock)
    if peer is not None and peer_died_at is None:
        poller.unregister(peer)
    return replace(death, others=rest.wait(lambda: since_anchor() > give_up_s, cancel))


def live_count(source: CountSource, info: TcpInfo, total_retrans_before: int) -> int:
    """The prediction's count as the socket shows it while it waits (the namespace's counters are read at the end).

    A retracted window's retransmissions leave ``tcpi_retransmits`` at 0
    (the zero-window branch skips ``tcp_update_rto_stats``): they are counted
    by ``tcpi_total_retrans`` since the watch began.
    """
    if source is CountSource.RETRANSMITS:
        return info.retransmits
    if source is CountSource.RETRANS_SEGS:
        return info.total_retrans - total_retrans_before
    return info.probes


def _read_death(
    sock: socket.socket, peer: socket.socket | None, peer_died_at: float | None,
    prediction: DeathPrediction, since_anchor: Callable[[], float], events: list[Event],
) -> Death:
    died_at = time.monotonic()
    info = tcp_info(sock)  # read first: every later syscall adds to the measurement
    clock = Clock(prediction.measured_from)
    measured = round(since_anchor() if clock.on_the_observers_clock else info.last_ack_recv_ms / 1000, 6)
    error = socket_error(sock)
    events = events + [Event(measured, f"connection dead: {error}, state {info.state}", kind=EventKind.DEATH)]
    peer_error = peer_lag = None
    if peer is not None:
        if peer_died_at is None and _peer_dies_within(peer, PEER_GRACE_S):
            peer_died_at = time.monotonic()
        if peer_died_at is not None:
            peer_error = socket_error(peer)
            peer_lag = round(peer_died_at - died_at, 6)
            events.append(Event(round(measured + peer_lag, 3), f"peer's connection dead: {peer_error}",
                                kind=EventKind.PEER_DEATH))
    return Death(measured, error, info.probes, info.retransmits, peer_error, peer_lag, tuple(events))


def _peer_dies_within(peer: socket.socket, grace_s: float) -> bool:
    """Does the peer's socket report its death within ``grace_s``?

    Its own poll: the shared poller still holds the dead tested socket, which
    is always ready, so polling it would "see" the peer die at once with no
    error (once in a gate run under load: "peer error none, 0.000251 s apart").
    """
    poller = select.poll()
    poller.register(peer, select.POLLERR | select.POLLHUP | select.POLLIN)
    return bool(poller.poll(grace_s * 1000))


def watch_alive(sock: socket.socket, p: DeathPrediction, anchor: float, cancel: threading.Event,
                 on_progress: Callable[[Progress], None] | None) -> Death:
    """Survival: poll the socket until ``alive_until_s`` after the anchor (monotonic); a death is read as it happens.

    The routed lab's flow that keepalive keeps alive through the router, and
    the direct lab's idle connection whose probes its own qdisc refuses
    (:mod:`netkit.model.local_drop`).  ``tcpi_backoff`` is sampled as in
    :func:`wait_for_death`.
    """
    until = anchor + (p.alive_until_s or 0.0)
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP)
    backoff = 0
    while time.monotonic() < until:
        if cancel.is_set():
            raise ScenarioCancelled("cancelled while watching the connection live")
        if poller.poll(20):
            info = tcp_info(sock)
            return Death(round(time.monotonic() - anchor, 6), socket_error(sock), info.probes, info.retransmits,
                         backoff_max=backoff)
        info = tcp_info(sock)
        backoff = max(backoff, info.backoff)
        if on_progress:
            on_progress(Progress(time.monotonic() - anchor, info.probes, p.expected_s))
    info = tcp_info(sock)
    return Death(None, socket_error(sock), info.probes, info.retransmits, backoff_max=max(backoff, info.backoff))
