"""Following one TCP socket of a program through sock_diag, with one poll helper.

Each look is one exact sock_diag lookup by the socket's addresses on one
netlink socket kept in the namespace (:class:`netkit.lab.diag.DiagWatch`:
tens of microseconds, where a dump with its thread costs ~1.5 ms), and looks
are sparse: callers sleep until just before the timer's requested expiry
(:func:`near_expiry`), then look every ``POLL_S``.  So a death is bracketed
between the last look that still saw the socket and the first that did not,
and a dozen audits at once cost the machine next to nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ..enums import EventKind
from ..lab.diag import DiagWatch
from ..lab.namespaces import Namespace
from ..tcpsocket import Sample

POLL_S = 0.005  # sampling step near a timer's expiry
WAKE_EARLY_S = 0.05  # wake this long before a timer's requested expiry

T = TypeVar("T")
TIMER_EVENTS = {"keepalive": EventKind.PROBE, "retransmit": EventKind.RETRANSMISSION,  # what a timer's run sent
                "zero-window-probe": EventKind.ZERO_WINDOW_PROBE}


def timer_event(timer: str) -> EventKind:
    """The kind of timeline event a run of sock_diag's ``timer`` is (its probe or retransmission)."""
    return TIMER_EVENTS.get(timer, EventKind.OTHER)


class SocketFollower:
    """One 4-tuple's socket in one namespace, looked up through sock_diag; :meth:`close` it when done."""

    def __init__(self, namespace: Namespace, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.namespace = namespace
        self.local = local
        self.remote = remote
        self.watch = DiagWatch(namespace)

    def sample(self) -> Sample:
        start = time.monotonic()
        found = self.watch.lookup(self.local, self.remote)
        return Sample(start, time.monotonic(), found)

    def close(self) -> None:
        self.watch.close()

    def until(
        self, check: Callable[[Sample], T | None], timeout_s: float, pause: Callable[[Sample], float],
        sleep: Callable[[float], None] = time.sleep,
    ) -> tuple[T | None, Sample]:
        """Sample until ``check`` returns something (or raises); (None, last sample) after ``timeout_s``.

        ``pause(sample)`` says how long to sleep before the next look;
        ``sleep`` may wake earlier (a program's exit, :meth:`Program.sleep`).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            sample = self.sample()
            found = check(sample)
            if found is not None:
                return found, sample
            if time.monotonic() > deadline:
                return None, sample
            sleep(pause(sample))


def near_expiry(sample: Sample) -> float:
    """How long to sleep: until just before the socket's timer is due, at least one POLL_S."""
    if sample.sock is None or sample.sock.expires_ms / 1000 <= 2 * WAKE_EARLY_S:
        return POLL_S
    wake = sample.start + sample.sock.expires_ms / 1000 - WAKE_EARLY_S
    return max(POLL_S, wake - time.monotonic())


def timer_reference(previous: Sample, sample: Sample) -> Sample:
    """The look that says which timer the socket runs, and its count: ``sample``, unless it caught a run in progress.

    The timer wheel detaches a timer before it calls its handler (``expire_timers``), and the keepalive handler
    re-arms it at its end, or kills the socket there (``tcp_write_err`` before ``tcp_done`` unhashes it).  A look in
    between sees an established socket with no timer pending (sock_diag's timer 0, retrans 0).  Looks wake just
    before the expiry, so on a busy machine one lands there now and then (a CI run's curl check saw one as its last
    look before the death, and took the keepalive death for a retransmission's).  Such a look says nothing of the
    timer; the previous one still does.
    """
    old, new = previous.sock, sample.sock
    if old is not None and new is not None and new.timer == "none" and old.timer != "none" and new.state == old.state:
        return previous
    return sample


class LastLooks:
    """What a follow loop keeps of its looks at a live socket: the last one, and the last that saw its timer.

    The last look bounds the death; the last that saw the timer (:func:`timer_reference`) says which timer ran,
    its count and the probes sent between two looks.
    """

    def __init__(self, first: Sample) -> None:
        self.alive = first
        self.timed = first

    def see(self, sample: Sample) -> tuple[Sample, Sample]:
        """Record a look at the live socket; (the previous timer witness, this look's) for the caller to compare."""
        previous = self.timed
        self.alive, self.timed = sample, timer_reference(previous, sample)
        return previous, self.timed


def every(seconds: float) -> Callable[[Sample], float]:
    return lambda _sample: seconds
