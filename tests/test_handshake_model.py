"""The SYN-SENT rule (netkit.model.handshake), as arithmetic worked out from net/ipv4/tcp_timer.c."""

import pytest

from netkit.kernel import KernelInfo
from netkit.model.handshake import syn_schedule, syn_sent_death, syn_time_budget_s

HZ250 = KernelInfo("hand", 250, "test")


@pytest.mark.parametrize(("syn_retries", "linear", "delays"), [
    (1, 0, (1, 2)),  # the classic doubling: SYN at 0, retransmitted at 1, death at 3
    (2, 0, (1, 2, 4)),  # 1, 3; death at 7
    # linear: retransmitted at 1 and 2; the run at 3 s is 2^2 - 1 = 3 s after the SYN: the time budget ends it
    # (measured here: 3.05-3.07 s, 2 retransmissions, IPv4 and IPv6)
    (1, 4, (1, 1, 1)),
    (2, 4, (1, 1, 1, 1, 1, 2)),  # budget 7 s: retransmitted at 1..5, then RTO 2 s; the run at 7 s ends it (5 sent)
    (6, 4, (1, 1, 1, 1, 1, 2, 4, 8, 16, 32, 64)),  # the defaults since 6.5: 10 sent, death at 131 s (budget 127 s)
])
def test_the_syn_schedule_follows_tcp_retransmit_timer(syn_retries, linear, delays):
    assert syn_schedule(syn_retries, linear) == delays
    p = syn_sent_death(syn_retries, linear, HZ250)
    assert p.expected_s == sum(delays) and p.expected_count == len(delays) - 1
    assert p.expected_error == "ETIMEDOUT" and p.measured_from == "send"


def test_the_rto_never_exceeds_tcp_rto_max():
    assert max(syn_schedule(10, 0)) == 120  # 1, 2, ..., 64, then 120 s (capped)
    assert syn_time_budget_s(10) == 127 + 4 * 120  # tcp_model_timeout: linear at TCP_RTO_MAX beyond 6 retries


def test_the_window_adds_each_arming_s_wheel_rounding():
    # 1 s and 2 s timers at HZ=250 (250 and 500 jiffies) are both on level 1: 8 jiffies = 32 ms late at most;
    # 6 armings + the measurement's 2 jiffies = 50 jiffies = 200 ms
    assert syn_sent_death(2, 4, HZ250).window_s == pytest.approx((6.996, 7.2))
    assert syn_sent_death(1, 4, HZ250).window_s == pytest.approx((2.996, 3.104))  # measured 3.050-3.071 s
    # 4 s (1000 jiffies) is on level 2: 64 jiffies; 1 + 2 + 4 s -> 8 + 8 + 64 + 2 = 82 jiffies = 328 ms
    assert syn_sent_death(2, 0, HZ250).window_s == pytest.approx((6.996, 7.328))
