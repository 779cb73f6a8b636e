"""Wire evidence: the parser on synthetic frames, the capture in a lab, pcap files that tcpdump reads."""

import os
import shutil
import socket
import struct
import subprocess
import sys
from dataclasses import FrozenInstanceError, replace

import pytest

import netkit.scenario.context
from netkit import KeepaliveSettings, Scenario, run_scenario
from netkit.enums import EventKind
from netkit.evidence.classify import classify
from netkit.evidence.frames import (
    PACKET_HOST,
    PACKET_OUTGOING,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    Frame,
    parse_frame,
)
from netkit.evidence.pcap import pcap_bytes, read_pcap, write_pcap
from netkit.evidence.wire import analyse, evidence
from netkit.kernel import kernel_info
from netkit.lab.capture import Capture
from netkit.privileges import missing_privileges

pytest_plugins = ["pytester"]
needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))
needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (apt-get install tcpdump)")

MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
V4 = ("198.18.0.1", 4242), ("198.18.0.2", 50000)
V6 = ("2001:2::1", 4242), ("2001:2::2", 50000)
TIMESTAMP_OPTIONS = b"\x01\x01\x08\x0a" + b"\x00" * 8  # nop nop TS: a 32-byte header, as Linux sends


def tcp_frame(src, dst, seq, ack, flags, payload=b"", window=64, options=TIMESTAMP_OPTIONS, hop_by_hop=False):
    """An Ethernet frame with one TCP segment (checksums left 0: the parser does not check them)."""
    (saddr, sport), (daddr, dport) = src, dst
    header = struct.pack("!HHIIHHHH", sport, dport, seq, ack, ((20 + len(options)) // 4) << 12 | flags, window, 0, 0)
    tcp = header + options + payload
    if ":" in saddr:
        extension = b"\x06\x00" + b"\x01\x04\x00\x00\x00\x00" if hop_by_hop else b""  # PadN to 8 bytes
        ip = struct.pack("!IHBB", 6 << 28, len(extension) + len(tcp), 0 if hop_by_hop else 6, 64)
        ip += socket.inet_pton(socket.AF_INET6, saddr) + socket.inet_pton(socket.AF_INET6, daddr) + extension
        ethertype = 0x86DD
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0)
        ip += socket.inet_pton(socket.AF_INET, saddr) + socket.inet_pton(socket.AF_INET, daddr)
        ethertype = 0x0800
    return MAC_B + MAC_A + struct.pack("!H", ethertype) + ip + tcp


def keepalive_death_frames(tested, peer, probes=3, intvl_ns=1_024_000_000):
    """A connection that goes idle, has one probe answered, then probes into a blackhole and is reset."""
    t0 = 1_700_000_000 * 10**9
    iss, irs = 1000, 5000
    frames = []

    def out(dt_ns, seq, flags, payload=b""):
        frames.append(Frame(t0 + dt_ns, PACKET_OUTGOING, tcp_frame(tested, peer, seq, irs + 1, flags, payload)))

    def back(dt_ns, ack, flags=TCP_ACK, window=64):
        frames.append(Frame(t0 + dt_ns, PACKET_HOST, tcp_frame(peer, tested, irs + 1, ack, flags, window=window)))

    frames.append(Frame(t0, PACKET_HOST, tcp_frame(peer, tested, irs, 0, TCP_SYN)))
    out(10_000, iss, TCP_SYN | TCP_ACK)
    back(20_000, iss + 1)
    out(30_000, iss + 1, TCP_PSH | TCP_ACK, b"hello")  # snd_nxt = iss + 6
    back(40_000, iss + 6)
    reply_ns = 1_000_050_000
    out(1_000_000_000, iss + 5, TCP_ACK)  # the answered probe: seq snd_nxt - 1
    back(reply_ns, iss + 6)  # its reply: the last segment received
    for n in range(1, probes + 1):
        out(reply_ns + n * intvl_ns, iss + 5, TCP_ACK)
    out(reply_ns + (probes + 1) * intvl_ns, iss + 6, TCP_RST | TCP_ACK)
    return frames, t0 + reply_ns


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_parser_reads_the_tcp_fields(addresses):
    tested, peer = addresses
    seg = parse_frame(tcp_frame(tested, peer, 0xFFFFFFF0, 77, TCP_PSH | TCP_ACK, b"x" * 10, window=501))
    assert (seg.src, seg.sport, seg.dst, seg.dport) == (tested[0], tested[1], peer[0], peer[1])
    assert (seg.seq, seg.ack, seg.window, seg.payload) == (0xFFFFFFF0, 77, 501, 10)
    assert seg.flag_text == "P." and seg.family == ("ipv6" if ":" in tested[0] else "ipv4")


def test_parser_walks_ipv6_extension_headers_and_ignores_what_is_not_tcp():
    seg = parse_frame(tcp_frame(*V6, 1, 2, TCP_RST, hop_by_hop=True))
    assert seg is not None and seg.has(TCP_RST) and seg.payload == 0
    arp = MAC_B + MAC_A + b"\x08\x06" + b"\x00" * 28
    assert parse_frame(arp) is None
    assert parse_frame(b"\x00" * 10) is None


# -- classification and evidence ----------------------------------------------------------------------


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_keepalive_probes_replies_and_the_final_rst_are_recognised(addresses):
    tested, peer = addresses
    frames, reply_ns = keepalive_death_frames(tested, peer)
    kinds = [(c.sent, c.kind) for c in classify(frames, tested, peer)]
    assert kinds == [(False, "syn"), (True, "syn"), (False, "ack"), (True, "data"), (False, "ack"),
                     (True, "keepalive-probe"), (False, "probe-reply"),
                     (True, "keepalive-probe"), (True, "keepalive-probe"), (True, "keepalive-probe"), (True, "rst")]
    wire = analyse(frames, tested, peer, fault_ns=reply_ns + 5_000_000)
    assert wire.probes_s == [1.024, 2.048, 3.072] and wire.unanswered_probes == 3 and wire.answered_probes == 0
    assert wire.spacing_s == [1.024, 1.024] and wire.first_probe_s == 1.024
    assert wire.rst_s == 4.096 and wire.peer_rst_s is None
    assert wire.events[0].what.endswith("answered") and wire.events[1].t_s == 0.0
    assert "last segment received" in wire.events[1].what and "RST sent" in wire.events[-1].what
    assert [e.kind for e in wire.events] == [EventKind.ANSWERED_PROBE, EventKind.LAST_SEGMENT] + [
        EventKind.PROBE] * 3 + [EventKind.RST]  # each event's kind is its classification's, never its wording's
    with pytest.raises(FrozenInstanceError):
        wire.rst_s = None  # built whole: the evidence is a value


def test_a_syn_sent_again_is_a_retransmission_on_the_timeline():
    tested, peer = V4
    t0 = 1_700_000_000 * 10**9
    frames = [Frame(t0 + n * 10**9, PACKET_OUTGOING, tcp_frame(tested, peer, 1000, 0, TCP_SYN)) for n in (0, 1, 3)]
    wire = evidence(classify(frames, tested, peer), t0 - 1, "the first SYN")
    assert [e.kind for e in wire.events] == [EventKind.CONNECT, EventKind.RETRANSMISSION, EventKind.RETRANSMISSION]


def test_window_probes_and_retransmissions_are_told_apart():
    tested, peer = V4
    t = 10**18
    frames = [
        Frame(t, PACKET_OUTGOING, tcp_frame(tested, peer, 100, 1, TCP_ACK, b"a" * 50)),  # snd_nxt 150
        Frame(t + 1, PACKET_HOST, tcp_frame(peer, tested, 1, 150, TCP_ACK, window=0)),  # window closed
        Frame(t + 2, PACKET_OUTGOING, tcp_frame(tested, peer, 149, 1, TCP_ACK)),  # persist timer probe
        Frame(t + 3, PACKET_OUTGOING, tcp_frame(tested, peer, 150, 1, TCP_ACK, b"b" * 20)),  # new data, snd_nxt 170
        Frame(t + 4, PACKET_OUTGOING, tcp_frame(tested, peer, 150, 1, TCP_ACK, b"b" * 20)),  # again: retransmission
        Frame(t + 5, PACKET_OUTGOING, tcp_frame(tested, peer, 170, 1, TCP_FIN | TCP_ACK)),
    ]
    assert [c.kind for c in classify(frames, tested, peer)] == [
        "data", "ack", "zero-window-probe", "data", "retransmission", "fin"]


def test_a_capture_that_starts_mid_connection_learns_snd_nxt_from_the_peers_ack():
    tested, peer = V6
    frames = [Frame(1, PACKET_HOST, tcp_frame(peer, tested, 9, 500, TCP_ACK)),
              Frame(2, PACKET_OUTGOING, tcp_frame(tested, peer, 499, 9, TCP_ACK))]
    assert [c.kind for c in classify(frames, tested, peer)] == ["ack", "keepalive-probe"]


# -- pcap ---------------------------------------------------------------------------------------------


def test_pcap_round_trip(tmp_path):
    frames, _ = keepalive_death_frames(*V6)
    path = write_pcap(str(tmp_path / "sub" / "x.pcap"), frames)
    back = read_pcap(path)
    assert [(f.ts_ns, f.data) for f in back] == [(f.ts_ns, f.data) for f in frames]
    assert pcap_bytes(frames)[:4] == b"\x4d\x3c\xb2\xa1"  # nanosecond magic, little-endian


@needs_tcpdump
def test_tcpdump_reads_our_pcap(tmp_path):
    frames, _ = keepalive_death_frames(*V4)
    path = write_pcap(str(tmp_path / "x.pcap"), frames)
    done = subprocess.run(["tcpdump", "-nr", path], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(frames)
    assert "198.18.0.1.4242 > 198.18.0.2.50000: Flags [R.]" in lines[-1]


# -- in a lab -------------------------------------------------------------------------------------------

BLACKHOLE = [Scenario(KeepaliveSettings(1, 1, 3), family, "blackhole") for family in ("ipv4", "ipv6")]
LINK_DOWN = Scenario(KeepaliveSettings(1, 1, 3), "ipv4", "link-down")


def tcpdump_lines(path):
    done = subprocess.run(["tcpdump", "-nr", path], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@needs_root
@pytest.mark.parametrize("scenario", BLACKHOLE, ids=lambda s: s.id)
def test_blackhole_probes_are_counted_and_spaced_on_the_wire(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    k, kernel = scenario.keepalive, kernel_info()
    wire = result.wire
    assert wire is not None and wire.visible, result.explain()
    assert wire.drops == 0, result.explain()
    assert wire.unanswered_probes == k.cnt == result.probes, result.explain()
    assert len(wire.spacing_s) == k.cnt - 1
    # kernel/time/timer.c rounds a timer up by at most 12.5 % of its delay (the wheel's levels are 8x apart);
    # one jiffy either way covers the jiffies clock against the tap's nanoseconds.
    for gap in wire.spacing_s:
        assert k.intvl - kernel.jiffy_s <= gap <= k.intvl * 1.125 + kernel.jiffy_s, result.explain()
    assert k.idle - kernel.jiffy_s <= wire.first_probe_s <= k.idle * 1.125 + 2 * kernel.jiffy_s, result.explain()
    assert wire.rst_s is not None and abs(wire.rst_s - result.measured_s) < 0.010, result.explain()
    assert sum(e.source == "wire" for e in result.timeline) >= k.cnt + 1, result.explain()  # probes and RST, timed
    assert result.verdict == "pass", result.explain()


@needs_root
@needs_tcpdump
@pytest.mark.parametrize("scenario", BLACKHOLE, ids=lambda s: s.id)
def test_blackhole_pcap_is_readable_by_tcpdump(netkit_pool, scenario, tmp_path):
    result = netkit_pool.result(scenario)
    lines = tcpdump_lines(result.write_pcap(str(tmp_path / "blackhole.pcap")))
    server = "198.18.0.1.4242" if scenario.family == "ipv4" else "2001:2::1.4242"
    from_server = [line for line in lines if f"{server} >" in line]
    assert "Flags [S.]" in from_server[0]  # the capture began before the handshake
    assert "Flags [R.]" in from_server[-1]
    assert len(from_server) >= 1 + scenario.keepalive.cnt + 1  # SYN-ACK, ..., the probes, RST


@needs_root
@pytest.mark.parametrize("scenario", [LINK_DOWN], ids=lambda s: s.id)
def test_link_down_says_the_wire_is_blind_and_names_the_counters(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    wire = result.wire
    assert wire is not None and not wire.visible
    assert wire.probes_s == [] and wire.rst_s is None  # discarded before the tap (docs/rules.md)
    assert wire.kernel["tcpi_probes"] == wire.kernel["TcpExt.TCPKeepAlive"] == 3
    assert wire.kernel["TcpExt.TCPAbortOnTimeout"] == 1
    assert "qdisc" in result.wire_summary() and "TcpExt.TCPKeepAlive 3" in result.wire_summary()
    assert result.verdict == "pass", result.explain()


@needs_root
def test_capture_sees_only_its_lab_veth(netkit_lab):
    capture = Capture(netkit_lab.server.namespace, netkit_lab.server.ifindex).start()
    try:
        server, client = netkit_lab.connect("ipv6")
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"
    finally:
        frames = capture.stop()
    assert capture.error is None and capture._sock is None and capture._thread is None
    segments = [s for s in (parse_frame(f.data) for f in frames) if s is not None]
    assert segments and {s.src for s in segments} <= {"2001:2::1", "2001:2::2"}
    assert any(f.pkttype == PACKET_OUTGOING for f in frames) and any(f.pkttype == PACKET_HOST for f in frames)


@needs_root
def test_capture_refuses_a_socket_outside_the_lab(netkit_lab, monkeypatch):
    namespace = netkit_lab.server.namespace
    monkeypatch.setattr(namespace, "socket", lambda *args: socket.socket(*args))  # would be the host's
    with pytest.raises(RuntimeError, match="refusing to capture"):
        Capture(namespace, netkit_lab.server.ifindex).start()


# -- failures write their capture ------------------------------------------------------------------------


@needs_root
@needs_tcpdump
def test_a_failed_scenario_writes_a_pcap_and_a_timeline(monkeypatch):
    """A wrong expectation (one probe more than the kernel sends): the result fails, with its evidence."""
    real_predict = netkit.scenario.context.predict

    def off_by_one(scenario, *args, **kwargs):
        k = scenario.keepalive
        return real_predict(replace(scenario, keepalive=KeepaliveSettings(k.idle, k.intvl, k.cnt + 1)), *args, **kwargs)

    monkeypatch.setattr(netkit.scenario.context, "predict", off_by_one)
    result = run_scenario(Scenario(KeepaliveSettings(1, 1, 1), "ipv4", "blackhole"))
    try:
        message = result.explain()
        assert result.verdict == "fail"
        assert "tcpi_probes = 1 at death, expected 2" in message
        assert "wire: 1 unanswered keepalive probes, expected 2" in message
        assert result.pcap and os.path.exists(result.pcap) and result.pcap in message  # default: a temporary file
        assert "keepalive probe 1 sent" in message and "[wire]" in message and "RST sent" in message
        lines = tcpdump_lines(result.pcap)
        assert any("Flags [R.]" in line for line in lines)
    finally:
        if result.pcap:
            os.unlink(result.pcap)


FAILING_USER_TEST = '''
from netkit import KeepaliveSettings, Scenario

SCENARIO = Scenario(KeepaliveSettings(1, 1, 1), "ipv6", "blackhole")

def test_dies_within_a_wrong_window(netkit_pool):
    result = netkit_pool.result(SCENARIO)
    assert result.measured_s < 1.5, result.explain()   # wrong: the kernel's rule says 2 s
'''


@needs_root
@needs_tcpdump
def test_failing_test_reports_the_pcap_in_the_configured_directory(pytester, tmp_path):
    pytester.makepyfile(FAILING_USER_TEST)
    pcaps = tmp_path / "pcaps"
    result = pytester.runpytest_subprocess("--netkit-pcap-dir", str(pcaps), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    written = sorted(pcaps.glob("*.pcap"))
    assert len(written) == 1, out
    assert "netkit: packet captures" in out and str(written[0]) in out
    assert "ipv6-idle-blackhole-1/1/1 (pass)" in out  # the scenario itself passed; the test's expectation did not
    assert "keepalive probe 1 sent" in out and "[wire]" in out  # the timeline, in the assertion message
    lines = tcpdump_lines(str(written[0]))
    assert any("Flags [R.]" in line for line in lines)


def test_pcap_dir_precedence_and_bad_values(pytester, monkeypatch, tmp_path):
    pytester.makepyfile("def test_family(netkit_family): pass")  # a netkit test: the header line shows the options
    pytester.makeini(f"[pytest]\nnetkit_pcap_dir = {tmp_path / 'from-ini'}\n")
    assert f"pcap: {tmp_path / 'from-ini'}" in pytester.runpytest_subprocess().stdout.str()
    monkeypatch.setenv("NETKIT_PCAP_DIR", str(tmp_path / "from-env"))
    assert f"pcap: {tmp_path / 'from-env'}" in pytester.runpytest_subprocess().stdout.str()
    out = pytester.runpytest_subprocess("--netkit-pcap-dir", str(tmp_path / "from-option")).stdout.str()
    assert f"pcap: {tmp_path / 'from-option'}" in out
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv("NETKIT_PCAP_DIR", str(a_file))
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    assert f"Invalid pcap directory '{a_file}' from NETKIT_PCAP_DIR" in result.stderr.str()


@needs_root
@needs_tcpdump
def test_demo_writes_the_pcap_it_was_asked_for(tmp_path):
    path = tmp_path / "demo.pcap"
    done = subprocess.run([sys.executable, "-m", "netkit.cli", "demo", "--cnt", "1", "--fault", "blackhole",
                           "--pcap", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"pcap: {path}" in done.stdout
    assert "on the wire" in done.stdout and "keepalive probe 1 sent" in done.stdout
    assert any("Flags [R.]" in line for line in tcpdump_lines(str(path)))
