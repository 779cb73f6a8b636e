"""The middlebox that forgets: the routed lab, its rules (netkit.model.middlebox) and the gate's routed cells.

The model and the judging are tested without root; the lab and the
scenarios need root, nft and conntrack (skipped with the reason otherwise).
The matrix cells are parametrized, so the plugin's pool starts them all at
once with the rest of the session's.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import time

import pytest
from hostsnapshot import host_network_state

from netkit import KeepaliveSettings, Scenario
from netkit.cleanup import cleanup, kept_namespaces
from netkit.errors import NotModelled, SettingError
from netkit.evidence.death import fits
from netkit.evidence.middlebox import ROUTER_LOOKED_LATE, MiddleboxEvidence, forgotten_s, judge_middlebox, jumps_back
from netkit.gate import matrix
from netkit.kernel import KernelInfo
from netkit.lab.faults import MIDDLEBOX_FORGETS
from netkit.lab.proc import holders
from netkit.lab.routed import MiddleboxConfig, RoutedLab
from netkit.lab.tcpinfo import tcp_info
from netkit.model.middlebox import middlebox_case, middlebox_prediction, survival_too_close
from netkit.model.predict import predict
from netkit.privileges import missing_privileges
from netkit.scenario.observe import socket_error

HZ250 = KernelInfo("test", 250, "assumed")
needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))
needs_nft = pytest.mark.skipif(MIDDLEBOX_FORGETS.unsupported_reason() is not None,
                               reason=str(MIDDLEBOX_FORGETS.unsupported_reason()))


def routed(k: tuple[int, int, int], timeout: int, action: str = "drop", **kwargs: object) -> Scenario:
    return Scenario(KeepaliveSettings(*k), fault="middlebox-forgets", topology="routed", middlebox_timeout_s=timeout,
                    middlebox=action, **kwargs)  # type: ignore[arg-type]


# -- the rules, as arithmetic -------------------------------------------------------------------------------


def test_which_side_of_the_timeout():
    assert middlebox_case(KeepaliveSettings(2, 2, 3), 3).survives  # type: ignore[union-attr]
    assert not middlebox_case(KeepaliveSettings(3, 1, 2), 2).survives  # type: ignore[union-attr]
    assert "equals" in middlebox_case(KeepaliveSettings(2, 1, 2), 2)  # type: ignore[operator]
    assert "intvl 3 s is not" in middlebox_case(KeepaliveSettings(1, 3, 2), 2)  # type: ignore[operator]


def test_forgotten_and_dropped_is_the_keepalive_rule_from_the_handshake():
    p = predict(routed((3, 1, 2), 2), HZ250)
    assert (p.expected_s, p.expected_count, p.expected_error, p.last_segment) == (5.0, 2, "ETIMEDOUT", "idle")
    assert p.window_s[0] == pytest.approx(4.996) and "tcp_new" in p.rule and "nf_ct_is_expired" in p.rule


def test_forgotten_and_rejected_is_a_reset_at_the_first_probe():
    p = predict(routed((3, 1, 2), 2, "reject"), HZ250)
    assert (p.expected_s, p.expected_count, p.expected_error) == (3.0, 1, "ECONNRESET")
    assert "nf_send_reset" in p.rule


def test_kept_alive_is_survival_through_three_timeouts():
    p = predict(routed((2, 2, 3), 3), HZ250)
    assert p.alive_until_s == 9.0 and p.expected_count == 0 and p.expected_error == "none"


def test_a_survival_the_timer_wheel_could_spoil_is_not_modelled():
    k = KeepaliveSettings(2900, 2900, 3)
    assert middlebox_case(k, 3000).survives  # type: ignore[union-attr]
    assert survival_too_close(k, 3000, HZ250) is not None  # a 2900 s timer may run ~12 % late
    assert survival_too_close(KeepaliveSettings(2, 2, 3), 3, HZ250) is None
    with pytest.raises(NotModelled, match="choose a longer timeout"):
        predict(routed((2900, 2900, 3), 3000), HZ250)  # the gate skips it, with the reason
    with pytest.raises(ValueError):
        middlebox_prediction(KeepaliveSettings(2, 2, 3), 2, "drop", HZ250)


def test_the_id_names_the_router():
    assert routed((3, 1, 2), 2, "reject", masquerade=True, side="client").id == (
        "ipv4-idle-middlebox-forgets-3/1/2-client-side-routed-ct2s-reject-masq")
    assert Scenario(KeepaliveSettings(1, 1, 3)).id == "ipv4-idle-link-down-1/1/3"  # the direct lab's ids unchanged


# -- judging the router's evidence --------------------------------------------------------------------------

ENTRY = "ESTABLISHED, 1 s left, id 7"


def test_refreshes_are_the_remaining_timeout_going_up_for_one_entry():
    samples = ((0.0, 0.01, 2, 7), (1.0, 1.01, 1, 7), (2.05, 2.06, 2, 7), (2.5, 2.51, 2, 8), (3.0, 3.01, 1, 8))
    assert jumps_back(samples) == (2.05,)  # the id change is a new entry, not a refresh
    assert forgotten_s(((1.9, 1.91, 0, 7), (1.99, 2.01, None, None))) == (1.9, 2.01)


def _forgot(**changes: object) -> MiddleboxEvidence:
    fields: dict[str, object] = dict(timeout_s=2, action="drop", masquerade=False, entry_at_connect=ENTRY,
                                     samples=((1.9, 1.91, 0, 7), (1.995, 2.01, None, None)), peer_state="ESTABLISHED",
                                     peer_error="none", peer_send="unanswered", invalid=6)
    return MiddleboxEvidence(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_router_forgetting_on_time_passes_and_early_or_late_fails():
    p = predict(routed((3, 1, 2), 2), HZ250)
    assert judge_middlebox(_forgot(), p, HZ250.jiffy_s) == ()
    early = judge_middlebox(_forgot(samples=((1.8, 1.81, 0, 7), (1.9, 1.95, None, None))), p, HZ250.jiffy_s)
    assert early and early[0].early and "EARLY" in str(early[0])
    late = judge_middlebox(_forgot(samples=((2.1, 2.11, 0, 7), (2.2, 2.21, None, None))), p, HZ250.jiffy_s)
    assert late and "still there at 2.100 s" in str(late[0])


def test_no_entry_at_the_connect_fails_unless_it_was_looked_for_past_its_own_timeout():
    p = predict(routed((3, 1, 2), 2), HZ250)
    [untracked] = judge_middlebox(_forgot(entry_at_connect=None, samples=(), looked_up_s=0.004), p, HZ250.jiffy_s)
    assert untracked.rule == "middlebox: conntrack entry" and "does not track it" in str(untracked)
    # two gates of 128 labs at once on 2 CPUs: a dump of the host-wide table took longer than the entry lived
    [late] = judge_middlebox(_forgot(entry_at_connect=None, samples=(), looked_up_s=2.31), p, HZ250.jiffy_s)
    assert late.rule == ROUTER_LOOKED_LATE and "looked up 2.310 s after the handshake" in str(late)


def test_a_picked_up_flow_or_a_peer_that_learnt_fails():
    p = predict(routed((3, 1, 2), 2, "reject"), HZ250)
    failures = judge_middlebox(_forgot(action="reject", entry_after="ESTABLISHED, 1 s left, id 9",
                                       peer_state="CLOSE", peer_error="ECONNRESET", peer_send="unanswered"),
                               p, HZ250.jiffy_s)
    text = " | ".join(map(str, failures))
    assert "nf_conntrack_tcp_loose" in text and "peer was CLOSE" in text and "expected ECONNRESET" in text
    assert "counted 6 invalid packets, expected 4" in text
    p = predict(routed((3, 1, 2), 2), HZ250)
    assert "expected at least 4" in str(judge_middlebox(_forgot(invalid=3), p, HZ250.jiffy_s)[0])


def test_a_survival_needs_the_same_entry_throughout_a_refresh_and_data_both_ways():
    p = predict(routed((2, 2, 3), 3), HZ250)
    kept = ((0.0, 0.01, 2, 7), (1.5, 1.51, 1, 7), (2.1, 2.11, 2, 7), (9.0, 9.01, 1, 7))
    good = MiddleboxEvidence(3, "drop", False, ENTRY, kept, data_after="both ways")
    assert judge_middlebox(good, p, HZ250.jiffy_s) == ()
    gap = MiddleboxEvidence(3, "drop", False, ENTRY, kept[:3] + ((5.0, 5.01, None, None),) + kept[3:],
                            data_after="tested -> peer: TimeoutError timed out")
    text = " | ".join(map(str, judge_middlebox(gap, p, HZ250.jiffy_s)))
    assert "through 2.100 s" in text and "did not carry data" in text
    untracked = MiddleboxEvidence(3, "drop", False, None)
    assert "does not track it" in str(judge_middlebox(untracked, p, HZ250.jiffy_s)[0])


# -- the routed lab -----------------------------------------------------------------------------------------


@needs_root
@needs_nft
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_the_routed_lab_forwards_and_tracks_the_flow(netkit_routed_lab, family):
    lab = netkit_routed_lab
    server, client = lab.connect(family)
    client.sendall(b"ping")
    assert server.recv(4) == b"ping"
    assert server.getpeername()[0] == lab.client.address(family)  # no NAT: the client's own address
    # the handshake crossed the router at once: with DAD on the router's link-locals an IPv6 one took 2 s
    assert tcp_info(client).rtt_us < 100_000 and tcp_info(client).rto_us < 1_000_000
    entry = lab.conntrack_entry(family, (4242, client.getsockname()[1]))
    assert entry is not None and entry.state == "ESTABLISHED" and entry.timeout_s <= 2
    assert lab.router.sysctl("net.netfilter.nf_conntrack_tcp_timeout_established") == "2"
    assert lab.router.sysctl("net.netfilter.nf_conntrack_tcp_loose") == "0"
    for ifname in (lab.server.ifname, lab.client.ifname, lab.router.ifname, lab.router_client_ifname):
        assert ifname.startswith("nk-") and len(ifname) <= 15
    assert lab.router.namespace.name == f"{lab.name}-router" and lab.name.startswith("nk-")
    assert len({lab.server.ifindex, lab.client.ifindex, 9, 10}) == 4  # docs/rules.md, "Linkwatch and the ifindex trap"


@needs_root
@needs_nft
@pytest.mark.parametrize("netkit_middlebox", [MiddleboxConfig(2, "reject", masquerade=True)], ids=["reject-masq"])
def test_masquerade_hides_the_client_behind_the_router(netkit_routed_lab):
    server, client = netkit_routed_lab.connect("ipv6")
    assert server.getpeername()[0] == "2001:2:0:2::fe"  # the router's server-side address


@needs_root
@needs_nft
def test_the_host_is_untouched_and_nothing_outlives_the_routed_lab():
    before = host_network_state()
    with RoutedLab(MiddleboxConfig(2)) as lab:
        inodes = [ep.namespace.inode for ep in (lab.server, lab.client, lab.router)]
        lab.connect("ipv4")
        assert host_network_state() == before
    assert all(ep.namespace.fd == -1 for ep in (lab.server, lab.client, lab.router))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(os.getpid() in holders(i) for i in inodes):
        time.sleep(0.05)
    assert not any(os.getpid() in holders(i) for i in inodes)
    assert host_network_state() == before


KEEP_A_ROUTED_LAB = textwrap.dedent("""
    from netkit.lab.routed import MiddleboxConfig, RoutedLab
    with RoutedLab(MiddleboxConfig(2)) as lab:
        print(" ".join(lab.keep()), flush=True)
""")


@needs_root
@needs_nft
def test_cleanup_removes_a_dead_runs_kept_router_namespace_too():
    done = subprocess.run([sys.executable, "-c", KEEP_A_ROUTED_LAB], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    names = done.stdout.split()
    assert len(names) == 3 and names[2].endswith("-router"), done.stderr
    assert set(names) <= set(kept_namespaces())
    report = cleanup()
    assert set(names) <= set(report.removed)
    assert not set(names) & set(kept_namespaces())


# -- nf_conntrack_tcp_loose: why the middlebox sets it to 0 (measured and explained in netkit.model.middlebox) --


def _watch(sock, seconds):
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP)
    return poller.poll(seconds * 1000)


@needs_root
@needs_nft
@pytest.mark.parametrize("netkit_middlebox", [MiddleboxConfig(2, loose=True)], ids=["loose"])
def test_with_loose_pick_up_a_forgotten_flow_is_re_created_by_the_probe(netkit_routed_lab):
    """tcp_new() picks the flow up from the bare ACK of the probe (sNO -> sES): the connection lives on."""
    lab = netkit_routed_lab
    server, client = lab.connect("ipv4")
    KeepaliveSettings(3, 1, 2).apply(server)
    ports = (4242, client.getsockname()[1])
    first = lab.conntrack_entry("ipv4", ports)
    time.sleep(2.3)
    assert lab.conntrack_entry("ipv4", ports) is None  # forgotten at 2 s
    assert not _watch(server, 1.3)  # the first probe (~3.1 s) has left and been answered
    again = lab.conntrack_entry("ipv4", ports)
    assert first is not None and again is not None and again.id != first.id  # a new entry, picked up mid-stream
    assert not _watch(server, 1.9)  # 5.5 s: the drop rule would have killed it by now (5 s)
    info = tcp_info(server)
    assert info.state == "ESTABLISHED" and info.probes == 0 and socket_error(server) == "none"
    assert lab.invalid_count() == 0


@needs_root
@needs_nft
@pytest.mark.parametrize("netkit_middlebox", [MiddleboxConfig(2, masquerade=True, loose=True)], ids=["loose-masq"])
def test_with_loose_pick_up_and_nat_the_servers_probe_meets_the_routers_own_rst(netkit_routed_lab):
    """The probe is addressed to the router itself: picked up, not DNATed, its TCP stack has no socket: RST."""
    lab = netkit_routed_lab
    server, client = lab.connect("ipv4")
    KeepaliveSettings(3, 1, 2).apply(server)
    assert _watch(server, 4.5)
    assert socket_error(server) == "ECONNRESET" and tcp_info(server).probes <= 1


# -- the gate's routed cells ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", matrix.MIDDLEBOX, ids=lambda s: s.id)
def test_the_middlebox_forgets_as_the_rule_says(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    m, p = result.middlebox, result.prediction
    assert m is not None and m.entry_at_connect is not None, result.explain()
    if p.alive_until_s is not None:
        assert result.measured_s is None and result.error == "none" and result.probes == 0, result.explain()
        assert m.lived_s is not None and m.lived_s >= p.alive_until_s, result.explain()
        assert len(m.refreshes_seen) >= 3 and m.data_after == "both ways", result.explain()
        assert result.keepalive_counter and result.keepalive_counter >= 3, result.explain()  # answered probes
    else:
        assert result.error == p.expected_error and result.count == p.expected_count, result.explain()
        assert fits(p.outcomes(), result.death_s, result.count), result.explain()
        last_seen, missing = m.forgotten
        assert missing is not None and missing < scenario.keepalive.idle, result.explain()
        assert m.entry_after is None and m.peer_state == "ESTABLISHED" and m.peer_error == "none", result.explain()
        assert m.peer_send == ("ECONNRESET" if scenario.middlebox == "reject" else "unanswered"), result.explain()
    assert result.verdict == "pass", result.explain()


def test_every_routed_cell_is_in_the_gate_with_both_families():
    ids = {s.id for s in matrix.BUILTIN}
    for s in matrix.MIDDLEBOX:
        assert s.id in ids and s.id.replace(s.family, "ipv6" if s.family == "ipv4" else "ipv4", 1) in ids
    assert not [s for s in matrix.MIDDLEBOX if isinstance(middlebox_case(s.keepalive, s.middlebox_timeout_s), str)]
    with pytest.raises(SettingError, match="intvl 2 s is not|equals"):
        routed((2, 2, 3), 2)


def test_a_matrix_file_can_describe_a_fleets_nat(tmp_path):
    from netkit.gate.matrix_file import MatrixFileError, load_matrix

    path = tmp_path / "nat.toml"
    path.write_text('[[scenario]]\nkeepalive = [[300, 60, 5], [400, 60, 5]]\ntopology = "routed"\n'
                    'middlebox_timeout_s = 350\nmiddlebox = "reject"\nmasquerade = true\n')
    assert [s.id for s in load_matrix(str(path))] == [
        "ipv4-idle-middlebox-forgets-300/60/5-routed-ct350s-reject-masq",
        "ipv4-idle-middlebox-forgets-400/60/5-routed-ct350s-reject-masq",
    ]
    path.write_text('[[scenario]]\nkeepalive = [350, 60, 5]\ntopology = "routed"\nmiddlebox_timeout_s = 350\n')
    with pytest.raises(MatrixFileError, match="idle 350 s equals the middlebox timeout"):
        load_matrix(str(path))


HOLD_A_ROUTED_LAB = textwrap.dedent("""
    import time
    from netkit.lab.routed import MiddleboxConfig, RoutedLab
    with RoutedLab(MiddleboxConfig(2)) as lab:
        lab.connect("ipv4")
        print(*(ep.namespace.inode for ep in (lab.server, lab.client, lab.router)), flush=True)
        time.sleep(60)
""")


@needs_root
@needs_nft
def test_a_killed_routed_run_leaves_nothing_behind():
    """SIGKILL skips all teardown: the three fd-held namespaces, the router's table with them, must vanish."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_A_ROUTED_LAB], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        inodes = list(map(int, proc.stdout.readline().split()))  # type: ignore[union-attr]
        assert len(inodes) == 3 and all(holders(i) for i in inodes)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        proc.kill()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(proc.pid in holders(i) for i in inodes):
        time.sleep(0.05)
    assert not any(proc.pid in holders(i) for i in inodes)
    assert not [n for n in kept_namespaces() if n.startswith(f"nk-{proc.pid}-")]
