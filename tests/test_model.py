"""The timing model: the kernel's rule and the timer-wheel window, as arithmetic."""

import pytest

from netkit import KeepaliveSettings, keepalive_death
from netkit.kernel import KernelInfo
from netkit.model import packetdrill_bound_s, wheel_granularity_s, wheel_level

HZ250 = KernelInfo("test", 250, "test")


@pytest.mark.parametrize("jiffies, level", [(0, 0), (62, 0), (63, 1), (503, 1), (504, 2), (4031, 2), (4032, 3)])
def test_wheel_levels_follow_kernel_timer_c(jiffies, level):
    assert wheel_level(jiffies) == level


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
    assert p.expected_probes == 3 and p.expected_error == "ETIMEDOUT"
    assert "tcp_keepalive_timer" in p.rule


def test_window_never_exceeds_packetdrills_bound():
    p = keepalive_death(KeepaliveSettings(1, 1, 1), KernelInfo("test", 100, "test"))
    assert p.window_s[1] - p.expected_s <= packetdrill_bound_s(p.expected_s) + 1e-9
    assert packetdrill_bound_s(0.01) == 0.004 and packetdrill_bound_s(8) == 1.0


def test_user_timeout_is_not_silently_modelled_as_plain_keepalive():
    with pytest.raises(NotImplementedError):
        keepalive_death(KeepaliveSettings(1, 1, 3, user_timeout_ms=2500), HZ250)
