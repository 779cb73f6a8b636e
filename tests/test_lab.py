"""The lab: what it builds, that it never touches the host, and that nothing outlives it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hostsnapshot import host_network_state

from netkit import Lab, NameCollision
from netkit.cleanup import kept_namespaces
from netkit.lab.namespaces import Namespace, remove_named
from netkit.lab.proc import holders
from netkit.privileges import missing_privileges

pytestmark = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))


def wait_until_gone(inodes, pids, timeout=3.0):
    """True once none of ``pids`` refers to any of the namespaces ``inodes``.

    Only the processes that made them are asked: a freed namespace's inode
    number is soon reused by one that another (concurrent) test creates.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(set(holders(i)) & set(pids) for i in inodes):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_lab_connects_server_and_client(family):
    with Lab() as lab:
        server, client = lab.connect(family)
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"
        assert server.getpeername()[0] == lab.client.address(family)


def test_veth_ends_get_distinct_ifindexes_and_nk_names():
    with Lab() as lab:
        assert lab.server.ifindex != lab.client.ifindex  # docs/rules.md, "Linkwatch and the ifindex trap"
        for name in (lab.server.ifname, lab.client.ifname, lab.server.namespace.name, lab.client.namespace.name):
            assert name.startswith("nk")
        assert len(lab.server.ifname) <= 15


def test_host_namespace_is_unchanged_and_nothing_outlives_the_lab():
    before = host_network_state()
    with Lab() as lab:
        inodes = [lab.server.namespace.inode, lab.client.namespace.inode]
        lab.connect("ipv6")
        assert holders(inodes[0]) == [os.getpid()]
        assert host_network_state() == before
    assert lab.server.namespace.fd == -1 and lab.client.namespace.fd == -1
    assert wait_until_gone(inodes, [os.getpid()])
    assert host_network_state() == before
    assert not [n for n in kept_namespaces() if n.startswith(lab.name)]


def test_teardown_runs_when_the_test_body_raises():
    with pytest.raises(KeyboardInterrupt):
        with Lab() as lab:
            inodes = [lab.server.namespace.inode, lab.client.namespace.inode]
            raise KeyboardInterrupt
    assert wait_until_gone(inodes, [os.getpid()])


def test_program_runs_inside_the_lab_namespace():
    with Lab() as lab:
        proc = lab.client.namespace.popen(["cat", "/proc/net/dev"], stdout=subprocess.PIPE, text=True)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert lab.client.ifname in out and lab.server.ifname not in out


def test_keep_names_namespaces_for_ip_netns_exec_and_refuses_collisions():
    with Lab() as lab:
        names = lab.keep()
    try:
        out = subprocess.run(["ip", "netns", "exec", names[0], "ip", "-br", "addr"], capture_output=True, text=True)
        assert "198.18.0.1/24" in out.stdout
        clash = Namespace.create(names[0])
        try:
            with pytest.raises(NameCollision, match="netkit cleanup"):
                clash.keep()
        finally:
            clash.close()
    finally:
        for name in names:
            remove_named(name)
    assert not set(names) & set(kept_namespaces())


HOLD_A_LAB = textwrap.dedent("""
    import os, signal, sys, time
    from netkit import Lab
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if our runner was started with SIGINT ignored
    with Lab() as lab:
        child = lab.server.namespace.popen(["sleep", "60"])
        print(lab.server.namespace.inode, lab.client.namespace.inode, child.pid, flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_a_killed_run_leaves_nothing_behind(sig):
    """SIGKILL skips all teardown: fd-held namespaces and pdeathsig must still clean up."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_A_LAB], stdout=subprocess.PIPE, text=True)
    try:
        server_ns, client_ns, child = map(int, proc.stdout.readline().split())
        assert holders(server_ns)
        proc.send_signal(sig)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert wait_until_gone([server_ns, client_ns], [proc.pid, child]), "the dead run or its program still holds a lab namespace"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}"):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}"), "the program started in the lab outlived its netkit process"


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_the_zero_window_fill_ends_with_the_peers_window_at_0_and_nagle_as_it_was(family):
    """The zero-window state is reached only when the peer advertises 0 (tcpi_snd_wnd), not merely when all is
    acknowledged: on Debian 6.1 the fill used to stop at a 24-byte window that the persist timer then sent as data."""
    import socket
    import threading

    from netkit.lab.tcpinfo import peer_window, tcp_info
    from netkit.scenario.observe import fill_until_zero_window

    with Lab() as lab:
        server, _client = lab.connect(family, rcvbuf={"client": 4096})
        assert peer_window(server) > 0
        fill_until_zero_window(server, threading.Event())
        assert peer_window(server) == 0 and tcp_info(server).unacked == 0
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert server.getblocking()
