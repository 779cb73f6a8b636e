"""check-server's pure pieces -- inference from timers, the verdict, the poll helper -- without root or a lab."""

import threading

import pytest

from netkit.check.infer import infer_idle, infer_intvl, window_for_expectation
from netkit.check.result import CheckResult
from netkit.check.verdict import conclude
from netkit.errors import ScenarioCancelled, WaitTimeout
from netkit.keepalive import KeepaliveSettings
from netkit.kernel import KernelInfo
from netkit.lab.diag import TcpSocketDiag
from netkit.lab.tcpinfo import TcpInfo
from netkit.model.keepalive import keepalive_death
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


def test_verdict_match_mismatch_and_measured():
    assert conclude(_measured(4.0, (4.05, 4.10)), HZ250).verdict == "match"
    wrong = conclude(_measured(2.0, (4.05, 4.10)), HZ250)
    assert wrong.verdict == "mismatch" and wrong.inferred["cnt"] == 3 and wrong.model_expected_s == 4.0
    assert conclude(_measured(None, (4.05, 4.10)), HZ250).verdict == "measured"
    late = conclude(_measured(None, (4.30, 4.35)), HZ250)  # 1/1/3's window ends at 4.136 s
    assert late.problems == ["the death (4.300..4.350 s) is outside netkit's window [3.996, 4.136] s "
                             "for the inferred settings (TCP_USER_TIMEOUT set?)"]


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
    "command", "kernel", "family", "port", "expect_s", "pid", "listening", "server", "client", "timer_at_connect",
    "keepalive", "inferred", "inferred_from", "rule", "model_expected_s", "model_window_s", "fault_at_s", "measured_s",
    "dead_between_s", "probes", "counters", "window_s", "tolerance", "timeline", "verdict", "problems", "program_exit",
    "program_output_tail", "hz", "exit_code",
]


def test_check_server_json_keys_are_pinned():
    from netkit.evidence import Event

    r = conclude(_measured(4.0, (4.05, 4.10)), HZ250)
    r.timeline.append(Event(0.0, "last segment received", "sampled"))
    data = r.to_dict()
    assert list(data) == CHECK_KEYS
    assert data["timeline"] == [{"t_s": 0.0, "what": "last segment received"}]  # no source key, as before
    assert (data["kernel"], data["hz"], data["exit_code"]) == ("test", 250, 0)
