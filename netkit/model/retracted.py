"""When the kernel kills a connection whose peer retracted its window to zero with data in flight.

A receiver that runs out of buffer may take back window it already offered
(``net.ipv4.tcp_shrink_window`` = 1, Linux 6.5): it drops the segments in
flight and answers each with a zero-window ACK.  The sender then has data
outstanding *and* ``snd_wnd`` = 0, and ``tcp_retransmit_timer`` takes its
zero-window branch (net/ipv4/tcp_timer.c, Linux 6.15 and later)::

    if (!tp->snd_wnd && !sock_flag(sk, SOCK_DEAD) && ...) {
        rtx_delta = tcp_time_stamp_ts(tp) - (tp->retrans_stamp ?: tcp_skb_timestamp_ts(...));
        if (tcp_rtx_probe0_timed_out(sk, skb, rtx_delta)) { tcp_write_err(sk); goto out; }
        tcp_enter_loss(sk);
        tcp_retransmit_skb(sk, skb, 1);
        __sk_dst_reset(sk);
        goto out_reset_timer;          /* backoff, then the RTO clamped to the user timeout */
    }

so ``tcp_write_timeout`` -- ``tcp_retries2``, ``tcp_model_timeout`` -- never
runs, and neither does ``__NET_INC_STATS(TCPTIMEOUTS)`` nor
``tcp_update_rto_stats`` (``tcpi_retransmits`` stays 0).
``tcp_rtx_probe0_timed_out`` decides alone::

    timeout = tcp_rto_max(sk) * 2;                       /* jiffies */
    if (user_timeout) {
        if (rtx_delta > user_timeout) return true;        /* ms: "tcp: avoid too many retransmit packets" */
        timeout = min(timeout, msecs_to_jiffies(user_timeout));
    }
    rcv_delta = icsk_timeout(icsk) - tp->rcv_tstamp;
    if (rcv_delta <= timeout) return false;
    return msecs_to_jiffies(rtx_delta) > timeout;

The user-timeout line is the fix known as CVE-2024-41007 (6.10; 6.1.100,
6.6.41): before it, the run at the user timeout found ``rcv_delta`` small
(a peer that answers keeps ``rcv_tstamp`` fresh), and the clamp
(``tcp_clamp_rto_to_user_timeout``: 1 jiffy once the user timeout has
passed) made it retransmit every two jiffies for as long as ``rcv_delta``
stayed under ``2 x TCP_RTO_MAX`` -- for ever, against a live peer.

Clock: t = 0 is the send of the burst whose tail the peer refused.  Each
zero-window ACK arms the tail loss probe for a jiffy or two (the veth's RTT
is microseconds); that run sends nothing (the segment lies past the zero
window: ``__tcp_retransmit_skb`` says -EAGAIN, ``TCPLossProbes`` stays 0)
and re-arms the RTO for what is left of ``rto`` since the refused segment
was sent (``tcp_rearm_rto``: ``usecs_to_jiffies``, rounded up: a jiffy late
at most).  So the first retransmission leaves ``rto`` after the send -- not
after the last ACK, which came 43 ms after the send on Debian's 6.1 under
emulation -- and is ``retrans_stamp``.  Retransmissions are counted by the namespace's
``Tcp: RetransSegs`` (``__tcp_retransmit_skb``), since ``tcpi_retransmits``
stays 0.  docs/rules.md, "A retracted window".
"""

from __future__ import annotations

from ..enums import Clock, CountSource
from ..errors import NotModelled
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .fault_rule import ANSWERED_NEEDS_USER_TIMEOUT, DataPath, FaultRule
from .prediction import DeathPrediction
from .rto import DEFAULT_RTO_MAX_MS, clamped_runs, clamped_windows, msecs_to_jiffies, socket_rto_max_s
from .wheel import latest_death_s, wheel_granularity_s

SHRINK_WINDOW_SYSCTL = "net.ipv4.tcp_shrink_window"  # Linux 6.5: 1 lets a receiver take back offered window
RETRACTED_MAX_RTO_MAX_MS = 5000  # without a user timeout the death needs 2 x the maximum RTO of silence: 10 s at most
RETRACTED_NEEDS_LIMIT = (
    "a retracted window without TCP_USER_TIMEOUT dies only after twice the maximum RTO without an answer "
    f"(tcp_rtx_probe0_timed_out: {2 * DEFAULT_RTO_MAX_MS // 1000} s with the default TCP_RTO_MAX), and tcp_retries2 "
    "does not apply; set a user timeout, or a maximum RTO (rto_max_ms, Linux 6.15) of at most "
    f"{RETRACTED_MAX_RTO_MAX_MS} ms")
RETRACTED_FAULTS_MEASURED = (DataPath.LOST, DataPath.RESET, DataPath.ANSWERED)


def retracted_not_modelled_reason(fault: FaultRule, user_timeout_ms: int | None, rto_max_ms: int | None) -> str | None:
    """Why netkit has no rule for a retracted window with this fault and these settings (None: it has one)."""
    if fault.data_path not in RETRACTED_FAULTS_MEASURED:
        return (f"a retracted window with a fault whose data path is {fault.data_path} (the link down, or the peer's "
                "namespace gone) is not measured yet: its retransmissions fail locally, which the zero-window branch "
                "ignores; use blackhole, one-way, netem-loss, peer-reboot or peer-hangs")
    if fault.data_path is DataPath.RESET or user_timeout_ms:
        return None
    if fault.data_path is DataPath.ANSWERED:
        return ANSWERED_NEEDS_USER_TIMEOUT
    if rto_max_ms is None or rto_max_ms > RETRACTED_MAX_RTO_MAX_MS:
        return RETRACTED_NEEDS_LIMIT
    return None


def retracted_window_death(settings: KeepaliveSettings, kernel: KernelInfo, fault: FaultRule, family: str,
                           rto_s: float, rto_max_ms: int | None = None) -> DeathPrediction:
    """The zero-window branch of ``tcp_retransmit_timer`` (module docstring), from the send of the burst."""
    ut = settings.user_timeout_ms
    reason = retracted_not_modelled_reason(fault, ut, rto_max_ms)
    if reason:
        raise NotModelled(reason)
    jiffy = kernel.jiffy_s
    first_late = wheel_granularity_s(rto_s, kernel.hz) + jiffy  # and tcp_rearm_rto's rounding up (module docstring)
    if fault.data_path is DataPath.RESET:
        return DeathPrediction(
            rule=(f"tcp_retransmit_timer's zero-window branch: the first retransmission leaves rto = {rto_s:.3f} s "
                  "after the send; the peer has no socket for it and answers with a RST: tcp_reset(), ECONNRESET"),
            expected_s=rto_s, window_s=(round(rto_s - jiffy, 6), latest_death_s(rto_s, first_late, kernel)),
            expected_count=1, expected_error="ECONNRESET", count_source=CountSource.RETRANS_SEGS, measured_from=Clock.SEND)
    rto_max_s = socket_rto_max_s(rto_max_ms, kernel.hz)
    error = fault.timeout_error(family)
    if ut:
        deadline = ut / 1000
        clamped = clamped_runs(rto_s, deadline, 0.0, kernel.hz, rto_max_s)  # at 0, 2 rto, 6 rto... after the first
        expected = rto_s + deadline
        window, alternative = clamped_windows(expected, first_late, clamped, kernel)
        return DeathPrediction(
            rule=(f"tcp_retransmit_timer's zero-window branch with TCP_USER_TIMEOUT {ut} ms: the first retransmission "
                  f"leaves rto = {rto_s:.3f} s after the send and is retrans_stamp; the RTO backs off, "
                  "clamped to retrans_stamp + UT, where tcp_rtx_probe0_timed_out finds rtx_delta > UT however "
                  f"recently the peer answered (CVE-2024-41007's fix): death {expected:.3f} s after the send, "
                  f"{clamped.runs} retransmissions; tcp_retries2 does not apply"),
            expected_s=round(expected, 6), window_s=window, measured_from=Clock.SEND,
            expected_count=clamped.runs, expected_error=error, count_source=CountSource.RETRANS_SEGS,
            alternative_window_s=alternative, alternative_count=clamped.runs - 1 if alternative else None)
    return _silent_for_twice_rto_max(kernel, rto_s, rto_max_ms or DEFAULT_RTO_MAX_MS, rto_max_s, first_late, error)


def _silent_for_twice_rto_max(kernel: KernelInfo, rto_s: float, rto_max_ms: int, rto_max_s: float,
                              first_late: float, error: str) -> DeathPrediction:
    """No user timeout: the first run whose expiry is 2 x rto_max past the last answer, and 2 x rto_max past the first
    retransmission (both in jiffies); every run before it retransmits and backs off."""
    hz, jiffy = kernel.hz, kernel.jiffy_s
    limit = 2 * msecs_to_jiffies(rto_max_ms, hz)
    rto_j = round(rto_s * hz)
    runs, delays, expiry, rto = 0, [rto_j], rto_j, rto_j  # expiry: of the current run, in jiffies from t = 0

    def qualifies(at: int) -> bool:  # rcv_delta = icsk_timeout - rcv_tstamp; rtx_delta from the first retransmission
        return at > limit and at - rto_j > limit

    while not qualifies(expiry):
        runs += 1  # this run retransmits, backs off, re-arms
        rto = min(rto * 2, round(rto_max_s * hz))
        delays.append(rto)
        expiry += rto
    late = sum(wheel_granularity_s(d / hz, hz) for d in delays)
    previous = expiry - delays[-1]
    if runs and qualifies(previous + round(late * hz)):
        raise NotModelled(f"the run at {previous / hz:g} s misses 2 x rto_max ({limit / hz:g} s) by less than the "
                          "timers' lateness can add: which run kills depends on the machine")
    expected = expiry / hz
    return DeathPrediction(
        rule=(f"tcp_retransmit_timer's zero-window branch without a user timeout: tcp_rtx_probe0_timed_out kills at "
              f"the first run whose expiry is more than 2 x rto_max = {limit / hz:g} s after the last answer (the "
              f"zero-window ACK) and after the first retransmission (rto = {rto_s:.3f} s after the send); the RTO "
              f"backs off (capped at {rto_max_s:g} s): death {expected:.3f} s after the send, {runs} "
              "retransmissions; tcp_retries2 does not apply"),
        expected_s=round(expected, 6), window_s=(round(expected - jiffy, 6), latest_death_s(expected, late, kernel)),
        expected_count=runs, expected_error=error, count_source=CountSource.RETRANS_SEGS, measured_from=Clock.SEND)


__all__ = ["RETRACTED_NEEDS_LIMIT", "SHRINK_WINDOW_SYSCTL", "retracted_not_modelled_reason", "retracted_window_death"]
