"""The handshake rules (netkit.model.handshake), as arithmetic worked out from net/ipv4/tcp_timer.c and friends."""

import json
from pathlib import Path

import pytest

from netkit.errors import NotModelled
from netkit.evidence.death import fits
from netkit.gate import matrix
from netkit.kernel import KernelInfo
from netkit.model.handshake import (
    HandshakeFacts,
    neighbour_failure,
    syn_recv_death,
    syn_schedule,
    syn_sent_death,
    syn_sent_link_down,
    syn_sent_no_route,
    syn_sent_refused,
    syn_time_budget_s,
    syn_user_timeout_schedule,
    synack_schedule,
)
from netkit.model.predict import predict

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
    assert p.expected_error == "ETIMEDOUT" and p.measured_from == "syn"


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


# -- TCP_USER_TIMEOUT in SYN-SENT: retransmits_timed_out compares it with the time since the SYN --------------------


@pytest.mark.parametrize(("syn_retries", "ut_ms", "delays", "by_user_timeout"), [
    # 1 s run retransmits; tcp_clamp_rto_to_user_timeout arms min(1 s, 1.5 - 1) = 0.5 s; that run has 1 out and
    # 1.5 s >= UT: ETIMEDOUT at 1.5 s (measured 1.51-1.53 s, IPv4 and IPv6)
    (2, 1500, (1, 0.5), True),
    (2, 2500, (1, 1, 0.5), True),
    # UT below the first run: the 1 s run has nothing out yet, retransmits, and the time is up: one jiffy later
    (2, 500, (1, 0.004), True),
    # UT longer than the budget (3 s for one retry) replaces it: the count ends connect() at 7 s, not 3 s
    # (measured 7.12-7.13 s with 5 SYN retransmissions)
    (1, 10000, (1, 1, 1, 1, 1, 2), False),
    (2, 10000, (1, 1, 1, 1, 1, 2, 3), False),  # the 4 s RTO clamped to the 3 s left; the count (6) ends it there
])
def test_a_user_timeout_replaces_the_time_budget(syn_retries, ut_ms, delays, by_user_timeout):
    schedule = syn_user_timeout_schedule(syn_retries, 4, ut_ms, 250)
    assert schedule.delays == pytest.approx(delays)
    assert schedule.by_user_timeout is by_user_timeout
    p = syn_sent_death(syn_retries, 4, HZ250, ut_ms)
    assert p.expected_s == pytest.approx(sum(delays)) and p.expected_count == len(delays) - 1


def test_the_clamped_arming_absorbs_the_lateness_before_it():
    # UT 1500: the 0.5 s arming (125 jiffies, level 1: 8 jiffies) is UT - elapsed, so the first run's 32 ms of
    # lateness is absorbed: 32 ms + 1 jiffy of msecs_to_jiffies' rounding up + 2 measurement jiffies = 44 ms,
    # not 76 ms
    assert syn_sent_death(2, 4, HZ250, 1500).window_s == pytest.approx((1.496, 1.544))
    # UT 500: no arming is clamped to a remainder (the second is one jiffy), so the first run's lateness stays
    assert syn_sent_death(2, 4, HZ250, 500).window_s == pytest.approx((1.0, 1.004 + 0.032 + 0.004 + 0.008))


# -- the other faults ------------------------------------------------------------------------------------------------


def test_refused_and_no_route_end_connect_at_once():
    refused, no_route = syn_sent_refused(HZ250), syn_sent_no_route(HZ250, "ipv6")
    assert (refused.expected_error, refused.window_s, refused.expected_count) == ("ECONNREFUSED", (0.0, 0.008), 0)
    assert (no_route.expected_error, no_route.window_s) == ("ENETUNREACH", (0.0, 0.008))
    assert "ip6_dst_lookup_flow" in no_route.rule


def test_link_down_ends_connect_when_the_neighbour_entry_fails():
    # 3 solicitations 1 s apart on the wheel: EHOSTUNREACH at 3.052..3.080 s (+ 2 measurement jiffies);
    # the SYN timer's runs at 1 and 2 s are sure to come first, the one at 3 s is due in the same jiffies:
    # 2 or 3 attempted retransmissions (measured: 3 both times, 3.05-3.08 s)
    p = syn_sent_link_down(2, 4, HZ250)
    assert (p.expected_s, p.window_s, p.expected_error) == (3.052, (3.048, 3.088), "EHOSTUNREACH")
    assert p.counts() == [2, 3] and p.count_source == "tcpi_retransmits"


def test_link_down_with_a_short_user_timeout_is_the_syn_timer_s():
    p = syn_sent_link_down(2, 4, HZ250, 1500)
    assert (p.expected_s, p.expected_error) == (1.5, "ETIMEDOUT")


def test_link_down_refuses_a_race_it_cannot_call():
    with pytest.raises(NotModelled, match="overlap"):  # the 3 s budget and the 3 s neighbour failure
        syn_sent_link_down(1, 4, HZ250)


def test_the_neighbour_failure_is_the_wheel_s_replay():
    # netkit.model.neighbour: 3 solicitations 1 s apart fail 763..770 jiffies after the first packet at HZ=250
    failure = neighbour_failure(HZ250)
    assert failure.expected_s == 3.052 and failure.window_s == (3.048, 3.088) and failure.expected_count == 3


# -- SYN-RECV: the request socket's timer -----------------------------------------------------------------------------


@pytest.mark.parametrize(("retries", "delays", "window"), [
    (1, (1, 2), (2.996, 3.072)),  # SYN-ACK at 0, again at 1 s, dropped at 3 s: 8 + 8 + 2 jiffies late at most
    (2, (1, 2, 4), (6.996, 7.328)),  # the 4 s arming is on level 2: 64 jiffies
])
def test_the_request_is_dropped_after_the_synack_retries(retries, delays, window):
    assert synack_schedule(retries) == delays
    p = syn_recv_death(retries, HZ250)
    assert (p.expected_s, p.window_s, p.expected_count, p.expected_error) == (sum(delays), window, retries, "none")
    assert p.measured_from == "syn-ack" and p.count_source == "TcpExt.TCPSynRetrans"


def test_linear_timeouts_are_assumed_only_from_6_5():
    assert HandshakeFacts.defaults(KernelInfo("6.1.0-18-amd64", 250, "t")).linear_timeouts == 0
    assert HandshakeFacts.defaults(KernelInfo("6.18.44", 250, "t")).linear_timeouts == 4


def test_over_a_dead_link_the_count_is_the_attempts():
    # every SYN retransmission fails locally (-EBUSY): TCPSynRetrans stays 0, icsk_retransmits counts the attempts
    assert syn_sent_link_down(2, 4, HZ250, 1500).count_source == "tcpi_retransmits"


# -- tcp_syn_linear_timeouts (6.5) is read from the kernel, and the gate has cells that would catch a wrong guess ---

LINEAR_RUNS = json.loads((Path(__file__).parent / "data" / "syn-sent-linear-timeouts-6.1-6.12.json").read_text())


@pytest.mark.parametrize("cell", sorted(LINEAR_RUNS))
def test_a_rule_that_assumed_linear_syn_timeouts_fails_on_a_kernel_without_them(cell):
    """Real runs of two gate cells on Debian's 6.1 (no sysctl) and 6.12 (4): each passes only by its own kernel's value.

    syn1: 6.1 gives up at 3 s after 1 retransmission, 6.12 after 2 (the
    budget of 3 s first); syn1-ut10000: the user timeout replaces the budget,
    so the count decides: 1 retransmission at 3 s, or 1 + 4 linear at 7 s.
    """
    scenario = next(s for s in matrix.HANDSHAKE if s.id == cell)
    for name, run in LINEAR_RUNS[cell].items():
        kernel = KernelInfo(run["kernel"], run["hz"], "the run's document")
        own = HandshakeFacts(0 if name.startswith("6.1 ") else 4)
        other = HandshakeFacts(4 - own.linear_timeouts)
        assert fits(predict(scenario, kernel, handshake=own).outcomes(), run["death_s"], run["count"]), name
        assert not fits(predict(scenario, kernel, handshake=other).outcomes(), run["death_s"], run["count"]), name


def test_the_gate_predicts_a_new_namespaces_linear_timeouts_from_the_sysctls_presence(monkeypatch):
    from netkit.scenario import handshake as procedure

    monkeypatch.setattr(procedure, "has_sysctl", lambda name: False)
    assert procedure.new_namespace_facts() == HandshakeFacts(0)
    monkeypatch.setattr(procedure, "has_sysctl", lambda name: name == "net.ipv4.tcp_syn_linear_timeouts")
    assert procedure.new_namespace_facts() == HandshakeFacts(4)
