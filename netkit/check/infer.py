"""Inferring a program's keepalive settings from what sock_diag shows of its socket. Pure.

check-server reads them off an answered probe (below); check-client off its
unanswered probes (:class:`ProbeTimes`), where each timer's *requested*
expiry says the setting exactly and the probes' spacing shows the wheel's lateness.

A keepalive timer's period is its expiry plus the time since the last
segment received (both in the same sock_diag dump): right after the connect
that is ``idle``; right after an answered probe (which re-armed the timer
for ``intvl``, the reply following the probe by microseconds) it is
``intvl``.  ``cnt`` is the number of probes outstanding (``idiag_retrans``)
at the last sight of the socket before the kernel killed it.
"""

from __future__ import annotations

from ..tcpsocket import Sample, TcpSocketDiag


def timer_period_s(sock: TcpSocketDiag) -> int:
    """Whole seconds between the last segment received and the timer's next run (at least 1)."""
    assert sock.info is not None
    return max(1, round((sock.expires_ms + sock.info.last_ack_recv_ms) / 1000))


def infer_idle(sock: TcpSocketDiag) -> tuple[int, str]:
    """``idle`` from the keepalive timer right after the connect, and how."""
    assert sock.info is not None
    return timer_period_s(sock), (
        f"the keepalive timer right after the connect: expires in {sock.expires_ms} ms, "
        f"{sock.info.last_ack_recv_ms} ms after the last segment received")


def infer_intvl(sock: TcpSocketDiag) -> tuple[int, str]:
    """``intvl`` from the timer an answered probe re-armed, and how."""
    assert sock.info is not None
    return timer_period_s(sock), (
        f"the timer the answered probe re-armed: next run in {sock.expires_ms} ms, "
        f"{sock.info.last_ack_recv_ms} ms after the reply")


def infer_cnt(probes: int, sent: int | None) -> str:
    """How ``cnt`` was inferred (the probes outstanding at the last sight).

    The counter is the namespace's, and says so: a program's other sockets
    there (a proxy's loopback connection to its own client, also probing)
    count too -- pgbouncer's 3-probe death counted 7.
    """
    return (f"probes outstanding at the last sight of the socket (idiag_retrans); "
            f"TcpExt TCPKeepAlive, namespace-wide, counted {sent} sent")


def infer_first_probe_idle(requested_s: float) -> tuple[int, str]:
    """``idle`` from the requested expiry (sock_diag) of the timer run that sent the first unanswered probe.

    The run that probes is the one at ``idle`` after the last segment
    received, so its *requested* time is ``idle`` exactly (the wheel may run it
    later; sock_diag shows what was asked for).  An earlier arming, at the
    connect, can only be early by the time from the connect to the last
    segment received, which the whole-second rounding absorbs below 0.5 s.
    """
    return max(1, round(requested_s)), (
        f"the timer run that sent probe 1 was requested {requested_s:.3f} s after the last segment received")


def infer_rearmed_intvl(rearmed_after_s: float, spacing_s: list[float]) -> tuple[int, str]:
    """``intvl`` from the timer probe 1 re-armed: its requested expiry minus the probe's time; the spacing confirms."""
    spacing = f"; the probes' spacing: {', '.join(f'{s:.3f}' for s in spacing_s)} s" if spacing_s else ""
    return max(1, round(rearmed_after_s)), (
        f"probe 1 re-armed the timer for {rearmed_after_s:.3f} s (sock_diag's requested expiry){spacing}")


class ProbeTimes:
    """Keepalive probes as successive sock_diag looks see them: their times, and the timers that say idle and intvl.

    A probe went out between the last look that saw ``k - 1`` outstanding and
    the first that saw ``k``: its time is the middle of the two.  The look
    before probe 1 holds the requested expiry of the run that sent it; the
    look after, the expiry probe 1 re-armed (``intvl`` after the run).
    """

    def __init__(self, anchor: float) -> None:
        self.anchor = anchor
        self.at_s: list[float] = []  # probe k went out between two looks: the middle of them
        self.first_requested_s: float | None = None  # the requested expiry of the run that sent probe 1
        self.rearmed_s: float | None = None  # what probe 1 re-armed the timer for

    def saw(self, before: Sample, now: Sample) -> list[int]:
        """The probes sent between two looks (their numbers), recorded."""
        old, new = before.sock, now.sock
        assert old is not None and new is not None
        out_before = old.retrans if old.timer == "keepalive" else 0
        if new.timer != "keepalive" or new.retrans <= out_before:
            return []
        went_at = (before.end + now.start) / 2
        if out_before == 0 and new.retrans == 1:
            if old.timer == "keepalive":
                self.first_requested_s = self._requested(before)
            self.rearmed_s = now.start + new.expires_ms / 1000 - went_at
        numbers = list(range(out_before + 1, new.retrans + 1))
        self.at_s += [round(went_at - self.anchor, 3)] * len(numbers)
        return numbers

    def vanished(self, before: Sample) -> None:
        """The socket was gone at the look after ``before``: if no probe had been seen, note the run it waited for.

        A peer that answers probe 1 with a RST (a rebooted peer) kills the
        socket tens of microseconds after the probe, between two looks, so no
        look sees probe 1 outstanding.  The last look still holds the
        requested expiry of the run that sent it, which is what says ``idle``.
        """
        old = before.sock
        if self.first_requested_s is None and old is not None and old.timer == "keepalive" and old.retrans == 0:
            self.first_requested_s = self._requested(before)

    def _requested(self, look: Sample) -> float:
        """The requested expiry of the timer ``look`` saw, from the anchor."""
        assert look.sock is not None
        return look.start + look.sock.expires_ms / 1000 - self.anchor
