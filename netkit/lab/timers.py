"""One run's timer trace: the TCP timers as tracefs records them, and the tested socket's ledger from it.

The run reads the trace feed of its process tree (:mod:`netkit.lab.tracefeed`:
one tracefs instance, read once by its owner) from before it touches the
tested socket, and tells it which of its own system
calls arm which timer (:meth:`TimerTrace.learning`: ``setsockopt(SO_KEEPALIVE)``
arms the keepalive timer, the first ``send`` the retransmission timer).  The
address of that arming, made in process context by this very thread (its
pid as the trace knows it, learned from a ``trace_marker`` line it writes)
inside that very call, is the socket's timer; the ledger keeps that
address's armings and runs, and the TCP death inside one of its runs.
Nothing is guessed from addresses or ports, which every lab shares.

A program's socket (check-server, check-client) is armed by no call of
netkit's: it is found by its cookie instead (:meth:`TimerTrace.program_timer`),
which the kernel prints beside the socket's address in ``tcp:tcp_probe``,
its timer at the offset netkit's own socket shows.

Where tracefs cannot be used the trace is *off*, with the reason, and the
run is judged from the observer and the wire as before (``evidence:
observer``).  A trace problem never fails a scenario.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..evidence.ledger import (
    KEEPALIVE_TIMER,
    Ledger,
    TraceLine,
    build,
    learned_timer,
    marked_pid,
    parse,
    socket_moments,
    timer_in,
)
from .tracefeed import FeedHandle, FeedReader, TraceFeed
from .tracefs import TracefsUnavailable

SWITCH = "NETKIT_TIMER_LEDGER"  # "off": judge from the observer and the wire (to compare, e.g. scripts/bench-gate)
# Every lab's TCP timers, fixed for the instance's life (one feed serves every run of a pool): the ledger selects
# the tested socket's by address (evidence.ledger.build).  Kernels before ".function" filters (about 6.2) record
# every timer instead (TraceInstance.set_filter_or_all).
_TCP_TIMERS = "function.function == tcp_keepalive_timer || function.function == tcp_write_timer"
_CLOSE = "newstate == 7"  # TCP_CLOSE: the deaths (the ledger keeps the one inside our timer's run)
FILTERS = {  # every event a ledger reads, and its filter
    "timer/timer_start": _TCP_TIMERS,
    "timer/timer_expire_entry": _TCP_TIMERS,
    "timer/timer_expire_exit": "",  # no function to filter on: the feed's reader keeps the TCP runs' ends
    "sock/inet_sock_set_state": _CLOSE,
    "sock/inet_sk_error_report": "",
}
SO_COOKIE = getattr(socket, "SO_COOKIE", 57)  # include/uapi/asm-generic/socket.h (Python 3.11 lacks the name)
_NO_SOCKET = "sock_cookie == 0"  # sock_gen_cookie never gives 0: records nothing
# A program's socket (check-server, check-client): also tcp:tcp_probe, on the followed port (TimerTrace.follow_port).
PROGRAM_FILTERS = {**FILTERS, "tcp/tcp_probe": _NO_SOCKET}
NOT_TRACED = ("a SYN-RECV request's timer is armed in the kernel's softirq when the SYN arrives, in no call of "
              "netkit's, and the one event that names the request, tcp:tcp_retransmit_synack, records its listener "
              "and request (skaddr, req) but prints only addresses and ports, which every lab shares: not traced")


def cookie_of(sock: socket.socket) -> int:
    """``SO_COOKIE``: the socket's id for life, as sock_diag and tcp:tcp_probe print it."""
    return int(struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0])


def switched_off() -> bool:
    return os.environ.get(SWITCH, "").lower() in ("off", "0", "no")


def _clock_offset_ns() -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, read in the narrowest of a few brackets (the wire's clock to the trace's)."""
    best = None
    for _ in range(5):
        before = time.monotonic_ns()
        real = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, real - (before + after) // 2)
    assert best is not None
    return best[1]


def workers_feed() -> FeedHandle | str | None:
    """The trace feed a pool's workers read: this process's (made now if need be), why there is none, or None (off)."""
    if switched_off():
        return None
    try:
        return TraceFeed.owned(FILTERS).handle()
    except (TracefsUnavailable, OSError) as exc:
        return _why(exc)


def _why(exc: Exception) -> str:
    """A tracefs problem as a run's note: TracefsUnavailable says why itself; anything else is named as tracefs's."""
    return str(exc) if isinstance(exc, TracefsUnavailable) else f"tracefs: {exc}"


class TimerTrace:
    """The run's view of the trace feed (None when off: ``note`` says why) and the timers it has learned."""

    def __init__(self, feed: FeedReader | None, hz: int, note: str = "") -> None:
        self.feed = feed
        self.hz = hz
        self.note = note
        self.timers: dict[str, str] = {}  # function -> address
        self.owned_from: dict[str, int] = {}  # address -> when it was certainly the tested socket's (its learning)
        self.tid: int | None = None  # the learning thread as the trace names it: its markers are the ledger's
        self.unarmed: str | None = None  # a learning call that armed no timer (its function): the trace went off
        self.alive_at: int | None = None  # a program's socket received a segment then: it had not died before
        self.reference: tuple[int, str] | None = None  # netkit's own socket for a program's: its cookie, keepalive timer

    @classmethod
    def start(cls, hz: int, filters: dict[str, str] = FILTERS) -> TimerTrace:
        """A trace of the timers this thread will arm in :meth:`learning` blocks, or an off trace with the reason."""
        trace = cls(None, hz)
        if switched_off():
            trace.note = f"the timer ledger was switched off ({SWITCH}={os.environ[SWITCH]})"
            return trace
        try:
            trace.feed = FeedReader.open(filters)
        except (TracefsUnavailable, OSError) as exc:
            trace.note = _why(exc)
        return trace

    def off(self, why: str) -> None:
        """No ledger for this run: the feed is given up and ``why`` is the note the result carries."""
        self.close()
        self.note = why

    def _lines(self) -> list[TraceLine] | None:
        """Every line the feed recorded from the run's start until now; None (the trace is off) if it cannot say."""
        if self.feed is None:
            return None
        try:
            return parse(self.feed.sync())
        except (TracefsUnavailable, OSError, ValueError) as exc:  # a reader that stopped or fell behind: no ledger
            self.off(_why(exc))
            return None

    @contextmanager
    def learning(self, function: str) -> Iterator[None]:
        """The ``function`` timer this thread arms inside the block is the tested socket's: follow it from then on."""
        watching = self.feed is not None and function not in self.timers
        token = f"nk-learning-{secrets.token_hex(6)}"
        if watching and self.feed is not None:
            try:
                self.feed.mark(token)
            except OSError as exc:
                self.off(f"tracefs: {exc}")
        before = time.monotonic_ns()
        yield
        after = time.monotonic_ns()
        if not watching or self.feed is None:
            return
        lines = self._lines()
        if lines is None:
            return
        tid = marked_pid(lines, token)  # this thread as the trace names it (a container's pids are not)
        address = None if tid is None else learned_timer(lines, tid, function, before, after)
        if address is None:
            self.off(f"the trace did not show exactly one {function} armed by netkit's own call")
            self.unarmed = function
            return
        self.timers[function] = address
        self.owned_from[address] = before
        self.tid = tid

    def follow_port(self, port: int) -> None:
        """Record every segment an established socket on ``port`` receives (``tcp:tcp_probe``): a program's, netkit's.

        Set before the connection exists, so its first segments are kept; the
        cookies pick the two sockets out later (:meth:`program_timer`).  Only
        a process that owns its feed changes its filters (check-server and
        check-client do; a pool's worker shares its owner's).
        """
        if self.feed is None:
            return
        if self.feed.owner is None:
            self.off("tcp:tcp_probe cannot follow a port on a feed this process does not own")
            return
        try:
            self.feed.owner.set_filter("tcp/tcp_probe", f"sport == {port} || dport == {port}")
        except OSError as exc:
            self.off(f"tracefs: {exc}")

    def learn_reference(self, own: socket.socket) -> None:
        """netkit's own connected socket, the reference that finds a program's socket's timer (:meth:`program_timer`).

        ``SO_KEEPALIVE`` on arms its keepalive timer in a learned call (the
        address), off deletes it: no probe ever leaves.  Its cookie picks its
        ``tcp:tcp_probe`` lines out, which give its own address.
        """
        if self.feed is None:
            return
        with self.learning(KEEPALIVE_TIMER):
            own.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        own.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
        timer = self.timers.pop(KEEPALIVE_TIMER, None)
        if self.feed is not None and timer is not None:
            self.reference = (cookie_of(own), timer)

    def program_timer(self, cookie: int) -> int | None:
        """The keepalive timer of the program's socket (``cookie``, from sock_diag), followed from now on; returns the
        moment (monotonic ns) that socket last received a segment.

        Both sockets must have received a segment on the followed port
        (:meth:`follow_port`): ``tcp:tcp_probe`` prints each one's address,
        and the program's timer sits at the reference's offset from its own
        (:func:`netkit.evidence.ledger.timer_in`).  None (the trace is off,
        ``note`` says why) if either is missing.
        """
        if self.feed is None or self.reference is None:
            return None
        lines = self._lines()
        if lines is None:
            return None
        own, _ = socket_moments(lines, self.reference[0])
        address, received = socket_moments(lines, cookie)
        if own is None or address is None or not received:
            self.off("the trace did not show both netkit's and the program's sockets receiving a segment "
                      "(tcp:tcp_probe), so the program's timer could not be found")
            return None
        self.timers[KEEPALIVE_TIMER] = timer_in(address, (own, self.reference[1]))
        self.alive_at = received[-1]
        return received[-1]

    def finish(self, zero_real_ns: int | None, *, zero_mono_ns: int | None = None) -> Ledger | None:
        """The ledger on the run's axis, or None (``note`` says why).

        t = 0 is ``zero_real_ns`` on the wire's clock (CLOCK_REALTIME), or
        ``zero_mono_ns`` on the trace's own (a moment :meth:`program_timer`
        read from the trace).
        """
        if self.feed is None:
            return None
        if not self.timers:
            self.off("no timer of the tested socket was learned")
            return None
        if not zero_real_ns and not zero_mono_ns:
            self.off("no t = 0 on the wire to put the ledger on the run's axis")
            return None
        lines = self._lines()
        self.close()
        if lines is None:
            return None
        try:
            zero_ns = zero_mono_ns if zero_mono_ns else (zero_real_ns or 0) - _clock_offset_ns()
            ledger = build(lines, self.timers.values(), self.hz, zero_ns, self.owned_from, self.tid, self.alive_at)
        except (ValueError, KeyError) as exc:  # a kernel that prints an event differently: no ledger, never a crash
            self.note = f"the trace could not be read as a timer ledger: {exc}"
            return None
        if ledger.lost:  # the buffer overflowed: a missing arming would read as a rule error
            self.note = "the trace lost events (its buffer overflowed): judged from the observer and the wire"
            return None
        return ledger

    def close(self) -> None:
        """Done with the feed (this run's view of it; the feed itself serves the process's next runs)."""
        if self.feed is not None:
            feed, self.feed = self.feed, None
            feed.close()


__all__ = ["FILTERS", "NOT_TRACED", "PROGRAM_FILTERS", "SWITCH", "TimerTrace", "cookie_of", "switched_off", "workers_feed"]
