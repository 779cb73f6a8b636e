"""sock_diag in a lab namespace: every timer kind, and never the host's sockets."""

import threading

import pytest
from conftest import wait_for

from netkit.keepalive import KeepaliveSettings
from netkit.lab import Lab, diag, proc
from netkit.privileges import missing_privileges

pytestmark = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))


def _connection(lab, sock, side="server"):
    local, remote = sock.getsockname()[:2], sock.getpeername()[:2]
    return diag.find_connection(diag.tcp_sockets(getattr(lab, side).namespace), local, remote)


def test_keepalive_timer_and_tcp_info_of_a_connection():
    with Lab() as lab:
        server, client = lab.connect("ipv4")
        KeepaliveSettings(5, 2, 4).apply(server)
        found = _connection(lab, server)
        assert found is not None and found.state == "ESTABLISHED"
        assert found.timer == "keepalive" and found.probes_out == 0
        assert 4800 <= found.expires_ms <= 5000
        assert found.info is not None and found.info.state == "ESTABLISHED" and found.info.probes == 0
        assert proc.owners([found.inode])[found.inode]  # this process holds it
        listening = diag.listeners(lab.server.namespace, 4242)
        assert [s.local for s in listening] == [("198.18.0.1", 4242)]


def test_each_namespace_shows_only_its_own_sockets():
    with Lab() as lab:
        lab.connect("ipv6")
        assert {s.state for s in diag.tcp_sockets(lab.server.namespace)} == {"LISTEN", "ESTABLISHED"}
        assert {s.state for s in diag.tcp_sockets(lab.client.namespace)} == {"ESTABLISHED"}
        with pytest.raises(diag.WrongNamespace):  # the host's thread: refused, never read
            diag._open_here(lab.server.namespace)


def test_retransmit_and_time_wait_timers():
    with Lab() as lab:
        server, client = lab.connect("ipv4")
        lab.client.set_link("down")
        server.send(b"x" * 100)
        found = wait_for(lambda: (s := _connection(lab, server)).retrans >= 1 and s, timeout=3,
                         what="the first RTO (~200 ms) to fire")
        assert found.timer == "retransmit" and found.retrans >= 1
        assert found.info.unacked >= 1
    with Lab() as lab:
        server, client = lab.connect("ipv4")
        local, remote = client.getsockname(), client.getpeername()
        client.close()  # active close: the client's end ends in TIME_WAIT once the server closes too
        server.close()
        found = wait_for(lambda: (s := diag.find_connection(diag.tcp_sockets(lab.client.namespace), local, remote))
                         and s.state == "TIME_WAIT" and s, timeout=2, what="TIME_WAIT")
        assert found.state == "TIME_WAIT" and found.timer == "time-wait" and found.info is None


def test_a_diag_watch_looks_up_in_its_lab_namespace_from_any_thread(netkit_lab):
    """The SYN-RECV observer's lookups: exact (request sockets too), in the lab's namespace whatever thread asks.

    (pyroute2's DiagSocket, made inside the namespace but used from another thread, asked the host.)
    """
    server, client = netkit_lab.connect("ipv4")
    local, remote = server.getsockname()[:2], client.getsockname()[:2]
    watch = diag.DiagWatch(netkit_lab.server.namespace)
    try:
        found = []
        thread = threading.Thread(target=lambda: found.append(watch.lookup(local, remote)))
        thread.start()
        thread.join()
        assert found[0].state == "ESTABLISHED" and (found[0].local, found[0].remote) == (local, remote)
        assert watch.lookup(local, (remote[0], remote[1] ^ 1)) is None  # no such connection (the listener is none)
        server.close()
        client.close()
        gone = watch.lookup(local, remote)
        assert gone is None or gone.state == "TIME_WAIT"
    finally:
        watch.close()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_a_diag_watch_lookup_reads_what_a_dump_reads(netkit_lab, family):
    """The exact lookup's own parser (struct inet_diag_msg + INET_DIAG_INFO) against pyroute2's parse of a dump."""
    server, client = netkit_lab.connect(family)
    KeepaliveSettings(5, 2, 4).apply(client)
    local, remote = client.getsockname()[:2], client.getpeername()[:2]
    watch = diag.DiagWatch(netkit_lab.client.namespace)
    try:
        looked_up = watch.lookup(local, remote)
        dumped = _connection(netkit_lab, client, side="client")
    finally:
        watch.close()
    assert looked_up is not None and dumped is not None
    same = ("family", "state", "local", "remote", "timer", "retrans", "inode", "uid", "rqueue", "wqueue")
    assert {f: getattr(looked_up, f) for f in same} == {f: getattr(dumped, f) for f in same}
    assert looked_up.timer == "keepalive" and abs(looked_up.expires_ms - dumped.expires_ms) <= 20
    assert looked_up.info.state == dumped.info.state == "ESTABLISHED" and looked_up.info.rto_us == dumped.info.rto_us
