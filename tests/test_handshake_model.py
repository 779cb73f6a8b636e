"""The SYN-SENT rule (netkit.model.handshake), as arithmetic worked out from net/ipv4/tcp_timer.c."""

import pytest

from netkit.kernel import KernelInfo
from netkit.model.handshake import syn_schedule, syn_sent_death

HZ250 = KernelInfo("hand", 250, "test")


@pytest.mark.parametrize(("syn_retries", "linear", "delays"), [
    (1, 0, (1, 2)),  # the classic doubling: SYN at 0, retransmitted at 1, death at 3
    (2, 0, (1, 2, 4)),  # 1, 3; death at 7
    (1, 4, (1, 1, 1, 1, 1, 2)),  # 4 linear timeouts first: retransmitted at 1..5, the 5th doubles the RTO; death at 7
    (6, 4, (1, 1, 1, 1, 1, 2, 4, 8, 16, 32, 64)),  # the defaults since 6.5: 10 retransmissions, death at 131 s
])
def test_the_syn_schedule_follows_tcp_retransmit_timer(syn_retries, linear, delays):
    assert syn_schedule(syn_retries, linear) == delays
    p = syn_sent_death(syn_retries, linear, HZ250)
    assert p.expected_s == sum(delays) and p.expected_count == syn_retries + linear
    assert p.expected_error == "ETIMEDOUT" and p.measured_from == "send"


def test_the_rto_never_exceeds_tcp_rto_max():
    assert max(syn_schedule(10, 0)) == 120  # 1, 2, ..., 512 capped at 120 s


def test_the_window_adds_each_arming_s_wheel_rounding():
    # 1 s and 2 s timers at HZ=250 (250 and 500 jiffies) are both on level 1: 8 jiffies = 32 ms late at most;
    # 6 armings + the measurement's 2 jiffies = 50 jiffies = 200 ms
    assert syn_sent_death(1, 4, HZ250).window_s == pytest.approx((6.996, 7.2))
    # 4 s (1000 jiffies) is on level 2: 64 jiffies; 1 + 2 + 4 s -> 8 + 8 + 64 + 2 = 82 jiffies = 328 ms
    assert syn_sent_death(2, 0, HZ250).window_s == pytest.approx((6.996, 7.328))
