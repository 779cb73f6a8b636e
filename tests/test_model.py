"""The timing model: the kernel's rule and the timer-wheel window, as arithmetic."""

import pytest

from netkit import KeepaliveSettings, Scenario, keepalive_death
from netkit.evidence.death import fits
from netkit.kernel import KernelInfo
from netkit.model import keepalive_schedule, packetdrill_bound_s, predict, wheel_granularity_s, wheel_level

HZ250 = KernelInfo("test", 250, "test")


@pytest.mark.parametrize("jiffies, level", [(0, 0), (62, 0), (63, 1), (503, 1), (504, 2), (4031, 2), (4032, 3)])
def test_wheel_levels_follow_kernel_timer_c(jiffies, level):
    assert wheel_level(jiffies, 250) == level


@pytest.mark.parametrize("hz, last_level", [(100, 7), (250, 8), (300, 8), (1000, 8)])
def test_the_wheel_has_8_levels_at_hz_100_and_9_above(hz, last_level):
    beyond = 63 << 24  # LVL_START(9): past every level
    assert wheel_level(beyond, hz) == last_level
    assert wheel_level(63 << 18, hz) == 7  # LVL_START(7) + ... : level 7 exists at every HZ


def test_granularity_at_hz250_matches_measured_steps():
    assert wheel_granularity_s(1, 250) == pytest.approx(0.032)  # 1 s timers land on 32 ms steps
    assert wheel_granularity_s(3, 250) == pytest.approx(0.256)  # ~2 s and more: 256 ms steps


@pytest.mark.parametrize(
    "settings, expected",
    [((1, 1, 3), 4), ((2, 1, 2), 4), ((1, 1, 10), 11), ((1, 2, 2), 6), ((3, 1, 5), 8)],
)
def test_expected_death_after_an_answered_probe(settings, expected):
    assert keepalive_death(KeepaliveSettings(*settings), HZ250).expected_s == expected


def test_intvl_longer_than_idle_delays_the_first_probe_only_after_a_reply():
    k = KeepaliveSettings(1, 2, 2)
    assert keepalive_death(k, HZ250, "probe-reply").expected_s == 6  # max(idle, intvl) + intvl*cnt
    assert keepalive_death(k, HZ250, "idle").expected_s == 5  # the classic idle + intvl*cnt


def test_window_is_as_tight_as_the_timer_wheel_allows():
    p = keepalive_death(KeepaliveSettings(1, 1, 3), HZ250)
    low, high = p.window_s
    assert low == pytest.approx(4 - 0.004)  # never early by more than one jiffy
    assert high == pytest.approx(4 + 4 * 0.032 + 2 * 0.004)  # 4 timer runs x 32 ms + measurement
    assert p.expected_count == 3 and p.expected_error == "ETIMEDOUT"
    assert "tcp_keepalive_timer" in p.rule


def test_window_never_exceeds_packetdrills_bound():
    p = keepalive_death(KeepaliveSettings(1, 1, 1), KernelInfo("test", 100, "test"))
    assert p.window_s[1] - p.expected_s <= packetdrill_bound_s(p.expected_s) + 1e-9
    assert packetdrill_bound_s(0.01) == 0.004 and packetdrill_bound_s(8) == 1.0


@pytest.mark.parametrize(
    "settings, ut, expected, probes",
    [((1, 1, 3), 500, 2, 1), ((1, 1, 3), 2500, 3, 2), ((1, 1, 3), 4000, 4, 3), ((1, 1, 3), 6000, 6, 5),
     ((2, 1, 2), 3000, 3, 1), ((1, 2, 2), 2500, 4, 1), ((1, 2, 2), 7000, 8, 3)],
)
def test_user_timeout_death_is_the_first_run_past_it_with_a_probe_out(settings, ut, expected, probes):
    p = keepalive_death(KeepaliveSettings(*settings, user_timeout_ms=ut), HZ250)
    assert (p.expected_s, p.expected_count) == (expected, probes)
    assert p.window_s[0] >= ut / 1000  # elapsed >= user_timeout: never before it
    assert "TCP_KEEPCNT ignored" in p.rule


def test_user_timeout_just_after_a_run_allows_the_late_run_with_one_probe_less():
    # 1/1/3: runs at ~3.072 s; UT 3050 ms lies between the nominal 3 s and the late 3.072 s
    p = keepalive_death(KeepaliveSettings(1, 1, 3, user_timeout_ms=3050), HZ250)
    assert (p.expected_s, p.expected_count) == (4, 3)
    assert p.alternative_count == 2 and p.alternative_window_s[0] == pytest.approx(3.05)
    outcomes = p.outcomes()
    assert fits(outcomes, 3.072, 2) and fits(outcomes, 4.096, 3)
    assert not fits(outcomes, 3.072, 3) and not fits(outcomes, 4.096, 2) and not fits(outcomes, 3.04, 2)
    # UT 3200 ms is past any lateness of run 3 (max +64 ms at run 3): no early outcome
    assert keepalive_death(KeepaliveSettings(1, 1, 3, user_timeout_ms=3200), HZ250).alternative_window_s is None


def test_fault_specific_rules():
    k = KeepaliveSettings(2, 1, 2)
    reboot = predict(Scenario(k, "ipv4", "peer-reboot"), HZ250)
    assert (reboot.expected_s, reboot.expected_error, reboot.expected_count) == (2, "ECONNRESET", 1)
    assert predict(Scenario(k, "ipv6", "peer-gone"), HZ250).expected_error == "ENETUNREACH"
    assert predict(Scenario(k, "ipv4", "peer-gone"), HZ250).expected_error == "ETIMEDOUT"
    assert predict(Scenario(k, "ipv4", "one-way"), HZ250).peer_expected_error == "ECONNRESET"


def test_an_idle_prediction_carries_the_schedule_it_was_made_from():
    """The verdict judges the wire's probes by these runs; it never asks the model again."""
    k = KeepaliveSettings(1, 2, 3)
    for fault in ("link-down", "peer-reboot", "one-way"):
        p = predict(Scenario(k, "ipv4", fault), HZ250)
        assert p.schedule == keepalive_schedule(k, p.last_segment) and p.schedule.first_probe == 2, fault
    idle = keepalive_death(k, HZ250, last_segment="idle")
    assert (idle.last_segment, idle.schedule) == ("idle", keepalive_schedule(k, "idle"))
    forgets = KeepaliveSettings(3, 1, 2)
    for action in ("drop", "reject"):  # the router forgot the flow: the keepalive runs from the handshake on
        routed = predict(Scenario(forgets, "ipv4", "middlebox-forgets", topology="routed", middlebox_timeout_s=2,
                                  middlebox=action), HZ250)
        assert routed.schedule == keepalive_schedule(forgets, "idle"), action
    unacked = predict(Scenario(k, "ipv4", "blackhole", state="unacked", retries2=3), HZ250)
    assert unacked.schedule is None  # no keepalive rule: nothing to carry


def test_the_write_timers_rules_in_jiffies_as_the_kernel_computes_them():
    from netkit.model.rto import (
        backed_off_rto_jiffies,
        clamp_probe0_to_user_timeout_jiffies,
        clamp_rto_to_user_timeout_jiffies,
        msecs_to_jiffies,
        probe0_when_jiffies,
    )

    assert [msecs_to_jiffies(ms, 250) for ms in (0, 1, 4, 5, 1500)] == [0, 1, 1, 2, 375]  # rounded up
    assert [backed_off_rto_jiffies(51, k, 250) for k in (0, 1, 2, 10)] == [51, 102, 204, 30000]  # TCP_RTO_MAX
    assert clamp_rto_to_user_timeout_jiffies(408, 1500, 1268, 250) == 58  # ceil(232 / 4)
    assert clamp_rto_to_user_timeout_jiffies(408, 1500, 1500, 250) == 1  # "user timeout has passed; fire ASAP"
    assert clamp_rto_to_user_timeout_jiffies(408, None, 1500, 250) == 408
    assert probe0_when_jiffies(40, 0, 250) == 50  # tcp_probe0_base: at least TCP_RTO_MIN
    assert probe0_when_jiffies(52, 3, 250) == 416
    assert probe0_when_jiffies(52, 15, 250) == 30000  # the shift stops at ilog2(TCP_RTO_MAX / TCP_RTO_MIN) + 1
    assert clamp_probe0_to_user_timeout_jiffies(104, 1000, 0, 250) == 104
    assert clamp_probe0_to_user_timeout_jiffies(208, 1000, 105, 250) == 145
    assert clamp_probe0_to_user_timeout_jiffies(416, 3000, 749, 250) == 2  # never below TCP_TIMEOUT_MIN
    assert clamp_probe0_to_user_timeout_jiffies(416, 3000, None, 250) == 416  # no icsk_probes_tstamp yet
