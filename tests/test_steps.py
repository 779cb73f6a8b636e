"""The procedures' shared steps and their one builder, on fakes and plain sockets (no root, no lab)."""

import copy
import socket
from types import SimpleNamespace

import pytest

from netkit import KeepaliveSettings, Scenario
from netkit.enums import EventKind
from netkit.errors import KernelRefused
from netkit.evidence.events import SAMPLED, WIRE, Event
from netkit.evidence.wire import WireEvidence
from netkit.keepalive import KEEPALIVE_SYSCTLS, read_keepalive
from netkit.kernel import KernelInfo
from netkit.lab.sysctl import set_sysctl
from netkit.model import keepalive_death
from netkit.scenario.build import Observed, WireView, result_from, wire_evidence
from netkit.scenario.observe import Death, _Samples
from netkit.scenario.steps import enable_keepalive, write_keepalive_sysctls

KERNEL = KernelInfo("test", 250, "test")


class FakeEndpoint:
    """An endpoint whose namespace keeps what is written, except the sysctls it refuses (they keep ``kept``)."""

    def __init__(self, refuses=(), kept="0"):
        self.namespace = SimpleNamespace(name="nk-test-server")
        self.values = {}
        self.refuses, self.kept = refuses, kept

    def sysctl(self, name, value=None):
        if value is not None:
            self.values[name] = self.kept if name in self.refuses else str(value)
        return self.values.get(name, "")


def test_a_sysctl_that_held_is_quiet_and_one_that_did_not_is_kernel_refused_saying_what_to_do():
    ok = FakeEndpoint()
    set_sysctl(ok, "net.ipv4.tcp_retries2", 3)
    assert ok.values == {"net.ipv4.tcp_retries2": "3"}
    with pytest.raises(KernelRefused) as refused:
        set_sysctl(FakeEndpoint(refuses={"net.ipv4.tcp_retries2"}, kept="15"), "net.ipv4.tcp_retries2", 3)
    message = str(refused.value)
    assert "net.ipv4.tcp_retries2 in nk-test-server holds 15 after netkit wrote 3" in message
    assert "choose a value" in message


def test_keepalive_from_the_namespace_writes_its_three_sysctls_and_from_the_socket_none():
    k = KeepaliveSettings(3, 2, 4)
    endpoint = FakeEndpoint()
    write_keepalive_sysctls(Scenario(k, keepalive_via="sysctl"), endpoint)
    assert endpoint.values == {KEEPALIVE_SYSCTLS["idle"]: "3", KEEPALIVE_SYSCTLS["intvl"]: "2", KEEPALIVE_SYSCTLS["cnt"]: "4"}
    untouched = FakeEndpoint()
    write_keepalive_sysctls(Scenario(k), untouched)
    assert untouched.values == {}


def test_keepalive_from_the_namespace_is_read_back_on_the_socket():
    """The socket inherits its namespace's values: a scenario that wanted others is refused, naming the way out."""
    with socket.socket() as probe:
        host = read_keepalive(probe)
    same = KeepaliveSettings(host.idle, host.intvl, host.cnt)
    other = KeepaliveSettings(host.idle % 32767 + 1, host.intvl, host.cnt)
    with socket.socket() as sock:
        enable_keepalive(Scenario(same, keepalive_via="sysctl"), sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    with socket.socket() as sock, pytest.raises(KernelRefused, match="keepalive_via='socket'"):
        enable_keepalive(Scenario(other, keepalive_via="sysctl"), sock)


def test_the_observers_samples_carry_their_kind():
    samples = _Samples()
    samples.add(1, 0, 1.0)
    samples.add(1, 1, 1.5)
    assert [(e.kind, e.source) for e in samples.events] == [(EventKind.PROBE, SAMPLED),
                                                            (EventKind.RETRANSMISSION, SAMPLED)]


def _observed(scenario, events=()):
    prediction = keepalive_death(scenario.keepalive, KERNEL)
    death = Death(4.1, "ETIMEDOUT", 3, 0, events=())
    return Observed(scenario, KERNEL, prediction, death, {"TCPKeepAlive": 3}, tuple(events), "lab")


class FakeCapture:
    label, drops, error, frames = "nk-s in nk-test", 0, None, [object(), object()]

    def pcap(self):
        return b"pcap"


ANALYSED = WireEvidence(anchor="t0", probes_s=[1.0, 2.0, 3.0], unanswered_probes=3, rst_s=4.01,
                        events=[Event(0.0, "reply received = last segment received", WIRE, EventKind.PROBE_REPLY),
                                Event(4.01, "RST sent by the tested side", WIRE, EventKind.RST)])


def _view():
    analysed = copy.deepcopy(ANALYSED)
    return analysed, WireView(lambda frames: (analysed, len(frames)), {"tcpi_probes": 3}, 3, "probes",
                              "probe after the fault", " after the fault")


def test_the_wire_is_built_complete_and_the_analysis_is_left_as_it_was():
    analysed, view = _view()
    wire, pcap = wire_evidence(Scenario(KeepaliveSettings(1, 1, 3), fault="blackhole"), FakeCapture(), None, view)
    assert analysed == ANALYSED  # a new record, not the analysis changed in place
    assert wire.visible and wire.note == "every probe after the fault passed the tested veth's tap"
    assert (wire.interface, wire.frames, wire.kernel, pcap) == ("nk-s in nk-test", 2, {"tcpi_probes": 3}, b"pcap")
    blind, _ = wire_evidence(Scenario(KeepaliveSettings(1, 1, 3), fault="link-down"), FakeCapture(), None, _view()[1])
    assert not blind.visible and "(2 captured after the fault, the kernel counted 3)" in blind.note
    none, nothing = wire_evidence(Scenario(KeepaliveSettings(1, 1, 3)), None, "no packet capture (x)", view)
    assert (none.visible, none.note, none.error, nothing) == (False, "no packet capture (x)", "no packet capture (x)",
                                                              b"")


def test_the_result_is_built_once_with_the_wire_merged_and_every_event_keeps_its_kind():
    scenario = Scenario(KeepaliveSettings(1, 1, 3), fault="blackhole")
    events = [Event(0.0, "last segment received", kind=EventKind.LAST_SEGMENT),
              Event(0.01, "fault: x", kind=EventKind.FAULT),
              Event(1.0, "probe 1 sent, unanswered (tcpi_probes)", SAMPLED, EventKind.PROBE),
              Event(4.1, "connection dead: ETIMEDOUT", kind=EventKind.DEATH)]
    observed = _observed(scenario, events)
    wire, pcap = wire_evidence(scenario, FakeCapture(), None, _view()[1])
    result = result_from(observed, wire, pcap)
    assert [e.kind for e in result.timeline] == [EventKind.PROBE_REPLY, EventKind.FAULT, EventKind.RST,
                                                 EventKind.DEATH]
    assert result.wire is wire and result.count == 3 and result.measured_s == 4.1
