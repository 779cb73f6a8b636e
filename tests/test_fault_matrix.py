"""Every way a connection dies: faults x connection states x settings x families, each against its kernel rule.

Cells netkit has no defensible rule for (NotModelled) and faults this machine
lacks (FeatureMissing) are skipped with the reason, never silently absent.

All scenarios here are parametrized, so the plugin's pool starts them all at
once with the rest of the session's (see netkit_pool).
"""

import os
import socket
import time

import pytest
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from netkit.evidence.death import fits
from netkit.gate import matrix
from netkit.keepalive import KERNEL_DEFAULTS
from netkit.kernel import kernel_info
from netkit.lab.faults import FaultContext, LinkDown
from netkit.lab.namespaces import Namespace
from netkit.model.neighbour import PINNED, neighbour_failure_jiffies, neighbour_sysctls
from netkit.scenario import SYSCTLS
from netkit.scenario.observe import prompt_observer

# the gate's cells: one definition, two users
# (an idle connection whose own qdisc refuses its probes does not die: tests/test_local_drop.py watches it live)
ALL = [s for s in matrix.unique(matrix.FAULTS + matrix.USER_TIMEOUT + matrix.SYSCTL + matrix.CLIENT_VIEW + matrix.UNACKED
                                + matrix.ZERO_WINDOW + matrix.RETRACTED_WINDOW + matrix.RTO_BOUNDS + matrix.HANDSHAKE
                                + matrix.LOCAL_DROP)
       if (s.state, s.fault) != ("idle", "local-drop")]


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.id)
def test_connection_dies_as_the_kernel_rule_says(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    assert result.death_s is not None, result.explain()  # the time judged: the kernel's RST on the wire where seen
    assert result.error == result.prediction.expected_error, result.explain()
    assert fits(result.prediction.outcomes(), result.death_s, result.count), result.explain()
    if scenario.state == "idle":
        assert result.keepalive_counter == result.probes, result.explain()  # TcpExt agrees with tcpi_probes
    elif scenario.state not in ("syn-sent", "syn-recv"):  # (keepalive is never on before the handshake ends)
        assert result.keepalive_counter == 0, result.explain()  # keepalive never runs with data outstanding
    if result.prediction.peer_expected_error:
        assert result.peer_error == result.prediction.peer_expected_error, result.explain()
    assert result.verdict == "pass", result.explain()


@pytest.mark.parametrize("scenario", [s for s in matrix.FAULTS if s.fault == "peer-reboot"], ids=lambda s: s.id)
def test_peer_reboot_dies_at_the_first_probe_not_after_cnt(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    k = scenario.keepalive
    assert result.error == "ECONNRESET" and result.probes == 1, result.explain()
    assert result.death_s is not None and result.death_s < k.idle + k.intvl * k.cnt - k.intvl, result.explain()


@pytest.mark.parametrize("scenario", [s for s in matrix.FAULTS if s.fault == "one-way"], ids=lambda s: s.id)
def test_one_way_kills_both_ends_at_the_same_moment(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    assert result.error == "ETIMEDOUT" and result.peer_error == "ECONNRESET", result.explain()
    # The final RST crosses the veth in microseconds; both deaths are seen by one observer that wakes on
    # either socket, so they land within a few ms.  50 ms is far below any timer interval (>= 1 s).
    assert abs(result.peer_lag_s) <= 0.050, result.explain()


def test_a_fresh_namespace_starts_at_kernel_defaults_not_its_creators_values(netkit_lab):
    """tcp_sk_init() sets the keepalive sysctls from constants in every new namespace."""
    for name, sysctl in SYSCTLS.items():
        netkit_lab.server.sysctl(sysctl, 1 if name != "cnt" else 3)

    def read_in_a_namespace_made_from_here():
        inner = Namespace.create("nk-probe")
        try:
            return {name: int(inner.run(lambda p=sysctl: open("/proc/sys/" + p.replace(".", "/")).read()))
                    for name, sysctl in SYSCTLS.items()}
        finally:
            inner.close()

    assert netkit_lab.server.namespace.run(read_in_a_namespace_made_from_here) == KERNEL_DEFAULTS
    assert netkit_lab.client.sysctl(SYSCTLS["idle"]) == str(KERNEL_DEFAULTS["idle"])


def test_namespace_sysctls_never_reach_the_host(netkit_lab):
    host = {name: open("/proc/sys/" + sysctl.replace(".", "/")).read() for name, sysctl in SYSCTLS.items()}
    for sysctl in SYSCTLS.values():
        assert netkit_lab.server.sysctl(sysctl, 5) == "5"
    assert {n: open("/proc/sys/" + s.replace(".", "/")).read() for n, s in SYSCTLS.items()} == host


def _handshake(state, fault, retries, ut=None, via="socket"):
    return [s for s in matrix.HANDSHAKE if (s.state, s.fault, s.syn_retries, s.keepalive.user_timeout_ms,
                                              s.keepalive_via) == (state, fault, retries, ut, via)]


@pytest.mark.parametrize("pair", list(zip(_handshake("syn-sent", "blackhole", 1),
                                          _handshake("syn-sent", "blackhole", 1, 10000), strict=True)), ids=lambda p: p[0].family)
def test_a_user_timeout_longer_than_the_syn_budget_makes_connect_wait_longer(netkit_pool, pair):
    """TCP_USER_TIMEOUT replaces tcp_model_timeout's budget (3 s for one retry): the count (1 + 4 linear) ends it."""
    plain, long_ut = (netkit_pool.result(s) for s in pair)
    assert plain.error == long_ut.error == "ETIMEDOUT", plain.explain() + long_ut.explain()
    assert long_ut.death_s > plain.prediction.window_s[1] + 3, long_ut.explain()
    assert (plain.count, long_ut.count) == (2, 5), plain.explain() + long_ut.explain()


@pytest.mark.parametrize("scenario", _handshake("syn-sent", "peer-reboot", 2), ids=lambda s: s.id)
def test_a_refused_connect_is_timed_by_the_peer_s_rst(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    assert result.error == "ECONNREFUSED" and result.wire.peer_rst_s is not None, result.explain()
    assert result.kernel_death_s == result.wire.peer_rst_s < 0.008, result.explain()


@pytest.mark.parametrize("scenario", [s for s in matrix.HANDSHAKE if s.state == "syn-recv"], ids=lambda s: s.id)
def test_a_vanished_client_s_request_is_dropped_silently(netkit_pool, scenario):
    """Only SYN-ACKs leave the listener, one more than the retries' retransmissions; nothing answers them."""
    result = netkit_pool.result(scenario)
    w = result.wire
    assert w.visible and w.peer_rst_s is None and w.rst_s is None, result.explain()
    assert len(w.retransmissions_s) == scenario.syn_retries == result.count, result.explain()
    assert result.error == "none" and result.verdict == "pass", result.explain()


def test_link_down_pins_the_tested_interfaces_neighbour_timers_in_its_namespace_only(netkit_lab):
    """The data-in-flight rule counts on 3 x 1 s to the neighbour failure (netkit.model.neighbour.PINNED)."""
    tested = netkit_lab.server
    # The neigh/default tables exist in the initial namespace only (registered once at boot): in a container's
    # own namespace there is nothing of the host's to compare
    host = {path: open(path).read() for table in ("ipv4", "ipv6") for name in PINNED
            if os.path.exists(path := f"/proc/sys/net/{table}/neigh/default/{name}")}
    tested.sysctl(f"net.ipv4.neigh.{tested.ifname}.mcast_solicit", 9)  # as if copied from a tuned host
    LinkDown().prepare(FaultContext(netkit_lab, "ipv4", tested, netkit_lab.client, None))  # no peer socket: prepare() needs none
    for family in ("ipv4", "ipv6"):
        for sysctl, value in neighbour_sysctls(family, tested.ifname).items():
            assert tested.sysctl(sysctl) == str(value), sysctl
    assert {path: open(path).read() for path in host} == host
    assert not os.path.exists(f"/proc/sys/net/ipv4/neigh/{tested.ifname}")  # the host never sees the lab's device


RTMGRP_NEIGH = 0x4
NUD_FAILED = 0x20


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_data_into_a_dead_link_fails_the_neighbour_entry_when_the_model_says(netkit_lab, family):
    """The premise of netkit.model.neighbour: the entry the send creates fails 3 x 1 s later, on the wheel's grid.

    Watched as the kernel announces it (RTM_NEWNEIGH, state NUD_FAILED, on a
    netlink socket in the tested namespace), timed from the send.
    """
    hz = kernel_info().hz
    earliest, latest = neighbour_failure_jiffies(hz)
    tested = netkit_lab.server
    server, client = netkit_lab.connect(family)
    fault, ctx = LinkDown(), FaultContext(netkit_lab, family, tested, netkit_lab.client, client)
    fault.prepare(ctx)
    events = tested.namespace.run(socket.socket, socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
    events.bind((0, RTMGRP_NEIGH))
    events.settimeout(latest / hz + 2)
    fault.apply(ctx)
    sent = time.monotonic()
    server.send(b"x" * 100)
    peer = netkit_lab.client.address(family)
    failed_at, seen = None, []
    with prompt_observer():  # SCHED_FIFO, as a scenario's observer: the time read is the announcement's
        while failed_at is None:
            data = events.recv(65536)
            at = time.monotonic() - sent
            for msg in MarshalRtnl().parse(data):
                seen.append((round(at, 3), msg.get_attr("NDA_DST"), msg.get("state")))
                if msg.get_attr("NDA_DST") == peer and msg.get("state") == NUD_FAILED:
                    failed_at = at
    events.close()
    assert earliest / hz - 1 / hz <= failed_at <= latest / hz + 2 / hz, (failed_at, earliest / hz, latest / hz, seen)
