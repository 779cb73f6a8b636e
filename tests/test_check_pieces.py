"""check-server's and check-client's pure pieces -- inference from timers, the verdicts, the poll helper -- without
root or a lab."""

import threading
from dataclasses import replace

import pytest
from synthetic_ledger import keepalive_ledger

from netkit.check.client import substitute
from netkit.check.follow import LastLooks, timer_reference
from netkit.check.infer import (
    ProbeTimes,
    infer_first_probe_idle,
    infer_idle,
    infer_intvl,
    infer_rearmed_intvl,
)
from netkit.check.result import CAUSES, NO_KEEPALIVE_CLIENT, CheckResult, ClientCheckResult
from netkit.check.verdict import classify, conclude, conclude_client
from netkit.errors import ScenarioCancelled, WaitTimeout
from netkit.keepalive import KeepaliveSettings
from netkit.kernel import KernelInfo
from netkit.model.expectation import window_for_expectation
from netkit.model.keepalive import keepalive_death
from netkit.report.check import client_verdict_line, found_out
from netkit.tcpsocket import Sample, TcpInfo, TcpSocketDiag
from netkit.waiting import wait_until

HZ250 = KernelInfo("test", 250, "test")


def keepalive_socket(expires_ms, last_ack_recv_ms, probes=0):
    info = TcpInfo("ESTABLISHED", 0, probes, 0, 204000, 0, 0, 0, last_ack_recv_ms, 25)
    return TcpSocketDiag("ipv4", "ESTABLISHED", ("198.18.0.1", 4242), ("198.18.0.2", 50000), "keepalive",
                         probes, expires_ms, 1, 0, 0, 0, info)


def test_settings_are_read_off_the_timers_period():
    # right after the connect: expires in 1996 ms, 4 ms after the last segment: idle 2 s
    assert infer_idle(keepalive_socket(1996, 4))[0] == 2
    # right after an answered probe: 996 + 4 ms: intvl 1 s; never below 1 (the kernel's minimum)
    assert infer_intvl(keepalive_socket(996, 4))[0] == 1
    assert infer_intvl(keepalive_socket(100, 0))[0] == 1


def test_expectation_window_uses_the_model_for_inferred_settings_else_packetdrills_bound():
    # 1/1/3 at HZ=250: late by 4 runs x 32 ms + 2 jiffies = 136 ms, early by one jiffy
    window, how = window_for_expectation(4.0, keepalive_death(KeepaliveSettings(1, 1, 3), HZ250), HZ250)
    assert window == pytest.approx((3.996, 4.136)) and "136 ms" in how
    # nothing inferred: max(4 ms, 12.5 % of 4 s) = 500 ms
    window, how = window_for_expectation(4.0, None, HZ250)
    assert window == pytest.approx((3.996, 4.5)) and "500 ms" in how


def _measured(expect_s, dead_between):
    r = CheckResult(["server"], HZ250, "ipv4", 4242, expect_s)
    r.inferred = {"idle": 1, "intvl": 1}
    r.probes, r.counters = 3, {"TCPKeepAlive": 3, "TCPAbortOnTimeout": 1}
    r.dead_between_s, r.measured_s = dead_between, dead_between[1]
    return r


def _read(cnt: int, user_timeout_ms: int = 0) -> dict:
    return {"keepalive": True, "idle": 1, "intvl": 1, "cnt": cnt, "user_timeout_ms": user_timeout_ms,
            "rto_max_ms": 120000}


def test_a_user_timeout_read_off_the_servers_socket_is_the_rule_judged_by():
    # PostgreSQL with tcp_keepalives 1/1/9 and tcp_user_timeout 2500 (the gallery's case): 2 probes out at 3.07 s
    r = _measured(3.0, (3.06, 3.08))
    r.probes, r.counters, r.options = 2, {"TCPKeepAlive": 2, "TCPAbortOnTimeout": 1}, _read(9, 2500)
    r = conclude(r, HZ250)
    assert r.verdict == "match" and r.problems == [] and "cnt" not in r.inferred
    assert r.rule is not None and r.rule.startswith("tcp_keepalive_timer with TCP_USER_TIMEOUT 2500 ms")
    assert r.model_expected_s == 3.0


def test_a_count_read_off_the_socket_that_the_probes_contradict_is_named():
    r = _measured(4.0, (4.05, 4.10))
    r.options = _read(9)
    r = conclude(r, HZ250)
    assert "cnt inferred from the timers is 3, but the socket holds 9" in r.problems
    assert r.model_expected_s == 10.0  # judged by what the socket holds: 1 + 1 x 9


def test_verdict_match_mismatch_and_measured():
    assert conclude(_measured(4.0, (4.05, 4.10)), HZ250).verdict == "match"
    wrong = conclude(_measured(2.0, (4.05, 4.10)), HZ250)
    assert wrong.verdict == "mismatch" and wrong.inferred["cnt"] == 3 and wrong.model_expected_s == 4.0
    assert conclude(_measured(None, (4.05, 4.10)), HZ250).verdict == "measured"
    late = conclude(_measured(None, (4.30, 4.35)), HZ250)  # 1/1/3's window ends at 4.136 s
    assert late.problems == ["the death (4.300..4.350 s) is outside netkit's window [3.996, 4.136] s "
                             "for the inferred settings (TCP_USER_TIMEOUT set?)"]


def test_a_traced_death_is_judged_at_the_kernels_moment_and_its_rearms_against_the_rule():
    ledger = keepalive_ledger()  # 1/1/3: three probes re-armed for 250 jiffies, the CLOSE in the fourth run
    assert ledger.death is not None
    r = _measured(4.0, (4.20, 4.25))  # sock_diag's bracket alone: past the window's end, 4.136 s
    assert conclude(r, HZ250).verdict == "mismatch"
    r = _measured(4.0, (4.20, 4.25))
    r.ledger, r.kernel_death_s, r.evidence = ledger, ledger.death.t_s, "trace"
    judged = conclude(r, HZ250)
    assert judged.judged_s == (ledger.death.t_s, ledger.death.t_s) and judged.verdict == "match"
    assert judged.rule_failures == [] and judged.to_dict()["ledger"] == ledger.to_dict()
    r = _measured(4.0, (4.20, 4.25))
    r.inferred["intvl"] = 2  # what sock_diag would infer wrongly: the re-arms say 250 jiffies, not 500
    r.ledger, r.kernel_death_s = ledger, ledger.death.t_s
    [failure] = conclude(r, HZ250).rule_failures
    assert "should re-arm for intvl * HZ = 500 jiffies" in failure and failure in r.problems


def test_wait_until_returns_the_value_times_out_and_cancels():
    calls = iter([None, 0, "found"])
    assert wait_until(lambda: next(calls), 1.0, 0.001) == "found"
    with pytest.raises(WaitTimeout, match="the thing: not within 0.01 s"):
        wait_until(lambda: None, 0.01, 0.001, what="the thing")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ScenarioCancelled):
        wait_until(lambda: None, 1.0, 0.001, cancel=cancel)


CHECK_KEYS = [
    "schema", "command", "kernel", "family", "port", "expect_s", "pid", "listening", "server", "client", "timer_at_connect",
    "accept_deferred_s", "options", "options_from", "options_unread", "keepalive", "inferred", "inferred_from", "rule",
    "model_expected_s", "model_window_s", "fault_at_s", "measured_s", "dead_between_s", "probes", "counters",
    "window_s", "tolerance", "timeline", "verdict", "problems", "program_exit", "program_output_tail", "evidence",
    "evidence_note", "kernel_death_s", "rule_failures", "ledger", "hz", "exit_code",
]


def test_check_server_json_keys_are_pinned():
    from netkit.evidence import Event

    r = conclude(_measured(4.0, (4.05, 4.10)), HZ250)
    r.timeline.append(Event(0.0, "last segment received", "sampled"))
    data = r.to_dict()
    assert list(data) == CHECK_KEYS and data["schema"] == "netkit.check-server/1"
    assert data["timeline"] == [{"t_s": 0.0, "what": "last segment received"}]  # no source key, as before
    assert (data["kernel"], data["hz"], data["exit_code"]) == ("test", 250, 0)


# ---------------------------------------------------------------------------------------------------------------
# check-client's pure pieces


def test_client_probe_times_read_idle_and_intvl_off_the_requested_expiries():
    probes = ProbeTimes(anchor=100.0)
    before = Sample(100.900, 100.901, keepalive_socket(100, 900))  # the run due at 101.000 s
    after = Sample(101.010, 101.011, keepalive_socket(995, 1010, probes=1))  # probe 1 went out; next in 995 ms
    assert probes.saw(before, after) == [1]
    assert probes.first_requested_s == pytest.approx(1.0) and probes.at_s == [0.956]
    assert probes.rearmed_s == pytest.approx(1.0495)  # 101.010 + 0.995 - the probe's time (the looks' middle)
    assert infer_first_probe_idle(probes.first_requested_s)[0] == 1
    assert infer_rearmed_intvl(probes.rearmed_s, [])[0] == 1
    later = Sample(102.050, 102.051, keepalive_socket(990, 2050, probes=3))  # two probes between two looks
    assert probes.saw(after, later) == [2, 3] and len(probes.at_s) == 3
    assert probes.saw(later, later) == []


def test_client_probe_times_read_idle_off_the_last_look_when_a_reset_answered_probe_1_between_looks():
    probes = ProbeTimes(anchor=100.0)
    last = Sample(101.900, 101.901, keepalive_socket(100, 1900))  # the run due at 102.000 s; then gone
    probes.vanished(last)
    assert probes.first_requested_s == pytest.approx(2.0) and probes.at_s == [] and probes.rearmed_s is None
    assert infer_first_probe_idle(probes.first_requested_s)[0] == 2
    dying = ProbeTimes(anchor=100.0)  # gone with probes outstanding: the run that killed it says nothing of idle
    dying.vanished(Sample(103.900, 103.901, keepalive_socket(100, 3900, probes=2)))
    assert dying.first_requested_s is None


def test_a_look_inside_a_timer_run_does_not_replace_what_the_last_one_said_of_the_timer():
    # the look before the run, one inside it (detached, not yet re-armed or killed: sock_diag says timer 0,
    # retrans 0), then the run's outcome: the inside look is no evidence of the timer
    before = Sample(108.950, 108.951, keepalive_socket(50, 8950, probes=9))
    inside = Sample(109.001, 109.002, replace(keepalive_socket(0, 9001), timer="none", retrans=0))
    assert timer_reference(before, inside) is before
    probes = ProbeTimes(anchor=100.0)
    assert probes.saw(before, timer_reference(before, inside)) == []  # no probe 1..9 counted again
    after = Sample(101.010, 101.011, keepalive_socket(995, 1010, probes=1))
    assert timer_reference(inside, after) is after and timer_reference(before, after) is after
    # a socket that never had a timer (no keepalive) is what its looks say; so is a change of state
    quiet = Sample(101.0, 101.001, replace(keepalive_socket(0, 1000), timer="none", retrans=0))
    assert timer_reference(quiet, inside) is inside
    closing = Sample(109.1, 109.101, replace(inside.sock, state="FIN_WAIT1"))
    assert timer_reference(before, closing) is closing
    # a follow loop's bookkeeping: the inside look is the last seen alive, not the timer's witness
    looks = LastLooks(before)
    assert looks.see(inside) == (before, before) and looks.alive is inside and looks.timed is before


@pytest.mark.parametrize("end, timer, counters, exited, ut, cause", [
    ("gone", "keepalive", {"TCPAbortOnTimeout": 1}, True, 0, "keepalive"),
    ("gone", "keepalive", {"TCPAbortOnTimeout": 1}, False, 2500, "user-timeout"),
    ("gone", "retransmit", {"TCPAbortOnTimeout": 1}, False, 0, "retransmission"),
    ("gone", "keepalive", {"TCPAbortOnTimeout": 0}, False, 0, "peer-reset"),  # tcp_reset counts no abort
    ("gone", "none", {"TCPAbortOnClose": 1}, True, 0, "application-exit"),  # exited with unread data: RST
    ("gone", "none", {"TCPAbortOnData": 1}, False, 0, "application-reset"),  # SO_LINGER 0
    ("closed", "keepalive", {}, True, 0, "application-exit"),
    ("closed", "none", {}, False, 0, "application-fin"),
    ("none", "none", {}, False, 0, "none"),
])
def test_client_cause_is_classified_from_what_the_follow_saw(end, timer, counters, exited, ut, cause):
    assert classify(end, timer, counters, exited, ut) == cause


def _client(cause="keepalive", dead=(4.05, 4.10), expect_s=None, options=None, keepalive=True, probes=3, **fields):
    r = ClientCheckResult(["psql", "host={host}"], HZ250, "ipv4", 5432, expect_s=expect_s, max_wait_s=300.0,
                          started=["psql", "host=198.18.0.1"], keepalive=keepalive, cause=cause, options=options,
                          last_segment="idle", inferred={"idle": 1, "intvl": 1, "cnt": 3}, probes=probes, **fields)
    if dead:
        r.dead_between_s, r.measured_s = dead, dead[1]
    return r


ON_SOCKET = {"keepalive": True, "idle": 1, "intvl": 1, "cnt": 3, "user_timeout_ms": 0}


def test_client_verdict_against_the_model_of_the_settings_read_off_the_socket():
    r = conclude_client(_client(expect_s=4.0, options=ON_SOCKET), HZ250)
    assert (r.verdict, r.model_expected_s, r.problems) == ("match", 4.0, [])
    assert r.window_s == pytest.approx((3.996, 4.136))
    late = conclude_client(_client(dead=(4.30, 4.35), options=ON_SOCKET), HZ250)
    assert late.verdict == "measured" and "outside netkit's window [3.996, 4.136] s" in late.problems[0]
    differs = conclude_client(_client(options={**ON_SOCKET, "idle": 2}), HZ250)
    assert "idle inferred from the timers is 1, but the socket holds 2" in differs.problems
    with_ut = conclude_client(_client("user-timeout", dead=(3.02, 3.06), options={**ON_SOCKET, "cnt": 5,
                                                                                  "user_timeout_ms": 2500}), HZ250)
    assert with_ut.model_expected_s == 3.0 and with_ut.problems == []  # cnt is not judged: the timeout ended it


def test_client_verdict_without_a_death():
    silent = conclude_client(_client("none", dead=None, keepalive=False, options={**ON_SOCKET, "keepalive": False}),
                             HZ250)
    assert silent.verdict == "no-keepalive" and silent.exit_code == 1
    assert silent.problems[0] == f"{NO_KEEPALIVE_CLIENT} (still connected 300 s after the break)"
    assert client_verdict_line(silent).startswith("verdict: NO KEEPALIVE - no keepalive timer on the client's socket")
    slow = conclude_client(_client("none", dead=None, options={**ON_SOCKET, "idle": 7200, "intvl": 75, "cnt": 9}),
                           HZ250)
    assert slow.verdict == "no-death" and "its keepalive would notice at 7875 s" in slow.problems[0]


def test_client_that_gives_up_itself_is_judged_by_packetdrills_bound():
    r = conclude_client(_client("application-exit", dead=(2.0, 2.0), expect_s=2.0, program_exit=28), HZ250)
    assert r.verdict == "match" and r.window_s == pytest.approx((1.996, 2.25)) and "packetdrill" in r.tolerance
    assert "gave up by itself before its keepalive would have noticed (4 s" in r.problems[0]
    assert found_out(r) == "by itself: its process exited (exit status 28)"


def test_client_verdict_line_says_where_each_value_came_from():
    r = conclude_client(_client(expect_s=4.0, options=ON_SOCKET,
                                options_from={"idle": "socket", "intvl": "socket",
                                              "cnt": "net.ipv4.tcp_keepalive_probes"}), HZ250)
    assert client_verdict_line(r) == (
        "verdict: MATCH - the client noticed the dead server 4.100 s after the last segment it received, by the "
        "kernel's keepalive: 3 unanswered probes (idle 1 s, intvl 1 s, cnt 3 from the client namespace's "
        "net.ipv4.tcp_keepalive_probes; read off the socket); expected 4 s, window [3.996, 4.136] s")
    inferred = conclude_client(_client(namespace_sysctls={"idle": 7200, "intvl": 75, "cnt": 3}), HZ250)
    assert "cnt 3 = the client namespace's net.ipv4.tcp_keepalive_probes; inferred from its timers" in \
        client_verdict_line(inferred)


def test_behind_a_middlebox_answered_probes_are_a_survival_and_unanswered_ones_are_not():
    kept = _client(cause="none", dead=None, options=ON_SOCKET, middlebox_timeout_s=3, probes=0, fault="middlebox-forgets",
                   counters={"TCPKeepAlive": 9, "TCPAbortOnTimeout": 0})
    r = conclude_client(kept, HZ250)
    assert (r.verdict, r.exit_code, r.problems) == ("survived", 0, [])
    assert client_verdict_line(r).startswith("verdict: SURVIVED - still connected 300 s after the last segment it "
                                             "received, behind a router that forgets a flow idle for 3 s: its "
                                             "keepalive probes (9 sent, all answered)")
    probing = _client(cause="none", dead=None, options=ON_SOCKET, middlebox_timeout_s=3, probes=2,
                      counters={"TCPKeepAlive": 2})
    assert conclude_client(probing, HZ250).verdict == "no-death"  # probes out: the flow is being lost, not kept
    forgotten = conclude_client(_client(options=ON_SOCKET, middlebox_timeout_s=3, fault="middlebox-forgets"), HZ250)
    assert client_verdict_line(forgotten).startswith("verdict: MEASURED - the client noticed the broken path (the "
                                                     "router had forgotten the flow) 4.100 s after")
    direct = _client(cause="none", dead=None, options=ON_SOCKET, probes=0, counters={"TCPKeepAlive": 9})
    assert conclude_client(direct, HZ250).verdict == "no-death"  # no middlebox: still connected is not a survival


def test_placeholders_are_replaced_and_nothing_else():
    assert substitute(["curl", "http://[{host}]:{port}/", '{"json": 1}'], "2001:2::1", 5432) == [
        "curl", "http://[2001:2::1]:5432/", '{"json": 1}']


CLIENT_KEYS = [
    "schema", "command", "kernel", "family", "port", "fault", "expect_s", "max_wait_s", "middlebox_timeout_s", "started", "pid",
    "server", "client", "connections", "timer_at_break", "options", "options_from", "options_unread",
    "namespace_sysctls", "keepalive", "inferred", "inferred_from", "last_segment", "rule", "model_expected_s",
    "model_window_s", "fault_at_s", "cause", "measured_s", "dead_between_s", "probes", "retransmissions",
    "state_after", "counters", "window_s", "tolerance", "timeline", "verdict", "problems", "program_exited_s",
    "program_exit", "program_output_tail", "evidence", "evidence_note", "kernel_death_s", "rule_failures", "ledger",
    "hz", "exit_code",
]


def test_check_client_json_keys_are_pinned():
    data = conclude_client(_client(expect_s=4.0, options=ON_SOCKET), HZ250).to_dict()
    assert list(data) == CLIENT_KEYS and data["schema"] == "netkit.check-client/1"
    assert data["cause"] in CAUSES and (data["hz"], data["exit_code"]) == (250, 0)


def test_peer_reset_is_judged_from_the_inferred_idle_alone_when_the_options_are_unread():
    r = _client("peer-reset", dead=(2.02, 2.03))
    r.inferred, r.probes = {"idle": 2}, 0  # the RST answered probe 1 between two looks: no intvl, no cnt
    r = conclude_client(r, HZ250)
    assert r.model_expected_s == 2.0 and "RST" in r.rule and r.problems == []
