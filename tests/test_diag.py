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
        thread = threading.Thread(target=lambda: found.append(watch.find(local, remote)))
        thread.start()
        thread.join()
        assert found == [("ESTABLISHED", 0)] == [watch.find(local, remote)]
        assert watch.find(local, (remote[0], remote[1] ^ 1)) in (None, ("LISTEN", 0))  # no such connection
        server.close()
        client.close()
        assert watch.find(local, remote) in (None, ("TIME_WAIT", 0))
    finally:
        watch.close()
