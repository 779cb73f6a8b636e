"""A local drop: the tested side's own qdisc refuses every packet (``pfifo limit 0``), and TCP's resource-probe path.

The rule is :mod:`netkit.model.local_drop`.  The pure tests below hold it to
figures worked out by hand from the kernel's source at two HZ values (the
derivation beside each); the live ones run the gate's cells, where an idle
connection must *survive* (a refused keepalive probe is never counted) and
the kernel's own packetdrill test's figures must hold.

Worked out by hand, at HZ=250 (a jiffy is 4 ms) and HZ=1000:

* the probe timer's first run is ``tcp_probe0_base = max(rto, 200 ms)``
  after the send: a veth's RTO is 200 ms + 1 jiffy = 51 j (HZ=250) or
  201 j (HZ=1000); 51 j is on wheel level 0 (at most 1 j late), 201 j on
  level 1 (63..503 j: at most 8 j late);
* every refused probe re-arms ``TCP_RESOURCE_PROBE_INTERVAL`` = HZ/2 = 125 j
  (level 1) or 500 j (level 1); re-armed from a run on level 1's grid it
  lands exactly on the next grid point: 128 j, 504 j (``calc_index``);
* with TCP_USER_TIMEOUT the last wait is clamped to what is left of UT
  since the first run, which absorbs every earlier run's lateness.
"""

import pytest

from netkit import KeepaliveSettings, Scenario, ScenarioResult
from netkit.enums import CountSource
from netkit.errors import NotModelled, SettingError
from netkit.evidence.death import fits
from netkit.evidence.ledger_check import rule_failures
from netkit.gate import matrix
from netkit.kernel import KernelInfo
from netkit.model import predict
from netkit.model.handshake import HandshakeFacts
from netkit.model.local_drop import PACKETDRILL_TEST
from netkit.model.wheel import runs_at_jiffy

HZ250, HZ1000 = KernelInfo("test", 250, "test"), KernelInfo("test", 1000, "test")


def _unacked(ut=None, retries2=None, family="ipv4"):
    return Scenario(KeepaliveSettings(1, 1, 3, user_timeout_ms=ut), family, "local-drop", state="unacked",
                    retries2=retries2)


# (scenario, kernel) -> (expected, window, probes)
PROBE_TIMER = [
    # UT 3000 at HZ=250: first run at 51 j (<= 1 j late) stamps icsk_probes_tstamp; probes at +0, 125 ... 625 j
    # (6); the last wait is clamped to 750 - 625 = 125 j (<= 8 j late): death 51 + 750 = 801 j = 3.204 s,
    # late by at most 1 + 8 + 2 measurement jiffies = 11 j (44 ms)
    (_unacked(3000), HZ250, 3.204, (3.200, 3.248), 6),
    # UT 3000 at HZ=1000: first run at 201 j (<= 8 j late); the last wait 3000 - 5 x 500 = 500 j (<= 8 j late):
    # 3.201 s, late by at most 8 + 8 + 2 = 18 j
    (_unacked(3000), HZ1000, 3.201, (3.200, 3.219), 6),
    # tcp_retries2 = 3 at HZ=250: probes at 51, 176, 301 j; the run at 426 j aborts (icsk_probes_out >= 3): 1.704 s;
    # late: 1 j (level 0), then the first 125 j wait from off the grid up to 8 j, the next two exactly 3 j each
    # (128 j), and 2 j of measurement: 1 + 8 + 3 + 3 + 2 = 17 j (68 ms)
    (_unacked(retries2=3), HZ250, 1.704, (1.700, 1.772), 3),
    # the namespace's default tcp_retries2, 15: 51 + 15 x 125 = 1926 j = 7.704 s; late 1 + 8 + 14 x 3 + 2 = 53 j
    (_unacked(), HZ250, 7.704, (7.700, 7.916), 15),
    # a closed window: the same timer, counted from the ACK that closed it
    (Scenario(KeepaliveSettings(1, 1, 3, user_timeout_ms=3000), "ipv6", "local-drop", state="zero-window"), HZ250,
     3.204, (3.200, 3.248), 6),
]


@pytest.mark.parametrize("scenario, kernel, expected, window, probes", PROBE_TIMER,
                         ids=lambda v: v.id if isinstance(v, Scenario) else None)
def test_the_probe_timer_retries_every_half_second_without_backoff(scenario, kernel, expected, window, probes):
    p = predict(scenario, kernel)
    assert (p.expected_s, p.window_s, p.expected_count) == (expected, window, probes)
    assert p.alternative_window_s is None and p.expected_backoff == 0 and p.expected_error == "ETIMEDOUT"
    assert "TCP_RESOURCE_PROBE_INTERVAL" in p.rule and "no backoff" in p.rule


def test_the_upstream_test_s_rto_puts_the_death_inside_its_figures():
    """The packetdrill test's connection has a 100 ms RTT, so an RTO of 300 ms; a route's rto_min 300ms gives the veth 76 j.

    76 j is on level 1: the first run lands on level 1's grid, at most 8 j late; from there each 125 j wait is
    exactly 128 j, and the last one, clamped to 750 - 5 x 128 = 110 j, 112 j: death at most 76 + 8 + 752 j, plus 2 j
    of measurement = 838 j = 3.352 s.  Inside the test's "alive at 3.25 s, dead by 3.35 s" but for the
    measurement's two jiffies.
    """
    (upstream,) = [s for s in matrix.UPSTREAM if s.family == "ipv4"]
    p = predict(upstream, HZ250, rto_s=0.304)
    assert (p.expected_s, p.window_s, p.expected_count, p.expected_backoff) == (3.304, (3.300, 3.352), 6, 0)
    assert PACKETDRILL_TEST in p.rule


def test_a_user_timeout_just_past_a_probe_gives_two_outcomes():
    """UT 2550 at HZ=250: on time, 6 probes (at 0 .. 625 j) and the clamped 12 j wait ends it at 51 + 638 = 689 j;
    with every 125 j wait 128 j, probe 6 would be due at 640 j >= 638: the run there aborts with 5."""
    p = predict(_unacked(2550), HZ250)
    assert (p.expected_count, p.alternative_count) == (6, 5)
    assert p.window_s[0] == 2.752 and p.alternative_window_s is not None


# SYN-SENT: the first RTO is 1 s (250 j, level 1: <= 8 j late), then every refused retransmission re-arms 125 j
# (exactly 128 j from the grid).  (syn_retries, linear_timeouts, UT) -> (expected, window, retransmissions)
SYN_SENT = [
    # 6.5 and later (4 linear timeouts): runs at 250 (1), 375, 500, 625 j (4); the run at 750 j is 3 s after the
    # SYN, tcp_model_timeout(1, 1 s): the time budget ends it before the count (1 + 4) does.  Late by at most
    # 8 + 4 x 3 + 2 = 22 j (88 ms)
    ((1, 4, None), 3.0, (2.996, 3.088), 4),
    # 6.1 (no linear timeouts): the count, 1, is reached at the run after the first retransmission: 375 j;
    # late by at most 8 + 3 + 2 = 13 j
    ((1, 0, None), 1.5, (1.496, 1.552), 1),
    # TCP_USER_TIMEOUT 1500: the run at 375 j is 1.5 s after the SYN, one retransmission out
    ((2, 4, 1500), 1.5, (1.496, 1.552), 1),
]


@pytest.mark.parametrize("settings, expected, window, count", SYN_SENT, ids=str)
def test_a_refused_connect_counts_a_retransmission_every_half_second(settings, expected, window, count):
    retries, linear, ut = settings
    scenario = Scenario(KeepaliveSettings(user_timeout_ms=ut), "ipv4", "local-drop", state="syn-sent",
                        syn_retries=retries)
    p = predict(scenario, HZ250, handshake=HandshakeFacts(linear_timeouts=linear))
    assert (p.expected_s, p.window_s, p.expected_count) == (expected, window, count)
    assert p.count_source == CountSource.RETRANSMITS and p.expected_error == "ETIMEDOUT"


@pytest.mark.parametrize("settings, alive, attempts", [((1, 1, 3), 7.0, 12), ((2, 1, 2), 7.0, 10)], ids=str)
def test_an_idle_connection_survives_its_keepalive(settings, alive, attempts):
    """The keepalive rule's latest death, 4.136 s for both, rounded up to 5 s, + 2 s: 7 s.  The first attempt at
    1 s (+ 32 ms), then one every 500 ms (+ 32 ms): at least floor((7 - 1.032 - 0.008) / 0.532) + 1 attempts."""
    p = predict(Scenario(KeepaliveSettings(*settings), "ipv4", "local-drop"), HZ250)
    assert (p.alive_until_s, p.expected_count, p.count_source) == (alive, attempts, CountSource.KEEPALIVES)
    assert p.expected_error == "none" and "not counted" in p.rule


@pytest.mark.parametrize("state, says", [("retracted-window", "zero-window branch"), ("syn-recv", "reqsk_timer")])
def test_the_states_without_a_rule_are_refused_with_the_reason(state, says):
    kwargs = {"syn_retries": 1} if state == "syn-recv" else {"keepalive": KeepaliveSettings(1, 1, 3, user_timeout_ms=3000)}
    with pytest.raises(NotModelled, match=says):
        predict(Scenario(fault="local-drop", state=state, **kwargs), HZ250)


def test_one_watched_connection_only():
    with pytest.raises(SettingError, match="connections=1"):
        Scenario(KeepaliveSettings(1, 1, 3), fault="local-drop", connections=2)


def _upstream_result(**measured):
    (upstream,) = [s for s in matrix.UPSTREAM if s.family == "ipv4"]
    return ScenarioResult(upstream, HZ250, predict(upstream, HZ250, rto_s=0.304), **measured)


def test_a_timer_that_backed_off_fails_though_the_death_was_on_time():
    """Sampled while alive: death zeroes icsk_backoff, so a reading after it (packetdrill's) cannot fail."""
    on_time = {"measured_s": 3.32, "error": "ETIMEDOUT", "probes": 6}
    assert _upstream_result(**on_time, backoff_max=0).verdict == "pass"
    failed = _upstream_result(**on_time, backoff_max=2)
    assert failed.verdict == "fail" and any(f.rule == "tcpi_backoff" for f in failed.failures), failed.explain()


def test_a_survival_fails_on_a_death_a_counted_probe_or_too_few_attempts():
    scenario = Scenario(KeepaliveSettings(1, 1, 3), "ipv4", "local-drop")
    p = predict(scenario, HZ250)

    def result(**measured):
        return ScenarioResult(scenario, HZ250, p, **measured)

    assert result(error="none", probes=0, counters={"TCPKeepAlive": 12}).verdict == "pass"
    assert result(measured_s=4.1, error="ETIMEDOUT", probes=3, counters={"TCPKeepAlive": 3}).verdict == "fail"
    assert result(error="none", probes=1, counters={"TCPKeepAlive": 12}).verdict == "fail"
    assert result(error="none", probes=0, counters={"TCPKeepAlive": 7}).verdict == "fail"  # retried every intvl


SURVIVORS = [s for s in matrix.FAULTS if s.fault == "local-drop"]


@pytest.mark.parametrize("scenario", SURVIVORS, ids=lambda s: s.id)
def test_an_idle_connection_whose_qdisc_refuses_its_probes_lives_on(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    assert result.death_s is None and result.error == "none", result.explain()
    assert result.probes == 0, result.explain()  # no refused probe was counted
    assert result.counters["TCPKeepAlive"] >= result.prediction.expected_count, result.explain()
    assert not result.wire.visible, result.explain()  # refused before the tap: the kernel's counters are the evidence
    assert result.verdict == "pass", result.explain()


@pytest.mark.parametrize("scenario", matrix.UPSTREAM, ids=lambda s: s.id)
def test_the_kernel_s_own_packetdrill_figures_hold(netkit_pool, scenario):
    """tcp_user_timeout_user-timeout-probe.pkt: alive at +3.250, ETIMEDOUT by +.100 more, 6 probes, backoff 0."""
    result = netkit_pool.result(scenario)
    assert result.error == "ETIMEDOUT", result.explain()
    assert result.death_s is not None and 3.25 <= result.death_s <= 3.35, result.explain()
    assert (result.probes, result.backoff_max) == (6, 0), result.explain()
    assert fits(result.prediction.outcomes(), result.death_s, result.count), result.explain()
    assert result.verdict == "pass", result.explain()


def _refused_trace(rearm: int) -> str:
    """1/1/3 after an answered probe, the qdisc then refusing: the answered probe's run re-arms intvl (250 j), the
    next four runs (probes refused) ``rearm`` each -- TCP_RESOURCE_PROBE_INTERVAL is 125 j at HZ=250."""
    from test_ledger import HZ, J0, OURS, PID, _entry, _exit, _start

    lines, now = [_start(OURS, J0 - 251, 250, J0, pid=PID)], J0
    for run in range(5):
        delay = 250 if run == 0 else rearm
        lines += [_entry(OURS, now), _start(OURS, now, delay, runs_at_jiffy(now, delay, HZ)), _exit(OURS, now)]
        now = runs_at_jiffy(now, delay, HZ)
    return "\n".join(lines)


def test_the_ledger_holds_a_refused_probe_to_half_a_second_to_the_jiffy():
    """The kernel's own re-arms: a keepalive timer that re-armed intvl (as if the probe had left) fails the rule."""
    from test_ledger import _ledger

    assert rule_failures(_ledger(_refused_trace(125)), 1, 0, 1, refused=True) == []
    [failure] = rule_failures(_ledger(_refused_trace(250)), 1, 0, 1, refused=True)
    assert failure.rule == "ledger: keepalive re-arm" and "125 jiffies" in str(failure)
