"""The RTO's bounds since Linux 6.11/6.15, worked out by hand at HZ=250 and HZ=1000 (docs/rules.md, "The maximum RTO").

No root needed: the model, the scenario's checks, the feature detection
(its answers monkeypatched), the ledger's rule.  The lab runs are the gate's
``RTO_BOUNDS`` cells (tests/test_fault_matrix.py).

The figures, by hand (kernel/time/timer.c's levels as in test_model_hz.py:
level 0 below 63 jiffies runs at most 1 jiffy late, level 1 (63..503) 8,
level 2 (504..4031) 64; the window's end adds 2 jiffies of measurement):

* ``tcp_model_timeout(sk, retries2, TCP_RTO_MIN)`` with ``tcp_rto_max(sk)``:
  ``thresh = ilog2(rto_max / 200 ms)``; 1 s: ilog2(5) = 2, so retries2 6 is
  (2 << 2) - 1 = 7 x 200 ms + (6 - 2) x 1 s = 5.4 s; 5 s: ilog2(25) = 4, and
  retries2 15 is 31 x 200 ms + 11 x 5 s = 61.2 s (924.6 s at 120 s).
* blackhole, data in flight, retries2 6, maximum 1 s.  HZ=250: rto 0.204 s
  (51 j); the tail loss probe at rto, the first retransmission at 0.408 s; RTO
  runs after it at 0, 0.408, 1.224, then every 1 s (capped): 2.224, 3.224,
  4.224, 5.224, 6.224; 5.224 < 5.4, so run 8 kills at 0.408 + 6.224 = 6.632 s
  with 7 retransmissions.  Lateness: the TLP and first RTO 2 x 1 j (8 ms),
  then 0.408 s (102 j), 0.816 s and five 1 s timers, level 1: 7 x 32 ms;
  window [6.628, 6.632 + 0.008 + 0.224 + 0.008 = 6.872].  That lateness
  (200 - 8 ms by run 7) can bring run 7 (5.224 + 0.408 = 5.632 s) past the
  deadline 5.808 s: the early outcome [5.804, 5.632 + 0.200 + 0.008 = 5.84]
  with 6.  HZ=1000: rto 0.201 s; runs 0, 0.402, 1.206, then 1 s each; run 8
  at 0.402 + 6.206 = 6.608 s; lateness 2 x 8 ms (201 j: level 1), 8 ms
  (402 j), 64 ms (804 j: level 2) and five x 64 ms: 408 ms; window
  [6.607, 6.608 + 0.408 + 0.002 = 7.018]; early [5.801, 5.608 + 0.344 + 0.002
  = 5.954].
* zero window, retries2 6, maximum 1 s: the persist timer probes at
  ``min(base << k, rto_max)``.  HZ=250: 0.204 + 0.408 + 0.816 + 4 x 1 =
  5.428 s; lateness 4 + 6 x 32 ms + 8 = 204 ms: [5.424, 5.632].  HZ=1000:
  0.201 + 0.402 + 0.804 + 4 = 5.407 s; 8 + 8 + 64 + 4 x 64 + 2 = 338 ms:
  [5.406, 5.745].
* ``tcp_rto_min_us`` 50 ms: the RTO falls to 56 ms, but the persist timer's
  base is ``max(icsk_rto, TCP_RTO_MIN)`` = 200 ms: retries2 3 dies at
  0.2 x 15 = 3.0 s; and the RTO's deadline keeps ``rto_base`` = TCP_RTO_MIN:
  retries2 3 is 3 s after the first retransmission (0.112 s), runs at
  0, 0.112, 0.336, 0.784, 1.68, 3.472: 3.584 s, 5 retransmissions.
"""

from __future__ import annotations

import dataclasses

import pytest

from netkit import KeepaliveSettings, Scenario
from netkit.errors import FeatureMissing, SettingError
from netkit.evidence import ledger_check
from netkit.evidence.ledger import Arming, Ledger, TimerRun
from netkit.gate.matrix import RTO_BOUNDS
from netkit.kernel import KernelInfo
from netkit.model.predict import predict
from netkit.model.rto import (
    backed_off_rto_jiffies,
    probe0_when_jiffies,
    socket_rto_max_s,
    tcp_model_timeout_s,
)
from netkit.scenario import requirements

K = KeepaliveSettings(1, 1, 3)
HZ250, HZ1000 = KernelInfo("test", 250, "test"), KernelInfo("test", 1000, "test")


def unacked(**changes: object) -> Scenario:
    return Scenario(changes.pop("settings", K), "ipv4", changes.pop("fault", "blackhole"), state="unacked", **changes)


def zero_window(**changes: object) -> Scenario:
    return Scenario(K, "ipv4", "blackhole", state="zero-window", **changes)


def test_tcp_model_timeout_takes_the_sockets_maximum():
    assert tcp_model_timeout_s(6, 0.2, 1.0) == pytest.approx(5.4)  # thresh ilog2(5) = 2: 7 x 0.2 + 4 x 1
    assert tcp_model_timeout_s(15, 0.2, 5.0) == pytest.approx(61.2)  # thresh ilog2(25) = 4: 31 x 0.2 + 11 x 5
    assert tcp_model_timeout_s(15) == pytest.approx(924.6)  # TCP_RTO_MAX, 120 s
    assert tcp_model_timeout_s(3, 0.2, 5.0) == pytest.approx(3.0)  # below the threshold the maximum changes nothing


def test_the_kernel_keeps_the_maximum_in_whole_jiffies():
    assert socket_rto_max_s(1001, 250) == 1.004 and socket_rto_max_s(1001, 1000) == 1.001
    assert socket_rto_max_s(None, 250) == 120.0


@pytest.mark.parametrize("kernel,expected,window,alternative", [
    (HZ250, 6.632, (6.628, 6.872), (5.804, 5.84)),
    (HZ1000, 6.608, (6.607, 7.018), (5.801, 5.954)),
])
def test_retries2_with_a_maximum_of_1_s(kernel, expected, window, alternative):
    p = predict(unacked(retries2=6, rto_max_ms=1000, rto_max_via="sysctl"), kernel)
    assert (p.expected_s, p.window_s, p.expected_count) == (expected, window, 7)
    assert (p.alternative_window_s, p.alternative_count) == (alternative, 6)
    assert "(6 - 2) x 1 s = 5.4 s" in p.rule and "capped at the socket's maximum RTO 1 s" in p.rule


@pytest.mark.parametrize("kernel,expected,window", [(HZ250, 5.428, (5.424, 5.632)), (HZ1000, 5.407, (5.406, 5.745))])
def test_the_persist_timers_backoff_is_capped_too(kernel, expected, window):
    p = predict(zero_window(retries2=6, rto_max_ms=1000), kernel)
    assert (p.expected_s, p.window_s, p.expected_count) == (expected, window, 6)
    assert "min(rto x 2^k, 1 s)" in p.rule


def test_under_a_user_timeout_the_cap_adds_a_retransmission():
    capped = predict(unacked(settings=KeepaliveSettings(1, 1, 3, 12000), rto_max_ms=5000), HZ250)
    plain = predict(unacked(settings=KeepaliveSettings(1, 1, 3, 12000)), HZ250)
    # runs 0, 0.408, 1.224, 2.856, 6.12, then 5 s (capped) to 11.12 and the clamp to 12 s: 6; uncapped 6.528 s
    # from 6.12 passes 12 s, so the clamp comes one run sooner: 5.  Both die at 0.408 + 12 = 12.408 s.
    assert (capped.expected_s, capped.expected_count, plain.expected_s, plain.expected_count) == (12.408, 6, 12.408, 5)


def test_link_down_meets_the_shorter_deadline_before_the_neighbour_fails():
    capped = predict(unacked(fault="link-down", retries2=3, rto_max_ms=1000), HZ250)
    plain = predict(unacked(fault="link-down", retries2=3), HZ250)
    assert capped.expected_s < 3.0 < plain.expected_s  # 2.4 s after the send vs the neighbour failure at 3.05 s
    assert (capped.expected_count, capped.expected_error) == (3, "ETIMEDOUT")


@pytest.mark.parametrize("kernel", [HZ250, HZ1000])
def test_a_lower_tcp_rto_min_us_shortens_the_rto_but_not_the_persist_base_nor_the_deadline(kernel):
    p = predict(zero_window(retries2=3, rto_min_us=50000), kernel, rto_s=0.056)
    assert p.expected_s == 3.0 and "0.200 s" in p.rule  # tcp_probe0_base: max(icsk_rto, TCP_RTO_MIN)
    p = predict(unacked(retries2=3, rto_min_us=50000), kernel, rto_s=0.056)
    assert (p.expected_s, p.expected_count) == (3.584, 5)  # tcp_model_timeout's rto_base stays TCP_RTO_MIN


def test_the_ledgers_jiffy_rules_cap_at_the_sockets_maximum():
    assert backed_off_rto_jiffies(51, 3, 250, 1000) == 250 and backed_off_rto_jiffies(51, 3, 250) == 408
    assert probe0_when_jiffies(51, 5, 250, 1000) == 250 and probe0_when_jiffies(51, 5, 250) == 51 << 5
    assert probe0_when_jiffies(14, 0, 250) == 50  # an RTO under 200 ms: the persist base is TCP_RTO_MIN


def _retransmissions(delays: list[int]) -> Ledger:
    """A blackhole's write timer at HZ=250: the send's arming (51 j), then each run's re-arm (buckets as the delays)."""
    send = Arming(0.0, "tcp_write_timer", 1000, 1051, 1051, False)
    armings, runs, due = [send], [], send
    for delay in delays:
        t = (due.bucket - 1000) / 250
        runs.append(TimerRun(t, "tcp_write_timer", due.bucket, due, 0.0))
        due = Arming(t + 1e-5, "tcp_write_timer", due.bucket, due.bucket + delay, due.bucket + delay, True)
        armings.append(due)
    return Ledger(250, tuple(armings), tuple(runs), None)


def test_a_backoff_past_the_sockets_maximum_is_a_rule_failure():
    rule = ledger_check.write_timer_rule("unacked", ledger_check.DataPath.LOST, None, 6, 51, rto_max_ms=1000)
    assert rule is not None
    kept = _retransmissions([51, 102, 204, 250, 250])  # the TLP's run, then 2 x, 4 x, capped at 250 j
    assert ledger_check.write_timer_failures(kept, rule) == []
    [failure] = ledger_check.write_timer_failures(_retransmissions([51, 102, 204, 408, 250]), rule)
    assert "re-arm 4" in str(failure) and "asked for 408" in str(failure)


def test_scenarios_refuse_rto_bounds_where_no_rule_reads_them():
    with pytest.raises(SettingError, match=r"rto_max_ms .* 999: use a whole number 1000\.\.120000 ms"):
        unacked(retries2=3, rto_max_ms=999)
    with pytest.raises(SettingError, match="applies to data in flight .* not idle"):
        Scenario(K, rto_max_ms=1000)
    with pytest.raises(SettingError, match="rto_min_us .* 5: use a whole number 10000..1000000 us"):
        zero_window(retries2=3, rto_min_us=5)
    with pytest.raises(SettingError, match="rto_max_via 'sysctl': it says where rto_max_ms is set"):
        unacked(retries2=3, rto_max_via="sysctl")
    assert unacked(retries2=3, rto_max_ms=1000).id == "ipv4-unacked-blackhole-1/1/3-retries2=3-rto_max_ms=1000"
    assert unacked(retries2=3, rto_max_ms=1000, rto_max_via="sysctl", rto_min_us=50000).id == (
        "ipv4-unacked-blackhole-1/1/3-retries2=3-tcp_rto_max_ms=1000-tcp_rto_min_us=50000")


def test_a_routes_rto_min_is_whole_milliseconds_and_needs_the_minimum():
    assert zero_window(retries2=3, rto_min_us=50000, rto_min_via="route").id == (
        "ipv4-zero-window-blackhole-1/1/3-retries2=3-route_rto_min=50ms")
    with pytest.raises(SettingError, match="rto_min_us 50500: a route's rto_min is whole milliseconds"):
        zero_window(retries2=3, rto_min_us=50500, rto_min_via="route")
    with pytest.raises(SettingError, match="rto_min_us .*'50000': use a whole number 10000..1000000 us"):
        zero_window(retries2=3, rto_min_us="50000", rto_min_via="route")  # a SettingError, not the % on a str
    with pytest.raises(SettingError, match="rto_min_via 'route': it says where rto_min_us is set"):
        zero_window(retries2=3, rto_min_via="route")
    with pytest.raises(SettingError, match="rto_min_via 'netlink': use one of sysctl, route"):
        zero_window(retries2=3, rto_min_us=50000, rto_min_via="netlink")


def test_a_routes_rto_min_needs_no_new_kernel(monkeypatch):
    # RTAX_RTO_MIN (locked) is older than any kernel netkit supports: no feature to detect, unlike tcp_rto_min_us
    monkeypatch.setattr(requirements, "has_sysctl", lambda name: False)
    monkeypatch.setattr(requirements, "has_tcp_option", lambda option: False)
    requirements.require_supported(unacked(retries2=3, rto_min_us=50000, rto_min_via="route"))


@pytest.mark.parametrize("missing,scenario,says", [
    ("net.ipv4.tcp_rto_max_ms", unacked(retries2=3, rto_max_ms=1000, rto_max_via="sysctl"), "added in Linux 6.15"),
    ("TCP_RTO_MAX_MS", unacked(retries2=3, rto_max_ms=1000), "getsockopt answers ENOPROTOOPT"),
    ("net.ipv4.tcp_rto_min_us", zero_window(retries2=3, rto_min_us=50000), "added in Linux 6.11"),
])
def test_a_kernel_without_the_feature_skips_with_the_reason(monkeypatch, missing, scenario, says):
    monkeypatch.setattr(requirements, "has_sysctl", lambda name: name != missing)
    monkeypatch.setattr(requirements, "has_tcp_option", lambda option: missing != "TCP_RTO_MAX_MS")
    with pytest.raises(FeatureMissing, match=f"{scenario.id} needs a kernel feature this one lacks: .*{missing}"
                                             f".*{says}"):
        requirements.require_supported(scenario)
    monkeypatch.setattr(requirements, "has_sysctl", lambda name: True)
    monkeypatch.setattr(requirements, "has_tcp_option", lambda option: True)
    requirements.require_supported(scenario)  # with the feature: nothing to say


def test_the_gate_has_both_maxima_both_ways_and_the_minimum_in_both_data_states():
    ids = [s.id for s in RTO_BOUNDS]
    assert {s.rto_max_ms for s in RTO_BOUNDS} == {None, 1000, 5000} and {s.rto_max_via for s in RTO_BOUNDS} == {
        "socket", "sysctl"}
    assert {s.state for s in RTO_BOUNDS if s.rto_min_us} == {"unacked", "zero-window"}
    assert {(s.state, s.rto_min_via) for s in RTO_BOUNDS if s.rto_min_us} == {
        (state, via) for state in ("unacked", "zero-window") for via in ("sysctl", "route")}
    assert len(ids) == len(set(ids)) == 20


def test_a_ledger_change_keeps_the_dataclass_shape():
    rule = ledger_check.write_timer_rule("zero-window", ledger_check.DataPath.LOST, None, 6, 52, rto_max_ms=1000)
    assert dataclasses.replace(rule, rto_max_ms=None).rto_max_ms is None and rule.rto_max_ms == 1000
