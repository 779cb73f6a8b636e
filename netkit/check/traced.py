"""The program's socket on the kernel's clock: its keepalive timer's ledger, for check-server and check-client.

The program's socket is not netkit's, so no call of netkit's arms its
timers.  It is found by what the kernel itself prints
(:meth:`netkit.lab.timers.TimerTrace.program_timer`): its cookie, which
sock_diag reports, beside its address in the ``tcp:tcp_probe`` line of every
segment it receives; its keepalive timer at the offset netkit's own socket
shows (``SO_KEEPALIVE`` on and off, in a learned call).  The moment it last
received a segment is then t = 0 on the kernel's clock, and the CLOSE in its
keepalive timer's run the death judged (``KernelClock``).  Where tracefs
cannot be used the audit judges sock_diag's bracket, as before, and says why.
"""

from __future__ import annotations

from ..lab.timers import TimerTrace
from .result import KernelClock

SAME_MOMENT_S = 0.02  # sock_diag's whole milliseconds and its sampling, against the trace's moment of one segment


def kernel_zero(trace: TimerTrace, cookie: int, sampled_s: float) -> int | None:
    """t = 0 on the kernel's clock (monotonic ns): the program's socket's last segment received (tcp:tcp_probe).

    sock_diag's reading of the same moment (``sampled_s``, monotonic s, from
    ``tcpi_last_ack_recv``'s whole milliseconds) must agree within
    ``SAME_MOMENT_S``, or the trace's moment is another segment's and the
    ledger is not used.
    """
    zero_ns = trace.program_timer(cookie)
    if zero_ns is not None and abs(zero_ns / 1e9 - sampled_s) > SAME_MOMENT_S:
        trace.off(f"the program's socket last received {zero_ns / 1e9 - sampled_s:+.3f} s from the segment "
                  "sock_diag saw: not the same one, so the ledger is not used")
        return None
    return zero_ns


def on_the_kernels_clock(trace: TimerTrace, zero_ns: int | None, result: KernelClock) -> None:
    """The program socket's ledger into ``result``; the kernel's CLOSE in its keepalive timer's run is the time judged."""
    ledger = trace.finish(None, zero_mono_ns=zero_ns) if zero_ns is not None else None
    if ledger is None:
        trace.close()
        result.evidence_note = trace.note or "no timer ledger"
        return
    result.evidence, result.ledger = "trace", ledger
    if ledger.death is not None:
        result.kernel_death_s = round(ledger.death.t_s, 6)


__all__ = ["SAME_MOMENT_S", "kernel_zero", "on_the_kernels_clock"]
