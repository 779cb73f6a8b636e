"""Every way a connection dies: faults x connection states x settings x families, each against its kernel rule.

Cells netkit has no defensible rule for (NotModelled) and faults this machine
lacks (FeatureMissing) are skipped with the reason, never silently absent.

All scenarios here are parametrized, so the plugin's pool starts them all at
once with the rest of the session's (see netkit_pool).
"""

import os

import pytest

from netkit.gate import matrix
from netkit.keepalive import KERNEL_DEFAULTS
from netkit.lab.namespaces import Namespace
from netkit.scenario import SYSCTLS

ALL = matrix.unique(matrix.FAULTS + matrix.USER_TIMEOUT + matrix.SYSCTL + matrix.CLIENT_VIEW + matrix.UNACKED
                   + matrix.ZERO_WINDOW)  # the gate's cells: one definition, two users


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.id)
def test_connection_dies_as_the_kernel_rule_says(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    assert result.measured_s is not None, result.explain()
    assert result.error == result.prediction.expected_error, result.explain()
    assert result.prediction.matches(result.measured_s, result.count), result.explain()
    if scenario.state == "idle":
        assert result.keepalive_counter == result.probes, result.explain()  # TcpExt agrees with tcpi_probes
    else:
        assert result.keepalive_counter == 0, result.explain()  # keepalive never runs with data outstanding
    if result.prediction.peer_expected_error:
        assert result.peer_error == result.prediction.peer_expected_error, result.explain()
    assert result.verdict == "pass", result.explain()


@pytest.mark.parametrize("scenario", [s for s in matrix.FAULTS if s.fault == "peer-reboot"], ids=lambda s: s.id)
def test_peer_reboot_dies_at_the_first_probe_not_after_cnt(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    k = scenario.keepalive
    assert result.error == "ECONNRESET" and result.probes == 1, result.explain()
    assert result.measured_s < k.idle + k.intvl * k.cnt - k.intvl, result.explain()


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


def test_link_down_pins_the_tested_interfaces_neighbour_timers_in_its_namespace_only(netkit_lab):
    """The data-in-flight rule counts on 3 x 1 s to the neighbour failure (netkit.model.neighbour.PINNED)."""
    from netkit.lab.faults import FaultContext, LinkDown
    from netkit.model.neighbour import PINNED, neighbour_sysctls

    tested = netkit_lab.server
    host = {name: open(f"/proc/sys/net/{table}/neigh/default/{name}").read()
            for table in ("ipv4", "ipv6") for name in PINNED}
    tested.sysctl(f"net.ipv4.neigh.{tested.ifname}.mcast_solicit", 9)  # as if copied from a tuned host
    LinkDown().prepare(FaultContext(netkit_lab, "ipv4", tested, netkit_lab.client, None))  # no peer socket: prepare() needs none
    for family in ("ipv4", "ipv6"):
        for sysctl, value in neighbour_sysctls(family, tested.ifname).items():
            assert tested.sysctl(sysctl) == str(value), sysctl
    assert {name: open(f"/proc/sys/net/{table}/neigh/default/{name}").read()
            for table in ("ipv4", "ipv6") for name in PINNED} == host
    assert not os.path.exists(f"/proc/sys/net/ipv4/neigh/{tested.ifname}")  # the host never sees the lab's device
