"""When the persist timer gives up: zero-window probes (``tcp_probe_timer``), or data that never leaves (no route).

The persist timer's first run stamps ``icsk_probes_tstamp``; with
TCP_USER_TIMEOUT every later run aborts once ``now - icsk_probes_tstamp >=
UT``, and ``tcp_send_probe0`` clamps the next probe to that moment
(``tcp_clamp_probe0_to_user_timeout``).  The first probe leaves ``rto`` after
the zero-window ACK (``tcp_probe0_when``: ``rto << backoff``), so counted from
that last received segment the death comes at ``rto + UT``.  Without a user
timeout the run after the ``tcp_retries2``-th unanswered probe aborts
(``icsk_probes_out >= tcp_retries2``).  docs/rules.md, "The persist timer".
"""

from __future__ import annotations

from ..enums import Clock, CountSource
from ..errors import NotModelled
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .fault_rule import ANSWERED_NEEDS_USER_TIMEOUT, DataPath, FaultRule
from .prediction import DeathPrediction
from .rto import TCP_RTO_MIN_S, clamped_runs, clamped_windows, socket_rto_max_s
from .wheel import latest_death_s, wheel_granularity_s

PERSIST_NEEDS_RETRIES2 = ("zero-window probing without TCP_USER_TIMEOUT needs tcp_retries2 set low "
                          "(the default 15 backs off for ~15 minutes)")


def persist_death(
    kernel: KernelInfo, rto_s: float, ut_ms: int | None, retries2: int | None, error: str,
    count_source: CountSource, measured_from: Clock, why: str, rto_max_ms: int | None = None,
) -> DeathPrediction:
    """The persist (probe0) timer, its first run ``tcp_probe0_base`` after the clock's start.

    The base is ``max(rto, TCP_RTO_MIN)`` (:func:`.rto.probe0_base_jiffies`):
    an RTO below 200 ms (``tcp_rto_min_us``) does not shorten it.  With a
    user timeout: death at first probe + UT.  Without: ``tcp_probe_timer``
    aborts on the run where ``icsk_probes_out >= tcp_retries2``, i.e. after
    ``retries2`` probes at ``base x (2^k - 1)``, each delay capped at the
    socket's maximum RTO (``tcp_probe0_when(sk, tcp_rto_max(sk))``).
    """
    jiffy = kernel.jiffy_s
    rto_s = max(rto_s, TCP_RTO_MIN_S)  # tcp_probe0_base(sk)
    rto_max_s = socket_rto_max_s(rto_max_ms, kernel.hz)
    first_late = wheel_granularity_s(rto_s, kernel.hz)
    since = measured_from.since
    if ut_ms:
        deadline = ut_ms / 1000
        clamped = clamped_runs(rto_s, deadline, 0.0, kernel.hz, rto_max_s)  # at 0, 2 rto, 6 rto... after the first
        probes = clamped.runs
        expected = rto_s + deadline
        window, alternative = clamped_windows(expected, first_late, clamped, kernel, in_ms=False)
        return DeathPrediction(
            rule=(f"tcp_probe_timer with TCP_USER_TIMEOUT {ut_ms} ms: {why}; the first probe leaves rto = "
                  f"{rto_s:.3f} s after {since} and stamps icsk_probes_tstamp; probes back off (rto << backoff), "
                  f"clamped to that stamp + UT, where the timer aborts: death {expected:.3f} s after {since}, "
                  f"{probes} probes"),
            expected_s=round(expected, 6), window_s=window,
            expected_count=probes, expected_error=error, count_source=count_source, measured_from=measured_from,
            alternative_window_s=alternative, alternative_count=probes - 1 if alternative else None,
        )
    if retries2 is None:
        raise NotModelled(PERSIST_NEEDS_RETRIES2)
    # before probe 1, 2, ... and before the aborting run
    delays = [min(rto_s * (1 << k), rto_max_s) for k in range(retries2 + 1)]
    expected = sum(delays)
    late = sum(wheel_granularity_s(d, kernel.hz) for d in delays)
    capped = any(d == rto_max_s for d in delays)
    total = (f"the sum of min(rto x 2^k, {rto_max_s:g} s) for k = 0..{retries2}, the socket's maximum RTO "
             f"capping the backoff (tcp_probe0_when(sk, tcp_rto_max(sk)))" if capped else
             f"rto x (2^{retries2 + 1} - 1)")
    return DeathPrediction(
        rule=(f"tcp_probe_timer with tcp_retries2 = {retries2}: {why}; probes every rto << backoff from rto = "
              f"{rto_s:.3f} s after {since}; the run after the {retries2}th unanswered probe aborts "
              f"(icsk_probes_out >= tcp_retries2): death at {total} = {expected:.3f} s"),
        expected_s=round(expected, 6), window_s=(round(expected - jiffy, 6), latest_death_s(expected, late, kernel)),
        expected_count=retries2, expected_error=error, count_source=count_source, measured_from=measured_from,
    )


def zero_window_death(
    settings: KeepaliveSettings, kernel: KernelInfo, fault: FaultRule, family: str, rto_s: float,
    retries2: int | None = None, rto_max_ms: int | None = None,
) -> DeathPrediction:
    """The peer's window is closed and it goes away: when the persist timer gives up (from the zero-window ACK).

    Every fault but a reset leaves the persist timer probing into the void;
    a hung peer answers every probe with a zero window, which resets
    ``icsk_probes_out`` but not ``icsk_probes_tstamp`` (``tcp_ack_probe``
    clears it only when the window opens: "tcp: fix TCP_USER_TIMEOUT with zero
    window", 5.11), so the user timeout still ends it at the same moment.
    """
    if fault.data_path is DataPath.RESET:
        jiffy = kernel.jiffy_s
        rto_s = max(rto_s, TCP_RTO_MIN_S)  # tcp_probe0_base(sk)
        return DeathPrediction(
            rule=(f"tcp_probe_timer: the first zero-window probe leaves rto = {rto_s:.3f} s after the zero-window ACK; "
                  "the peer has no socket for it and answers with a RST: tcp_reset(), ECONNRESET"),
            expected_s=rto_s,
            window_s=(round(rto_s - jiffy, 6), latest_death_s(rto_s, wheel_granularity_s(rto_s, kernel.hz), kernel)),
            expected_count=1, expected_error="ECONNRESET", count_source=CountSource.WIN_PROBES,
        )
    if fault.data_path is DataPath.ANSWERED:
        if not settings.user_timeout_ms:
            raise NotModelled(ANSWERED_NEEDS_USER_TIMEOUT)
        why = ("the peer hangs with its window closed, answering every probe with a zero window, which resets "
               "icsk_probes_out but not icsk_probes_tstamp")
        return persist_death(kernel, rto_s, settings.user_timeout_ms, None, "ETIMEDOUT", CountSource.WIN_PROBES,
                              Clock.WINDOW_CLOSED, why, rto_max_ms)
    return persist_death(kernel, rto_s, settings.user_timeout_ms, retries2, fault.timeout_error(family),
                          CountSource.WIN_PROBES, Clock.LAST_RECEIVED, "the peer's receive window is closed", rto_max_ms)
