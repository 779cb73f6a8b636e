"""A retracted window (the peer takes its window back to zero with data in flight), worked out by hand.

docs/rules.md, "A retracted window".  ``tcp_retransmit_timer``'s zero-window
branch; t = 0 is the send of the burst; the first retransmission leaves rto
after it (its lateness: the wheel's, plus a jiffy of ``tcp_rearm_rto``'s
rounding from the tail loss probe's run).

* blackhole, TCP_USER_TIMEOUT 2000 ms.  HZ=250, rto 0.204 s (51 jiffies):
  retransmissions at 0, 0.408, 1.224 s after the first; the run after is
  clamped to the first + 2 s: death 2.204 s, 3 retransmissions.  Lateness:
  4 + 4 ms (the first), the clamped arming of 0.776 s (level 1: 32 ms, + a
  jiffy + 1 ms of the TCP clock) = 45 ms, + 2 measurement jiffies:
  [2.200, 2.257].  HZ=1000, rto 0.201 s: death 2.201 s, 3 retransmissions;
  8 + 1 ms, 64 + 1 + 1 ms (0.794 s: level 2), + 2 ms: [2.200, 2.278].
* blackhole, no user timeout, tcp_retries2 3 (it does not apply), maximum
  RTO 1000 ms.  HZ=250: 2 x rto_max = 500 jiffies; runs expire at 51, 153,
  357, 607 jiffies (backoff 102, 204, then capped at 250); 607 > 500 and
  607 - 51 > 500: death 2.428 s, 3 retransmissions; lateness 4 + 32 + 32 +
  32 + 8 ms: [2.424, 2.536].  HZ=1000, rto 201: 201, 603, 1407, 2407 > 2000
  (2206 > 2000): 2.407 s, 3; lateness 8 + 8 + 64 + 64 + 2 ms: [2.406, 2.553].
* peer-reboot: the first retransmission meets a RST: ECONNRESET at rto;
  HZ=250 [0.200, 0.204 + 8 + 8 ms].
"""

from __future__ import annotations

import pytest

from netkit.enums import CountSource
from netkit.errors import FeatureMissing, NotModelled, SettingError
from netkit.faults import DIRECT_FAULTS
from netkit.gate import matrix
from netkit.keepalive import KeepaliveSettings
from netkit.kernel import KernelInfo
from netkit.model import predict
from netkit.model.predict import not_modelled_reason
from netkit.model.retracted import RETRACTED_NEEDS_LIMIT
from netkit.report.text import COUNTED
from netkit.scenario import Scenario, requirements
from netkit.scenario.observe import live_count
from netkit.tcpsocket import TcpInfo

HZ250, HZ1000 = KernelInfo("test", 250, "test"), KernelInfo("test", 1000, "test")
RTO = {250: 0.204, 1000: 0.201}


def retracted(ut: int | None = None, fault: str = "blackhole", **changes: object) -> Scenario:
    return Scenario(KeepaliveSettings(1, 1, 3, ut), "ipv4", fault, state="retracted-window", **changes)


@pytest.mark.parametrize("kernel,expected,window", [(HZ250, 2.204, (2.2, 2.257)), (HZ1000, 2.201, (2.2, 2.278))])
def test_the_user_timeout_counts_from_the_first_retransmission(kernel, expected, window):
    p = predict(retracted(2000), kernel, RTO[kernel.hz])
    assert (p.expected_s, p.window_s, p.expected_count, p.alternative_window_s) == (expected, window, 3, None)
    assert (p.expected_error, p.count_source) == ("ETIMEDOUT", CountSource.RETRANS_SEGS)
    assert "CVE-2024-41007" in p.rule and "tcp_retries2 does not apply" in p.rule


@pytest.mark.parametrize("kernel,expected,window", [(HZ250, 2.428, (2.424, 2.536)), (HZ1000, 2.407, (2.406, 2.553))])
def test_without_a_user_timeout_twice_the_maximum_rto_of_silence_kills(kernel, expected, window):
    p = predict(retracted(retries2=3, rto_max_ms=1000), kernel, RTO[kernel.hz])
    assert (p.expected_s, p.window_s, p.expected_count) == (expected, window, 3)
    assert p.expected_error == "ETIMEDOUT"


def test_a_peer_that_forgot_resets_the_first_retransmission():
    p = predict(retracted(3000, fault="peer-reboot"), HZ250, 0.204)
    assert (p.expected_s, p.window_s, p.expected_count, p.expected_error) == (0.204, (0.2, 0.22), 1, "ECONNRESET")


@pytest.mark.parametrize("scenario,reason", [
    (retracted(), RETRACTED_NEEDS_LIMIT),  # 240 s of silence: the default TCP_RTO_MAX, twice
    (retracted(retries2=3), RETRACTED_NEEDS_LIMIT),  # tcp_retries2 does not apply to the zero-window branch
    (retracted(rto_max_ms=6000), RETRACTED_NEEDS_LIMIT),
    (retracted(3000, fault="link-down"), "not measured yet"),
    (retracted(3000, fault="peer-gone"), "not measured yet"),
])
def test_what_has_no_rule_is_refused_before_a_lab(scenario, reason):
    assert reason in (not_modelled_reason(scenario) or "")
    with pytest.raises(NotModelled, match="retracted window"):
        predict(scenario, HZ250, 0.204)


def test_a_kernel_that_never_retracts_skips_with_the_reason(monkeypatch):
    monkeypatch.setattr(requirements, "has_sysctl", lambda name: name != "net.ipv4.tcp_shrink_window")
    assert "net.ipv4.tcp_shrink_window (added in Linux 6.5)" in (requirements.missing_feature(retracted(2000)) or "")
    with pytest.raises(FeatureMissing, match="tcp_shrink_window"):
        requirements.require_supported(retracted(2000))



# -- a peer that hangs: up, reading nothing, its kernel answering every segment with a zero window ---------------


@pytest.mark.parametrize("kernel,expected,window", [(HZ250, 2.204, (2.2, 2.257)), (HZ1000, 2.201, (2.2, 2.278))])
def test_a_hung_peers_answers_do_not_reset_the_user_timeout(kernel, expected, window):
    # rcv_delta stays at microseconds: rtx_delta > UT is the only way out, at the same moment as a silent peer's
    p = predict(retracted(2000, fault="peer-hangs"), kernel, RTO[kernel.hz])
    assert (p.expected_s, p.window_s, p.expected_count, p.expected_error) == (expected, window, 3, "ETIMEDOUT")


def test_a_hung_peer_behind_a_closed_window_dies_at_the_first_probe_plus_the_user_timeout():
    # tcp_ack_probe re-arms from each answer but clears icsk_probes_tstamp only when the window opens (5.11)
    p = predict(Scenario(KeepaliveSettings(1, 1, 3, 3000), "ipv4", "peer-hangs", state="zero-window"), HZ250, 0.212)
    assert (p.expected_s, p.expected_count, p.count_source, p.measured_from) == (3.212, 4, CountSource.WIN_PROBES,
                                                                                  "window-closed")
    assert "icsk_probes_tstamp" in p.rule


@pytest.mark.parametrize("state", ["zero-window", "retracted-window"])
def test_a_hung_peer_without_a_user_timeout_is_refused_it_never_dies(state):
    scenario = Scenario(KeepaliveSettings(1, 1, 3), "ipv4", "peer-hangs", state=state, retries2=3)
    assert "never dies" in (not_modelled_reason(scenario) or "")
    with pytest.raises(NotModelled, match="RFC 1122"):
        predict(scenario, HZ250, 0.212)


@pytest.mark.parametrize("state", ["idle", "unacked", "syn-sent"])
def test_a_hung_peer_is_a_window_states_fault(state):
    with pytest.raises(SettingError, match="window state's fault"):
        Scenario(KeepaliveSettings(1, 1, 3, 3000), "ipv4", "peer-hangs", state=state,
                 syn_retries=1 if state == "syn-sent" else None)


def test_a_hung_peer_is_not_a_way_to_break_the_lab():
    # not in the idle fault matrix, check-client's or check-server's choices: it breaks nothing
    assert "peer-hangs" not in DIRECT_FAULTS and not any(s.fault == "peer-hangs" for s in matrix.FAULTS)


def test_the_demo_names_every_count_and_reads_a_retracted_windows_live():
    # the zero-window branch leaves tcpi_retransmits at 0: the demo's live count is tcpi_total_retrans since the watch
    info = TcpInfo("ESTABLISHED", 0, 0, 0, 204000, 1, 0, 0, 5, 25, total_retrans=7)
    assert set(COUNTED) == set(CountSource)
    assert live_count(CountSource.RETRANS_SEGS, info, 4) == 3
    assert live_count(CountSource.RETRANSMITS, info, 4) == 0
