"""The data-in-flight rules (RTO and zero-window probes), checked against numbers worked out by hand.

Every expected figure below is computed here, in the comments, from the
kernel's own code (net/ipv4/tcp_timer.c; the lines quoted are the ones the
arithmetic follows) and the timer wheel (kernel/time/timer.c: a timer armed
d jiffies ahead lands on level 0 (1-jiffy steps) below 63 jiffies, level 1
(8 jiffies) below 504, level 2 (64 jiffies) below 4032).  Nothing is taken
from netkit's own constants.

The RTO of a fresh veth connection is TCP_RTO_MIN (200 ms) plus one jiffy of
RTT rounding: 0.204 s at HZ=250, 0.201 s at HZ=1000.
"""

import pytest

from netkit import KeepaliveSettings, NotModelled, Scenario
from netkit.kernel import KernelInfo
from netkit.model import not_modelled_reason, predict
from netkit.model.neighbour import neighbour_failure_jiffies
from netkit.model.wheel import runs_at_jiffy

HZ250 = KernelInfo("test", 250, "test")
HZ1000 = KernelInfo("test", 1000, "test")
HZ100 = KernelInfo("test", 100, "test")
K = KeepaliveSettings(1, 1, 3)


def ut(ms):
    return KeepaliveSettings(1, 1, 3, user_timeout_ms=ms)


def test_blackhole_with_user_timeout_dies_ut_after_the_first_retransmission():
    # tcp_retransmit_skb(): "if (!tp->retrans_stamp) tp->retrans_stamp = tcp_skb_timestamp(skb)" -- the clock
    # starts at the first retransmission.  The tail loss probe goes at rto (0.204 s) and restarts the RTO, so
    # the first retransmission is at 2 x 0.204 = 0.408 s.  tcp_clamp_rto_to_user_timeout():
    # "remaining = icsk->icsk_user_timeout - elapsed; ... return min_t(u32, icsk->icsk_rto, ...remaining)".
    # From the clock start the RTO doubles (rto << 1): retransmissions at +0, +0.408, +1.224, +2.856 s;
    # the next would be +6.12 s, past UT = 3 s, so the timer is clamped to +3.0 s, where
    # retransmits_timed_out() is true and tcp_write_err() aborts: 4 retransmissions, death 0.408 + 3 = 3.408 s.
    # Window: 1 jiffy early (3.404); late by the TLP and the first RTO (level 0: 4 ms each), the clamped
    # last arming (0.144 s is level 0, but never shorter than 2 jiffies + 1: 12 ms) and the 2 measurement
    # jiffies (8 ms): 3.408 + 0.028 = 3.436.
    p = predict(Scenario(ut(3000), "ipv4", "blackhole", state="unacked"), HZ250, rto_s=0.204)
    assert p.expected_s == pytest.approx(3.408)
    assert p.expected_count == 4 and p.count_source == "tcpi_retransmits"
    assert p.window_s == pytest.approx((3.404, 3.436))
    assert p.alternative_window_s is None
    assert p.expected_error == "ETIMEDOUT" and p.measured_from == "send"


def test_blackhole_with_retries2_3_waits_for_tcp_model_timeout():
    # tcp_model_timeout(): "if (boundary <= linear_backoff_thresh) timeout = ((2 << boundary) - 1) * rto_base"
    # with rto_base = TCP_RTO_MIN: ((2 << 3) - 1) x 0.2 = 3.0 s after retrans_stamp (linear_backoff_thresh =
    # ilog2(120 / 0.2) = 9 >= 3).  RTO runs at +0, +0.408, +1.224, +2.856, +6.12 s after the first
    # retransmission: the first at or past 3.0 s is +6.12 s, 4 retransmissions before it; death at
    # 0.408 + 6.12 = 6.528 s.  Lateness: TLP + first RTO 8 ms, then 0.408, 0.816 and 1.632 s timers (level 1:
    # 32 ms each) and a 3.264 s timer (816 jiffies, level 2: 256 ms) = 0.36 s, + 8 ms: 6.528 + 0.368 = 6.896.
    # Run 4 (+2.856 s) even at its latest (+2.856 + 0.096) stays short of 3.0 s: no early outcome.
    p = predict(Scenario(K, "ipv4", "blackhole", state="unacked", retries2=3), HZ250, rto_s=0.204)
    assert p.expected_s == pytest.approx(6.528)
    assert p.expected_count == 4
    assert p.window_s == pytest.approx((6.524, 6.896))
    assert p.alternative_window_s is None


def test_link_down_retransmissions_fail_locally_so_the_clock_is_the_send():
    # With no carrier the segment waits in the neighbour queue; each retransmission fails (-EBUSY) and keeps
    # the send time, so retrans_stamp is the send.  Attempts at rto = 0.204, then +0.408 (0.612), +0.816
    # (1.428); the next (+1.632) is past UT = 1.5 s: clamped to 1.5 s, where it aborts.  3 attempts, death
    # 1.5 s after the send.  Late: one jiffy for the first attempt, the clamped 0.072 s arming (12 ms floor),
    # 2 measurement jiffies: 1.5 + 0.024 = 1.524.
    p = predict(Scenario(ut(1500), "ipv4", "link-down", state="unacked"), HZ250, rto_s=0.204)
    assert (p.expected_s, p.expected_count) == (1.5, 3)
    assert p.window_s == pytest.approx((1.496, 1.524))


def test_zero_window_with_user_timeout_dies_rto_plus_ut_after_the_zero_window_ack():
    # tcp_probe_timer() (persist timer): the first window probe leaves rto = 0.204 s after the ACK that closed
    # the window and stamps the clock; "if (icsk->icsk_user_timeout && (s32)(tcp_time_stamp(tp) - start_ts) >
    # icsk->icsk_user_timeout) goto abort".  Probes back off (rto << backoff): the 2nd at +0.408 s, the 3rd
    # would be at +1.224 s > UT = 1 s, so the timer is clamped to +1.0 s and aborts: 2 probes, death
    # 0.204 + 1.0 = 1.204 s.  Late: the first probe's timer (51 jiffies, level 0: 4 ms) + the clamped 0.592 s
    # arming (148 jiffies, level 1: 32 ms) + 8 ms: 1.204 + 0.044 = 1.248.
    p = predict(Scenario(ut(1000), "ipv4", "blackhole", state="zero-window"), HZ250, rto_s=0.204)
    assert p.expected_s == pytest.approx(1.204)
    assert p.expected_count == 2 and p.count_source == "TcpExt.TCPWinProbe"
    assert p.window_s == pytest.approx((1.2, 1.248))
    assert p.measured_from == "last-received"


def test_zero_window_at_hz_1000_uses_that_kernels_jiffies_and_wheel():
    # HZ=1000: rto 0.201 s.  Probes at 0.201 and +0.402 s; the next (+1.206 s) is clamped to UT = 1 s: 2
    # probes, death 1.201 s.  Late: 201 jiffies (level 1: 8 ms) + the clamped 0.598 s arming (598 jiffies,
    # level 2: 64 ms) + 2 ms: 1.201 + 0.074 = 1.275; early by one jiffy: 1.200.
    p = predict(Scenario(ut(1000), "ipv6", "one-way", state="zero-window"), HZ1000, rto_s=0.201)
    assert p.expected_s == pytest.approx(1.201)
    assert p.expected_count == 2
    assert p.window_s == pytest.approx((1.2, 1.275))


def test_at_hz_100_the_one_probe_less_window_rounds_the_long_clamped_arming():
    # Measured on a 6.12 kernel built with CONFIG_HZ_100 (scripts/build-kernel --hz 100, under TCG): zero window,
    # link down, UT 3 s, rto 0.21 s (20 jiffies + 1).  Probes (tcpi_probes) at 0.22, 0.65 and 1.55 s after the
    # zero-window ACK, death 3.30 s with 3 probes.  The first probe stamps icsk_probes_tstamp (0.21 + 1 jiffy
    # late); nominally the probes follow at +0.42, +1.26 and +2.94 s, but each backoff timer is late by up to its
    # wheel granularity (0.42 s = 42 jiffies: level 0, 10 ms; 0.84 and 1.68 s: level 1, 80 ms), so +2.94 s can
    # fall past UT (2.94 + 0.17 >= 3): then the run at +1.26 s arms the clamped timer itself,
    # tcp_clamp_probe0_to_user_timeout(): "remaining = icsk->icsk_user_timeout - elapsed; ... when =
    # min_t(u32, when, remaining)" = 3.0 - 1.26 = 1.74 s = 174 jiffies, level 1: up to 80 ms late, not the
    # 30 ms of the short arming after a fourth probe.  One probe less: 3.21 + 10 ms (first probe) + 80 ms +
    # 2 jiffies (20 ms) = 3.32; the measured 3.30 is inside.  With 4 probes the last arming is 0.06 s (level
    # 0; the clamp's floor, 3 jiffies = 30 ms): 3.21 + 0.01 + 0.03 + 0.02 = 3.27.
    p = predict(Scenario(ut(3000), "ipv4", "link-down", state="zero-window"), HZ100, rto_s=0.21)
    assert p.expected_s == pytest.approx(3.21) and p.expected_count == 4
    assert p.window_s == pytest.approx((3.2, 3.27))
    assert p.alternative_count == 3 and p.alternative_window_s == pytest.approx((3.2, 3.32))
    # The same clamp in tcp_retransmit_timer: unacked data into a blackhole, UT 3 s, measured 3.492-3.516 s
    # with 3 retransmissions.  Clock at the first retransmission (2 x 0.21 = 0.42 s after the send), the same
    # offsets; one less: 3.42 + TLP and first RTO (level 0: 10 ms each) + 80 ms + the RTO clamp's
    # msecs_to_jiffies rounding (1 jiffy, 10 ms) and its elapsed milliseconds, two truncated readings (1 ms)
    # + 20 ms = 3.551.
    p = predict(Scenario(ut(3000), "ipv4", "blackhole", state="unacked"), HZ100, rto_s=0.21)
    assert p.expected_s == pytest.approx(3.42) and p.expected_count == 4
    assert p.window_s == pytest.approx((3.41, 3.49))
    assert p.alternative_count == 3 and p.alternative_window_s == pytest.approx((3.41, 3.551))


def test_zero_window_with_retries2_aborts_after_that_many_probes():
    # tcp_probe_timer(): "max_probes = sock_net(sk)->ipv4.sysctl_tcp_retries2; ... if (icsk->icsk_probes_out
    # >= max_probes) abort".  Probes at rto x (1, 2, 4) after the zero-window ACK = 0.204, 0.612, 1.428 s;
    # the run after the 3rd, 0.204 x 8 = 1.632 s later, aborts: 0.204 x (1 + 2 + 4 + 8) = 3.06 s, 3 probes.
    # Late: 0.204 s (level 0: 4 ms) + 0.408, 0.816 (level 1: 32 ms each) + 1.632 s (408 jiffies, level 1:
    # 32 ms) + 8 ms = 0.108: window [3.056, 3.168].
    p = predict(Scenario(K, "ipv4", "blackhole", state="zero-window", retries2=3), HZ250, rto_s=0.204)
    assert p.expected_s == pytest.approx(3.06)
    assert p.expected_count == 3
    assert p.window_s == pytest.approx((3.056, 3.168))


def test_peer_reboot_answers_data_and_window_probes_with_a_reset():
    unacked = predict(Scenario(K, "ipv4", "peer-reboot", state="unacked"), HZ250, rto_s=0.204)
    assert (unacked.expected_s, unacked.expected_error) == (0.0, "ECONNRESET")
    zero = predict(Scenario(ut(3000), "ipv4", "peer-reboot", state="zero-window"), HZ250, rto_s=0.204)
    assert (zero.expected_s, zero.expected_count, zero.expected_error) == (0.204, 1, "ECONNRESET")


def test_peer_gone_over_ipv6_reports_the_soft_error():
    # inet6_csk_xmit() keeps the failed route lookup in sk_err_soft; tcp_write_err():
    # "sk->sk_err = sk->sk_err_soft ? : ETIMEDOUT".
    v6 = predict(Scenario(ut(3000), "ipv6", "peer-gone", state="unacked"), HZ250, rto_s=0.204)
    v4 = predict(Scenario(ut(3000), "ipv4", "peer-gone", state="unacked"), HZ250, rto_s=0.204)
    assert (v6.expected_error, v4.expected_error) == ("ENETUNREACH", "ETIMEDOUT")
    assert v6.count_source == "tcpi_probes"  # nothing leaves: the persist timer probes (and counts)


# Link down, no UT or UT past the neighbour failure (netkit.model.neighbour).  The neighbour entry is created at the
# send (the carrier loss flushed the table) and goes INCOMPLETE: __neigh_event_send() "next = now +
# max(NEIGH_VAR(neigh->parms, RETRANS_TIME), HZ / 100)", probes start at UCAST_PROBES (3) and the immediate probe
# makes 4; neigh_timer_handler() fails it once "atomic_read(&neigh->probes) >= neigh_max_probes(neigh)" = 3 + 0 + 3,
# i.e. on its 3rd run.  At HZ=250 the 250-jiffy timer is level 1: calc_index() "expires = (expires >>
# LVL_SHIFT(lvl)) + 1" puts the first run on the next multiple of 8 jiffies strictly after send + 250 (send + 251..258),
# and each re-arm from a run on that grid lands exactly 256 later: failure at send + 763..770 jiffies = 3.052..3.080 s.
# RTO attempts (all -EBUSY, the skb still queued) at ~0.216, ~0.640, ~1.472 s; the 4th would come at least 16 jiffies
# after the failure (both chains sit on the same 8-jiffy grid).

def test_the_neighbour_entry_fails_three_grid_rounded_seconds_after_the_send():
    # calc_index(): a 51-jiffy timer (level 0) runs one jiffy late; a 250-jiffy one (level 1) on the next multiple of
    # 8 strictly after its expiry, so re-armed from a run on that grid it runs exactly 256 jiffies later.
    assert runs_at_jiffy(0, 51, 250) == 52
    assert (runs_at_jiffy(0, 250, 250), runs_at_jiffy(256, 250, 250), runs_at_jiffy(5, 250, 250)) == (256, 512, 256)
    # First run at send + 251..258, then +256 twice: 763..770 jiffies (3.052..3.080 s); at HZ=1000 the 1000-jiffy
    # timer is level 2 (64-jiffy grid): 1001..1064, then +1024 twice: 3049..3112.
    assert neighbour_failure_jiffies(250) == (763, 770)
    assert neighbour_failure_jiffies(1000) == (3049, 3112)


def test_link_down_ipv4_retries2_dies_at_the_neighbour_failure_with_etimedout():
    # tcp_v4_err() -> tcp_ld_RTO_revert(): backoff 3 -> 2, icsk_rto 0.816 s; "remaining = icsk->icsk_rto -
    # usecs_to_jiffies(delta_us)" with the queued original sent ~3.06 s ago: < 0 -> tcp_retransmit_timer(sk) at once,
    # whose tcp_write_timeout() sees tcp_model_timeout(3) = 15 x 0.2 = 3.0 s passed: tcp_write_err(), "sk_err_soft ? :
    # ETIMEDOUT" -- tcp_v4_err() stores EHOSTUNREACH only after the revert.  3 attempts.  Window: one jiffy before the
    # earliest failure, 2 measurement jiffies after the latest: [3.048, 3.088].
    p = predict(Scenario(K, "ipv4", "link-down", state="unacked", retries2=3), HZ250, rto_s=0.204)
    assert (p.expected_s, p.expected_count, p.expected_error) == (pytest.approx(3.052), 3, "ETIMEDOUT")
    assert p.window_s == pytest.approx((3.048, 3.088))
    assert p.alternative_window_s is None and p.measured_from == "send" and p.count_source == "tcpi_retransmits"


def test_link_down_ipv6_retries2_dies_one_backed_off_rto_after_the_tsq_retransmission():
    # tcp_v6_err() reverts only for ICMPV6_NOROUTE; ip6_link_failure() sends ICMPV6_ADDR_UNREACH: sk_err_soft =
    # EHOSTUNREACH, no revert.  Freeing the queued skb runs tcp_wfree(); the -EBUSY attempts left TSQ_THROTTLED, so
    # tcp_tsq_write() -> tcp_xmit_retransmit_queue() retransmits and re-arms the RTO for icsk_rto = 0.204 << 3 =
    # 1.632 s = 408 jiffies (level 1) from the failure, which sits on the 8-jiffy grid: +416 jiffies.  Death at
    # 763..770 + 416 = 1179..1186 jiffies = 4.716..4.744 s, EHOSTUNREACH, still 3 (icsk_retransmits unchanged).
    p = predict(Scenario(K, "ipv6", "link-down", state="unacked", retries2=3), HZ250, rto_s=0.204)
    assert (p.expected_s, p.expected_count, p.expected_error) == (pytest.approx(4.716), 3, "EHOSTUNREACH")
    assert p.window_s == pytest.approx((4.712, 4.752))


def test_link_down_user_timeout_past_the_neighbour_failure():
    # IPv4, UT 4 s: the revert's timer run at the failure is not yet past UT, so it retransmits for real (the 4th)
    # and re-arms tcp_clamp_rto_to_user_timeout() = min(1.632 s, 4.0 - ~3.06 s): a level-1 timer ending on the next
    # multiple of 8 jiffies after send + 1000 = 1001..1008 jiffies = 4.004..4.032 s, EHOSTUNREACH (stored by then).
    v4 = predict(Scenario(ut(4000), "ipv4", "link-down", state="unacked"), HZ250, rto_s=0.204)
    assert (v4.expected_s, v4.expected_count, v4.expected_error) == (pytest.approx(4.004), 4, "EHOSTUNREACH")
    assert v4.window_s == pytest.approx((4.0, 4.04))
    # IPv6: TSQ's re-arm is tcp_reset_xmit_timer(sk, ICSK_TIME_RETRANS, icsk_rto, ...), not clamped to UT: the same
    # 4.716..4.744 s as with tcp_retries2 (measured 4.733 s), not 4 s.
    v6 = predict(Scenario(ut(4000), "ipv6", "link-down", state="unacked"), HZ250, rto_s=0.204)
    assert (v6.expected_count, v6.expected_error) == (3, "EHOSTUNREACH")
    assert v6.window_s == pytest.approx((4.712, 4.752))
    # UT 3 s kills before the earliest failure (3.052 s): the plain clamp, as for 1.5 s above.  Attempts at 0.204,
    # 0.612, 1.428 s; the next (+1.632) is clamped to 3.0 s.  Late: one jiffy, the clamped 1.572 s arming (level 1,
    # 32 ms, and msecs_to_jiffies' rounding up of the remaining milliseconds: 1 jiffy, plus 1 ms: elapsed is the
    # difference of two truncated millisecond readings), 2 measurement jiffies: 3.049.
    p = predict(Scenario(ut(3000), "ipv6", "link-down", state="unacked"), HZ250, rto_s=0.204)
    assert (p.expected_s, p.expected_count, p.expected_error) == (3.0, 3, "ETIMEDOUT")
    assert p.window_s == pytest.approx((2.996, 3.049))


def test_link_down_at_hz_1000():
    # The 1000-jiffy neighbour timer is level 2 (504..4031 jiffies, 64-jiffy grid): first run send + 1001..1064, then
    # +1024 twice: failure at 3.049..3.112 s.  IPv4: whether that failure (revert -> timer run past the 3.0 s
    # deadline) or the 4th RTO run comes first, the death is ETIMEDOUT after 3 attempts, at 3.049..3.112 s:
    # window [3.048, 3.114].
    p = predict(Scenario(K, "ipv4", "link-down", state="unacked", retries2=3), HZ1000, rto_s=0.201)
    assert (p.expected_s, p.expected_count, p.expected_error) == (pytest.approx(3.049), 3, "ETIMEDOUT")
    assert p.window_s == pytest.approx((3.048, 3.114))
    # IPv6: if the 4th RTO run (0.201 x 15 = 3.015 s nominal, plus its rounding) beats the failure, it dies there
    # with ETIMEDOUT; otherwise TSQ re-arms and it dies ~4.7 s with EHOSTUNREACH.  The send's phase decides: refused.
    with pytest.raises(NotModelled, match="phase on the timer wheel"):
        predict(Scenario(K, "ipv6", "link-down", state="unacked", retries2=3), HZ1000, rto_s=0.201)


@pytest.mark.parametrize("scenario", [
    Scenario(K, "ipv4", "link-down", state="unacked"),  # the default tcp_retries2 = 15: ~15 minutes
    Scenario(K, "ipv4", "blackhole", state="unacked"),  # the default tcp_retries2 = 15: ~15 minutes
    Scenario(K, "ipv4", "blackhole", state="zero-window"),
], ids=lambda s: s.id)
def test_not_modelled_is_decided_before_any_lab_and_predict_agrees(scenario):
    reason = not_modelled_reason(scenario)
    assert reason
    with pytest.raises(NotModelled, match=reason[:30]):
        predict(scenario, HZ250)
