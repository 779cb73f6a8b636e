"""Every way a connection dies: faults x connection states x settings x families, each against its kernel rule.

Cells netkit has no defensible rule for (NotModelled) and faults this machine
lacks (FeatureMissing) are skipped with the reason, never silently absent.

All scenarios here are parametrized, so the plugin's pool starts them all at
once with the rest of the session's (see netkit_pool).
"""

import pytest

from netkit.gate import matrix
from netkit.keepalive import KERNEL_DEFAULTS
from netkit.lab.namespaces import Namespace
from netkit.scenario import SYSCTLS

ALL = matrix.unique(matrix.FAULTS + matrix.USER_TIMEOUT + matrix.SYSCTL + matrix.CLIENT_VIEW + matrix.UNACKED
                   + matrix.ZERO_WINDOW + matrix.HANDSHAKE)  # the gate's cells: one definition, two users


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.id)
def test_connection_dies_as_the_kernel_rule_says(netkit_pool, scenario):
    result = netkit_pool.result(scenario)
    assert result.measured_s is not None, result.explain()
    assert result.error == result.prediction.expected_error, result.explain()
    assert result.prediction.matches(result.measured_s, result.count), result.explain()
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


def _handshake(state, fault, retries, ut=None, via="socket"):
    return [s for s in matrix.HANDSHAKE if (s.state, s.fault, s.syn_retries, s.keepalive.user_timeout_ms,
                                              s.keepalive_via) == (state, fault, retries, ut, via)]


@pytest.mark.parametrize("pair", list(zip(_handshake("syn-sent", "blackhole", 1),
                                          _handshake("syn-sent", "blackhole", 1, 10000))), ids=lambda p: p[0].family)
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
