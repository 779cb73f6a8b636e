"""inspect's pure pieces -- /proc/net/tcp parsing, where a value comes from, the detection times, the verdict -- without root."""

import sys
from dataclasses import replace

import pytest

from netkit.inspect.assess import assess
from netkit.inspect.facts import Borrowed, NamespaceSysctls, ProcessFacts, SocketFacts
from netkit.inspect.procnet import parse_proc_net_tcp
from netkit.kernel import KernelInfo
from netkit.model.rto import tcp_model_timeout_s
from netkit.report.inspect import process_lines
from netkit.tcpsocket import TcpInfo, TcpSocketDiag

HZ250 = KernelInfo("test", 250, "test")
DEFAULTS = NamespaceSysctls(7200, 75, 9, 15)
CONTAINER = NamespaceSysctls(30, 5, 4, 5)
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 010012C6:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 233037 1 0 100 0 0 10 0
   1: 010012C6:18EB 020012C6:E270 01 00000000:00000000 02:0000026C 00000000     0        0 233040 2 0 20 4 30 10 -1
"""


@pytest.mark.skipif(sys.byteorder != "little", reason="the sample rows were printed by a little-endian kernel")
def test_proc_net_tcp_rows_become_sock_diag_records():
    listener, conn = parse_proc_net_tcp(PROC_NET_TCP, "ipv4")
    assert (listener.state, listener.local, listener.remote, listener.timer) == (
        "LISTEN", ("198.18.0.1", 6379), ("0.0.0.0", 0), "none")
    assert (conn.state, conn.remote, conn.timer, conn.expires_ms, conn.inode, conn.info) == (
        "ESTABLISHED", ("198.18.0.2", 57968), "keepalive", 6200, 233040, None)


def test_tcp_model_timeout_has_the_kernels_linear_part():
    assert tcp_model_timeout_s(5) == pytest.approx(12.6)  # (2 << 5) - 1 = 63 x 200 ms
    assert tcp_model_timeout_s(9) == pytest.approx(204.6)
    assert tcp_model_timeout_s(15) == pytest.approx(924.6)  # 204.6 + 6 x 120 s: the classic figure
    assert tcp_model_timeout_s(7, 1.0) == pytest.approx(247.0)  # a SYN's budget: thresh 6 with rto_base 1 s


# -- the socket's maximum RTO (TCP_RTO_MAX_MS, Linux 6.15): 5 s with tcp_retries2 15 -------------------------------------
# tcp_model_timeout: thresh ilog2(5000 / 200) = ilog2(25) = 4: (2 << 4) - 1 = 31 x 200 ms = 6.2 s, + (15 - 4) x 5 s
# = 61.2 s after the first retransmission (0.408 s: the tail loss probe at rto, then the RTO).  RTO runs from it at
# 0, 0.408, 1.224, 2.856, 6.12 (rto 0.204 s doubling), then every 5 s: 61.12 s is short of 61.2, so 66.12 kills,
# 66.528 s after the send with 16 retransmissions (not 924.6 + 4.296 = 928.896 s).
WITH_RTO_MAX = replace(DEFAULTS, rto_max_ms=120000, rto_min_us=200000)


def test_a_socket_rto_max_of_5_s_shortens_the_deadline_of_data_in_flight():
    borrowed = Borrowed(True, 7, 2, 3, 0, rto_max_ms=5000)
    a = assess(_process([SocketFacts(_diag(), 8, borrowed)], sysctls=WITH_RTO_MAX), HZ250)
    (s,) = a.sockets
    assert (s.rto_max_ms.value, s.rto_max_ms.source) == (5000, "socket")  # the namespace says 120000
    assert s.flight_by == "tcp_retries2 15, max RTO 5000 ms" and s.flight_death_s == 66.528
    assert "(15 - 4) x 5 s = 61.2 s" in s.flight_rule
    assert a.verdict.endswith("66.528 s with data in flight (tcp_retries2 15, max RTO 5000 ms)")
    assert "its sysctls: keepalive 7200/75/9, tcp_retries2 15, tcp_rto_max_ms 120000, tcp_rto_min_us 200000" in (
        process_lines(a)[1])


def test_a_kernel_without_tcp_rto_max_ms_keeps_the_constant_and_says_so():
    a = assess(_process([SocketFacts(_diag(), 8, Borrowed(True, 7, 2, 3, 0))]), HZ250)
    (s,) = a.sockets
    assert (s.rto_max_ms.value, s.rto_max_ms.source) == (120000, "no-option")
    assert s.flight_by == "tcp_retries2 15" and s.flight_death_s == 928.896


def test_unreadable_options_assume_the_namespaces_tcp_rto_max_ms_and_say_so():
    sysctls = replace(WITH_RTO_MAX, rto_max_ms=5000)
    a = assess(_process([SocketFacts(_diag(), 8)], sysctls=sysctls, borrowed=False), HZ250)
    (s,) = a.sockets
    assert s.rto_max_ms.source == "unknown" and s.flight_death_s == 66.528
    assert "namespace's tcp_rto_max_ms (5000 ms) assumed" in s.flight_rule


def _diag(state="ESTABLISHED", timer="keepalive", inode=11):
    info = TcpInfo(state, 0, 0, 0, 204000, 0, 0, 0, 1000, 25)
    return TcpSocketDiag("ipv4", state, ("198.18.0.1", 6379), ("198.18.0.2", 50000), timer, 0, 6000, inode, 0, 0, 0,
                         info)


def _process(sockets, sysctls=DEFAULTS, borrowed=True, netns=42):
    return ProcessFacts(1234, "redis-server", 0, netns, 1, sysctls, DEFAULTS, sockets, borrowed=borrowed)


def test_redis_settings_set_on_the_socket_and_the_worst_cases():
    a = assess(_process([SocketFacts(_diag(), 8, Borrowed(True, 7, 2, 3, 0))]), HZ250)
    (s,) = a.sockets
    assert [(x.value, x.source) for x in (s.idle, s.intvl, s.cnt)] == [(7, "socket"), (2, "socket"), (3, "socket")]
    assert s.idle_death_s == 13.0 and s.flight_by == "tcp_retries2 15"
    assert a.verdict == ("pid 1234 redis-server: 1 TCP socket (1 connected); dead peer noticed within 13 s idle "
                         "(keepalive 7/2/3), 928.896 s with data in flight (tcp_retries2 15)")
    assert a.warnings == []  # another namespace, but the same sysctls as the host


def test_a_value_equal_to_the_namespaces_cannot_be_told_from_an_inherited_one():
    a = assess(_process([SocketFacts(_diag(), 5, Borrowed(True, 30, 5, 4, 20000))], CONTAINER), HZ250)
    (s,) = a.sockets
    assert s.idle.source == "socket-or-namespace" and s.user_timeout_ms.source == "socket"
    assert s.idle_death_s == 35.0  # UT 20 s: the first run at or after it with a probe out (30, then 35)
    assert s.flight_by == "TCP_USER_TIMEOUT 20000 ms"
    (warning,) = a.warnings
    assert "net.ipv4.tcp_keepalive_time 30 (host 7200)" in warning and "net.ipv4.tcp_retries2 5 (host 15)" in warning


def test_without_keepalive_never_and_without_ptrace_the_timer_only():
    off = assess(_process([SocketFacts(_diag(timer="none"), 6, Borrowed(False, 7200, 75, 9, 0))]), HZ250)
    assert "dead peer never noticed while idle (no SO_KEEPALIVE)" in off.verdict
    seen = assess(_process([SocketFacts(_diag(), 6, None, "pidfd_getfd: not permitted")], borrowed=False), HZ250)
    (s,) = seen.sockets
    assert s.keepalive is True and s.idle.source == "unknown" and s.read_via == "sock_diag"
    assert "the timer's period, 7 s, is neither the namespace's idle (7200 s) nor its intvl (75 s)" in s.idle_rule
    kept = replace(_diag(), expires_ms=7199000)
    (k,) = assess(_process([SocketFacts(kept, 6, None, "pidfd_getfd: not permitted")], borrowed=False), HZ250).sockets
    assert "7875 s if the socket kept its namespace's values 7200/75/9" in k.idle_rule  # period 7200 s: may be so
    assert seen.verdict.endswith("socket options unreadable without CAP_SYS_PTRACE (sock_diag's timers only)")
    assert "928.896 s unless TCP_USER_TIMEOUT" == s.flight_death


def test_text_starts_with_the_verdict_and_marks_where_values_come_from():
    a = assess(_process([SocketFacts(_diag("LISTEN", "none", 10), 7, Borrowed(False, 7200, 75, 9, 0)),
                         SocketFacts(_diag(), 8, Borrowed(True, 7, 2, 3, 0))]), HZ250)
    lines = process_lines(a)
    assert lines[0] == a.verdict and "2 TCP sockets (1 connected, 1 listening)" in lines[0]
    row = next(line for line in lines if line.lstrip().startswith("8 "))
    assert "7s*" in row and "2s*" in row and "13 s" in row
    listener = next(line for line in lines if line.lstrip().startswith("7 "))
    assert "7200s=" in listener and "accepted: never" in listener


def test_listeners_only_are_judged_by_what_accepted_connections_inherit():
    a = assess(_process([SocketFacts(_diag("LISTEN", "none", 10), 7, Borrowed(True, 60, 10, 5, 0))]), HZ250)
    assert a.verdict == ("pid 1234 redis-server: 1 TCP socket (1 listening); dead peer noticed within 110 s idle "
                         "(keepalive 60/10/5), 928.896 s with data in flight (tcp_retries2 15) for connections it "
                         "accepts, if it keeps the listener's options")
    (s,) = a.sockets
    assert s.idle_death == "110 s" and not s.connected


def test_one_connection_without_keepalive_makes_the_process_never_notice():
    a = assess(_process([SocketFacts(_diag(inode=1), 5, Borrowed(True, 7, 2, 3, 0)),
                         SocketFacts(_diag(timer="none", inode=2), 6, Borrowed(False, 7200, 75, 9, 0))]), HZ250)
    assert "dead peer never noticed while idle (1 of 2 without SO_KEEPALIVE)" in a.verdict


INSPECT_KEYS = ["pid", "comm", "uid", "verdict", "netns", "host_netns", "foreign_namespace", "sysctls", "host_sysctls",
                "read_via", "table", "attributed", "warnings", "notes", "sockets"]
SOCKET_KEYS = ["fd", "netns", "family", "state", "local", "remote", "inode", "timer", "read_via", "keepalive", "idle",
               "intvl", "cnt", "user_timeout_ms", "rto_s", "idle_death_s", "idle_death", "idle_rule", "idle_window_s",
               "flight_death_s", "flight_death", "flight_by", "flight_rule", "flight_window_s", "notes", "rto_max_ms"]


def test_inspect_json_keys_are_pinned():
    data = assess(_process([SocketFacts(_diag(), 8, Borrowed(True, 7, 2, 3, 0))]), HZ250).to_dict()
    assert list(data) == INSPECT_KEYS and list(data["sockets"][0]) == SOCKET_KEYS
    assert data["sockets"][0]["idle"] == {"value": 7, "source": "socket"}
