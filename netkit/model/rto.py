"""The retransmission timer's arithmetic, shared by the RTO and the persist timer: backoff, deadline, clamp.

Both timers back off by doubling (``min(rto << 1, TCP_RTO_MAX)``) and, with
TCP_USER_TIMEOUT, arm their last run for what remains until the deadline
(``tcp_clamp_rto_to_user_timeout``, ``tcp_clamp_probe0_to_user_timeout``),
never shorter than ``TCP_TIMEOUT_MIN`` jiffies.  Without a user timeout the
RTO gives up after ``tcp_model_timeout(tcp_retries2, TCP_RTO_MIN)``
(:func:`tcp_model_timeout_s`).  The rules are in docs/rules.md ("The RTO
clamp", "tcp_retries2 without a user timeout"); what each timer makes of
them is in :mod:`.retransmission` and :mod:`.persist`.

``TCP_RTO_MAX`` is a socket's own value since Linux 6.15 (``tcp_rto_max(sk)``
= ``icsk_rto_max``: the ``TCP_RTO_MAX_MS`` socket option, or the namespace's
``net.ipv4.tcp_rto_max_ms`` when the socket was made), so every function here
that caps at it takes the socket's value (``rto_max_s``, or ``rto_max_ms``
for the jiffy rules), 120 s by default: docs/rules.md, "The maximum RTO".
"""

from __future__ import annotations

from typing import NamedTuple

from ..kernel import KernelInfo
from .wheel import latest_death_s, wheel_granularity_s

TCP_RTO_MIN_S = 0.2
TCP_RTO_MAX_S = 120.0
TCP_RTO_MAX_MS = 44  # the socket option (include/uapi/linux/tcp.h, 6.15); Python's socket module does not name it yet
RTO_MAX_MS_SYSCTL = "net.ipv4.tcp_rto_max_ms"  # 6.15, "tcp: add tcp_rto_max_ms sysctl": new sockets' maximum
RTO_MIN_US_SYSCTL = "net.ipv4.tcp_rto_min_us"  # 6.11, "tcp: add sysctl_tcp_rto_min_us": new sockets' minimum
DEFAULT_RTO_MAX_MS = round(TCP_RTO_MAX_S * 1000)  # tcp_rto_max_ms's default; the constant before 6.15
RTO_MAX_MS_RANGE = (1000, 120_000)  # TCP_RTO_MAX_MS and net.ipv4.tcp_rto_max_ms: MSEC_PER_SEC..TCP_RTO_MAX_SEC * 1000


def socket_rto_max_s(rto_max_ms: int | None, hz: int) -> float:
    """``tcp_rto_max(sk)`` in seconds: ``msecs_to_jiffies(rto_max_ms)`` as the kernel keeps it (None: TCP_RTO_MAX).

    ``do_tcp_setsockopt`` (TCP_RTO_MAX_MS) and ``tcp_init_sock`` (the sysctl)
    both store ``msecs_to_jiffies(ms)``: rounded up to a whole jiffy.
    """
    if rto_max_ms is None:
        return TCP_RTO_MAX_S
    return round(msecs_to_jiffies(rto_max_ms, hz) / hz, 6)


def default_rto_s(kernel: KernelInfo) -> float:
    """The RTO of a fresh connection on a veth: TCP_RTO_MIN plus one jiffy of RTT rounding."""
    return round(TCP_RTO_MIN_S + kernel.jiffy_s, 6)


TCP_CLOCK_MS_S = 0.001  # the TCP clock's unit without usec timestamps: two truncated readings differ by up to this
TCP_TIMEOUT_MIN_JIFFIES = 2  # include/net/tcp.h: the clamp never arms a timer shorter than this
DEFAULT_RETRIES2 = 15  # tcp_sk_init: a new namespace's net.ipv4.tcp_retries2 (TCP_RETR2), icsk_backoff's cap too


def linear_backoff_thresh(rto_max_s: float, rto_base_s: float = TCP_RTO_MIN_S) -> int:
    """``ilog2(tcp_rto_max(sk) / rto_base)``: the doublings before ``tcp_model_timeout`` turns linear (9 by default)."""
    return int(rto_max_s / rto_base_s + 1e-9).bit_length() - 1  # ilog2 of the jiffies' integer quotient


def tcp_model_timeout_s(boundary: int, rto_base_s: float = TCP_RTO_MIN_S, rto_max_s: float = TCP_RTO_MAX_S) -> float:
    """``tcp_model_timeout(sk, boundary, rto_base)`` (net/ipv4/tcp_timer.c), in seconds.

    How long after ``retrans_stamp`` ``retransmits_timed_out`` gives up without
    TCP_USER_TIMEOUT: the time ``boundary`` retransmissions take when the RTO
    starts at ``rto_base`` and doubles, up to ``linear_backoff_thresh =
    ilog2(tcp_rto_max(sk) / rto_base)`` doublings; beyond that each one adds
    ``tcp_rto_max(sk)`` (TCP_RTO_MAX, 120 s, before 6.15 and by default)::

        boundary <= thresh:  ((2 << boundary) - 1) x rto_base
        else:                ((2 << thresh) - 1) x rto_base + (boundary - thresh) x rto_max

    ``tcp_retries2`` 15 with TCP_RTO_MIN (200 ms, thresh 9): 204.6 + 6 x 120 = 924.6 s;
    with a maximum RTO of 5 s (thresh ilog2(25) = 4): 6.2 + 11 x 5 = 61.2 s.
    A SYN's budget uses ``rto_base`` = TCP_TIMEOUT_INIT (1 s, thresh 6).
    ``rto_base`` stays TCP_RTO_MIN whatever ``tcp_rto_min_us`` says
    (``retransmits_timed_out``: ``unsigned int rto_base = TCP_RTO_MIN;``).
    """
    thresh = linear_backoff_thresh(rto_max_s, rto_base_s)
    if boundary <= thresh:
        return round(((2 << boundary) - 1) * rto_base_s, 6)
    return round(((2 << thresh) - 1) * rto_base_s + (boundary - thresh) * rto_max_s, 6)


class ClampedRuns(NamedTuple):
    """The timer runs from the clock's start to the one clamped to the deadline (TCP_USER_TIMEOUT)."""

    runs: int  # runs that (re)transmit, when none is pushed past the deadline
    last_s: float  # delay of the final, clamped arming after the last of them
    one_less: bool  # lateness can push the last of them past the deadline: it aborts instead of sending
    last_if_one_less_s: float  # then the clamped arming starts one run earlier: this long, rounded as such


def clamped_runs(rto_s: float, deadline_s: float, first_offset_s: float, hz: int,
                 rto_max_s: float = TCP_RTO_MAX_S) -> ClampedRuns:
    """Timer runs from the clock start until the one clamped to the deadline.

    ``first_offset_s``: when the first counted run is, after the clock start.
    The clamp (``tcp_clamp_rto_to_user_timeout``,
    ``tcp_clamp_probe0_to_user_timeout``) arms ``min(rto, remaining)``.  When
    accumulated lateness pushes the last nominal run past the deadline, the
    run before it is the one whose arming gets clamped: a timer of nearly a
    whole ``rto``, rounded up on a coarser wheel level (at HZ=100 a 1.7 s
    timer is 80 ms late at most, not the 30 ms of the short final arming).
    """
    offset, rto, runs, late, previous = first_offset_s, rto_s, 0, 0.0, first_offset_s
    while True:
        runs += 1  # this run (re)transmits
        rto = min(rto * 2, rto_max_s)
        if offset + rto >= deadline_s:
            return ClampedRuns(runs, deadline_s - offset, runs > 1 and offset + late >= deadline_s,
                               deadline_s - previous)
        previous = offset
        offset += rto
        late += wheel_granularity_s(rto, hz)


def _last_arming_late(last_s: float, kernel: KernelInfo, in_ms: bool) -> float:
    """Lateness of the final, clamped arming: its wheel rounding, or -- when a
    late run landed just short of the deadline -- the clamp's floor plus a jiffy.

    ``in_ms``: the RTO's clamp (``tcp_clamp_rto_to_user_timeout``) arms
    ``msecs_to_jiffies(UT - elapsed)`` with ``elapsed`` in milliseconds of
    ``tcp_time_stamp_ts`` (the TCP clock, not jiffies): rounded up into
    jiffies, the arming can end up to one jiffy past ``retrans_stamp + UT``,
    and one millisecond more, as ``elapsed`` is the difference of two
    truncated readings (``tcp_mstamp`` and the skb's timestamp, each cut to
    whole milliseconds: up to 1 ms less than the time that passed, so
    ``remaining`` up to 1 ms more; docs/rules.md, "The RTO clamp").  The
    persist timer's clamp counts in jiffies throughout (``tcp_jiffies32 -
    icsk_probes_tstamp`` against ``msecs_to_jiffies(UT)``): neither.
    """
    rounding = kernel.jiffy_s + TCP_CLOCK_MS_S if in_ms else 0.0
    return max(wheel_granularity_s(last_s, kernel.hz) + rounding, (TCP_TIMEOUT_MIN_JIFFIES + 1) * kernel.jiffy_s)


def clamped_windows(expected: float, fixed_late: float, clamped: ClampedRuns, kernel: KernelInfo,
                     in_ms: bool = True) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """The death window with every nominal run, and (if lateness can drop the last) the one-run-less window.

    ``in_ms``: the clamp computes the remaining time in milliseconds (the RTO's, not the persist timer's).
    """
    low = round(expected - kernel.jiffy_s, 6)
    window = (low, latest_death_s(expected, fixed_late + _last_arming_late(clamped.last_s, kernel, in_ms), kernel))
    if not clamped.one_less:
        return window, None
    late = fixed_late + _last_arming_late(clamped.last_if_one_less_s, kernel, in_ms)
    return window, (low, latest_death_s(expected, late, kernel))


def tcp_model_timeout_jiffies(retries2: int, hz: int, rto_max_s: float = TCP_RTO_MAX_S) -> int:
    """:func:`tcp_model_timeout_s` for ``tcp_retries2`` in jiffies (its ``rto_base``, TCP_RTO_MIN, is HZ / 5 jiffies)."""
    return round(tcp_model_timeout_s(retries2, TCP_RTO_MIN_S, rto_max_s) * hz)


# -- the same rules in jiffies, as the kernel computes each arming (the timer ledger checks them exactly) --------


def msecs_to_jiffies(ms: int, hz: int) -> int:
    """``msecs_to_jiffies`` for a non-negative ``ms`` (include/linux/jiffies.h): rounded *up* to whole jiffies."""
    return -(-ms * hz // 1000)


def jiffies_to_msecs(jiffies: int, hz: int) -> int:
    """``jiffies_to_msecs`` (kernel/time/time.c): exact where HZ divides 1000, else rounded up."""
    return -(-jiffies * 1000 // hz)


def rto_max_jiffies(hz: int, rto_max_ms: int | None = None) -> int:
    """``tcp_rto_max(sk)``: ``msecs_to_jiffies`` of the socket's maximum (None: ``TCP_RTO_MAX``, 120 s)."""
    return msecs_to_jiffies(DEFAULT_RTO_MAX_MS if rto_max_ms is None else rto_max_ms, hz)


def backed_off_rto_jiffies(rto_jiffies: int, backoffs: int, hz: int, rto_max_ms: int | None = None) -> int:
    """``icsk_rto`` after ``backoffs`` RTO runs: each does ``icsk_rto = min(icsk_rto << 1, tcp_rto_max(sk))``.

    (``tcp_retransmit_timer``, ``out_reset_timer:``; the linear timeouts of
    thin streams apply only with ``tcp_thin_linear_timeouts`` or
    ``TCP_THIN_LINEAR_TIMEOUTS``, which netkit never sets.)
    """
    return min(rto_jiffies << backoffs, rto_max_jiffies(hz, rto_max_ms))


def clamp_rto_to_user_timeout_jiffies(rto_jiffies: int, user_timeout_ms: int | None, elapsed_ms: int, hz: int) -> int:
    """``tcp_clamp_rto_to_user_timeout(sk)`` (net/ipv4/tcp_timer.c): the delay an RTO run re-arms for.

    ``elapsed_ms`` is ``tcp_time_stamp_ts(tp) - tp->retrans_stamp``: the
    TCP clock in milliseconds (``tcp_mstamp / USEC_PER_MSEC`` without
    microsecond timestamps) since the first (attempted) retransmission's skb
    timestamp.  Then ``remaining = user_timeout - elapsed``;
    ``if (remaining <= 0) return 1;`` else
    ``min_t(u32, icsk->icsk_rto, msecs_to_jiffies(remaining))``.
    """
    if not user_timeout_ms:
        return rto_jiffies
    remaining = user_timeout_ms - elapsed_ms
    if remaining <= 0:
        return 1  # "user timeout has passed; fire ASAP"
    return min(rto_jiffies, msecs_to_jiffies(remaining, hz))


def probe0_when_jiffies(rto_jiffies: int, backoff: int, hz: int, rto_max_ms: int | None = None) -> int:
    """``tcp_probe0_when(sk, tcp_rto_max(sk))`` (include/net/tcp.h): the persist timer's next delay.

    ``tcp_probe0_base(sk) = max_t(u32, icsk_rto, TCP_RTO_MIN)``, shifted by
    ``min_t(u8, ilog2(TCP_RTO_MAX / TCP_RTO_MIN) + 1, icsk_backoff)``,
    capped at the maximum.  The persist timer never doubles ``icsk_rto``
    itself: only ``icsk_backoff`` grows (``tcp_send_probe0``).
    """
    shift = min(int(TCP_RTO_MAX_S / TCP_RTO_MIN_S).bit_length(), backoff)  # ilog2(n) + 1 is n's bit length
    return min(probe0_base_jiffies(rto_jiffies, hz) << shift, rto_max_jiffies(hz, rto_max_ms))


def probe0_base_jiffies(rto_jiffies: int, hz: int) -> int:
    """``tcp_probe0_base(sk)`` (include/net/tcp.h): ``max_t(u32, icsk_rto, TCP_RTO_MIN)``.

    The constant TCP_RTO_MIN (HZ / 5), not the socket's minimum: an RTO that
    ``tcp_rto_min_us`` lets fall below 200 ms still probes a closed window
    from 200 ms.
    """
    return max(rto_jiffies, round(TCP_RTO_MIN_S * hz))


def clamp_probe0_to_user_timeout_jiffies(when: int, user_timeout_ms: int | None, elapsed_jiffies: int | None,
                                         hz: int) -> int:
    """``tcp_clamp_probe0_to_user_timeout(sk, when)`` (net/ipv4/tcp_timer.c), all in jiffies.

    ``elapsed_jiffies`` is ``tcp_jiffies32 - icsk_probes_tstamp`` (None:
    no stamp yet, ``!icsk->icsk_probes_tstamp`` -- the arming made before the
    first probe run).  ``remaining = msecs_to_jiffies(user_timeout) -
    elapsed``, at least ``TCP_TIMEOUT_MIN``; the result ``min(remaining,
    when)``.  ``remaining`` is a u32: past the deadline it wraps and
    ``when`` wins (``tcp_probe_timer`` aborts before that can matter).
    """
    if not user_timeout_ms or elapsed_jiffies is None:
        return when
    remaining = (msecs_to_jiffies(user_timeout_ms, hz) - max(elapsed_jiffies, 0)) % (1 << 32)
    return min(max(remaining, TCP_TIMEOUT_MIN_JIFFIES), when)
