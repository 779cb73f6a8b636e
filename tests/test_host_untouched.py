"""One full ``netkit gate`` run leaves the host alone: nothing in it changes, and no lab traffic reaches it.

"The host" is the network namespace this test runs in and starts the gate from
(the initial one on a normal machine). The module runs the whole built-in gate
once (``python -m netkit.cli gate --json FILE``, ~13 s, a module-scoped
fixture) and proves two things around that one run:

1. The host is untouched. Before and after the run it takes the snapshot of
   ``hostsnapshot.host_snapshot()`` -- links (ifindex, name, flags, mtu, MAC),
   addresses, IPv4 and IPv6 routes of every table, IPv4 and IPv6 rules,
   PERMANENT and proxy neighbour entries, peer namespace ids, qdiscs, the
   nftables ruleset, ``iptables-save`` / ``ip6tables-save`` (comments and
   counters stripped), and every sysctl under /proc/sys/net (tcp_* and all of
   ipv6 among them) read in the host -- and asserts the two are identical.
   Dynamic and NOARP neighbour entries are not compared: the kernel makes, ages
   and garbage-collects them by itself (see ``static_neighbours``). A change
   made and undone during the run escapes a before/after comparison, so the
   host's rtnetlink notifications (links, addresses, routes, rules, qdiscs,
   netconf) are recorded during the run too: none may name an ``nk`` interface
   or a lab address. After the run no new ``nk`` namespace is left under
   /run/netns, no ``nk`` interface exists in the host and no tracefs instance
   of a netkit process that is gone remains.
2. The traffic stays inside. While the gate runs, an AF_PACKET socket
   (SOCK_RAW, ETH_P_ALL) opened in the host sees every frame of every host
   interface; no frame may carry a lab address (198.18.0.0/15, 2001:2::/48) as
   IPv4 or IPv6 source or destination, as ARP sender or target, or as an IPv6
   neighbour discovery target (Ethernet and loopback frames, 802.1Q/802.1ad
   tags skipped; interfaces without a link header parsed from the IP header),
   and no frame may be seen on an ``nk`` interface. The lab's MACs cannot be
   checked: netkit gives its veth ends no address (netkit/lab/lab.py sends no
   IFLA_ADDRESS), so the kernel picks random ones inside the lab namespaces,
   which the host cannot know; the check is on addresses and interface names
   only. The capture proves it works: datagrams the test sends to 127.0.0.1
   and ::1 just before and just after the gate must be seen on ``lo``, parsed
   to their loopback addresses (so the socket read the whole run, and the
   parser reads real frames), and the kernel must report no frame dropped.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from conftest import one_whole_gate_at_a_time
from hostsnapshot import differences, host_snapshot, ip

from netkit.cleanup import kept_namespaces
from netkit.lab import tracefs
from netkit.lab.namespaces import owner_pid, socket_namespace_inode
from netkit.lab.proc import process_alive
from netkit.privileges import effective_capabilities, missing_privileges

needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

LAB_NETWORKS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48"))
CAP_NET_RAW = 13  # the packet socket's capability
GATE_TIMEOUT_S = 90  # the gate takes ~13 s here; pytest's own timeout is 120 s
INIT_NET_INODE = 0xEFFFFFF9  # PROC_NET_INIT_INO: the initial namespace's fixed inode on recent kernels

ETH_P_ALL, ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0003, 0x0800, 0x0806, 0x86DD
VLAN_TAGS = (0x8100, 0x88A8)  # 802.1Q, 802.1ad: 4 bytes each before the real ethertype
ETHERNET_HEADER = {1, 772}  # ARPHRD_ETHER; ARPHRD_LOOPBACK (lo's frames carry a zeroed Ethernet header)
NO_LINK_HEADER = {0xFFFE, 519, 768, 769, 776}  # ARPHRD_NONE (tun, wireguard), RAWIP, TUNNEL (ipip), TUNNEL6, SIT
IPPROTO_ICMPV6 = 58
ND_SOLICIT, ND_ADVERT = 135, 136
PACKET_TYPES = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}
SOL_PACKET, PACKET_STATISTICS = 263, 6
SO_RCVBUFFORCE = 33  # not in Python's socket module
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
# rtnetlink groups: RTMGRP_LINK, TC, IPV4_IFADDR, IPV4_ROUTE, IPV4_RULE, IPV6_IFADDR, IPV6_ROUTE (a bitmask) ...
RTMGRP = 0x1 | 0x8 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400
RTNLGRP_MORE = (19, 24, 25)  # ... and RTNLGRP_IPV6_RULE, IPV4_NETCONF, IPV6_NETCONF (numbers past the bitmask)
RTM_GETLINK, NLM_F_REQUEST, NLM_F_DUMP = 18, 0x1, 0x300
CONTROL_SEQ = 0x6E6B  # the sequence number of the control dump, told apart from notifications by it


def network_addresses(frame: bytes, hatype: int, protocol: int):
    """The network-layer addresses a captured frame carries, as (field, address); None if its link type is not parsed here.

    ``hatype`` and ``protocol`` are the packet socket's sll_hatype and sll_protocol.
    """
    if hatype in ETHERNET_HEADER:
        offset, ethertype = 14, int.from_bytes(frame[12:14], "big")
        while ethertype in VLAN_TAGS and len(frame) >= offset + 4:
            ethertype = int.from_bytes(frame[offset + 2:offset + 4], "big")
            offset += 4
        packet = frame[offset:]
    elif hatype in NO_LINK_HEADER:
        ethertype, packet = protocol, frame
    else:
        return None
    if ethertype == ETH_P_IP and len(packet) >= 20 and packet[0] >> 4 == 4:
        return [("IPv4 src", ipaddress.ip_address(packet[12:16])), ("IPv4 dst", ipaddress.ip_address(packet[16:20]))]
    if ethertype == ETH_P_IPV6 and len(packet) >= 40 and packet[0] >> 4 == 6:
        found = [("IPv6 src", ipaddress.ip_address(packet[8:24])), ("IPv6 dst", ipaddress.ip_address(packet[24:40]))]
        if packet[6] == IPPROTO_ICMPV6 and len(packet) >= 64 and packet[40] in (ND_SOLICIT, ND_ADVERT):
            found.append(("ND target", ipaddress.ip_address(packet[48:64])))  # asking for (or announcing) that address
        return found
    if ethertype == ETH_P_ARP and len(packet) >= 8 and packet[2:4] == b"\x08\x00" and packet[5] == 4:
        hlen = packet[4]
        sender, target = 8 + hlen, 8 + 2 * hlen + 4
        if len(packet) >= target + 4:
            return [("ARP sender", ipaddress.ip_address(packet[sender:sender + 4])),
                    ("ARP target", ipaddress.ip_address(packet[target:target + 4]))]
    return []


def lab_addresses(frame: bytes, hatype: int = 1, protocol: int = 0) -> list[str]:
    """``["IPv4 dst 198.18.0.1", ...]``: the lab addresses in a captured frame (none: [])."""
    found = network_addresses(frame, hatype, protocol) or []
    return [f"{field} {address}" for field, address in found if any(address in net for net in LAB_NETWORKS)]


def names_lab_things(values) -> list[str]:
    """The values among ``values`` that are an nk interface name or a lab address (or prefix)."""
    hits = []
    for value in values:
        if not isinstance(value, str):
            continue
        if value.startswith("nk"):
            hits.append(value)
            continue
        try:
            address = ipaddress.ip_address(value.split("/")[0])
        except ValueError:
            continue
        if any(address in net for net in LAB_NETWORKS):
            hits.append(value)
    return hits


def subscribed_groups(sock: socket.socket) -> int:
    """The multicast groups (the first 32) the kernel has this netlink socket in, from /proc/net/netlink."""
    inode = os.fstat(sock.fileno()).st_ino
    with open("/proc/net/netlink") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[-1]) == inode:
                return int(fields[3], 16)
    raise AssertionError(f"netlink socket inode {inode} is not in /proc/net/netlink")


class HostWatch:
    """Watches the host while the gate runs, from one background thread of this (host) process.

    An AF_PACKET socket (SOCK_RAW, ETH_P_ALL, bound to no interface) sees every
    frame every host interface sends or receives; an rtnetlink socket receives
    the host's link, address, route, rule, qdisc and netconf notifications. Both
    are opened here, so they are in the host namespace, which
    ``socket_namespace_inode`` confirms.
    """

    def __init__(self) -> None:
        self.marker = b"netkit-host-untouched-" + secrets.token_hex(8).encode() + b":"
        self.frames: Counter[str] = Counter()  # interface -> frames seen
        self.unparsed: Counter[str] = Counter()  # "interface (link type N)" -> frames whose link type is not parsed
        self.leaks: list[str] = []  # "eth0 outgoing: IPv4 dst 198.18.0.1"
        self.controls: dict[str, tuple[str, list]] = {}  # control name -> (interface, addresses parsed from its frame)
        self.sent: list[str] = []  # control names sent
        self.notifications: list[bytes] = []  # raw rtnetlink datagrams
        self.stats = (0, 0)  # PACKET_STATISTICS: frames the kernel queued for us (incl. dropped), frames dropped
        self.error: BaseException | None = None
        self._stop = threading.Event()

    def __enter__(self) -> HostWatch:
        self.packets = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.rtnl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            self.packets.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)  # this socket's buffer only
            self.rtnl.bind((0, RTMGRP))
            for group in RTNLGRP_MORE:
                self.rtnl.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            self.namespace = socket_namespace_inode(self.packets)
            self.rtnl_namespace = socket_namespace_inode(self.rtnl)
            self.rtnl_groups = subscribed_groups(self.rtnl)
            for sock in (self.packets, self.rtnl):
                sock.setblocking(False)
        except BaseException:
            self.packets.close()
            self.rtnl.close()
            raise
        self._thread = threading.Thread(target=self._run, name="host-watch", daemon=True)
        self._thread.start()
        # The rtnetlink control: a link dump asked on the same socket must come back through the same reader and parser.
        # (A notification cannot be provoked without changing the host; the subscription is read back instead.)
        self.rtnl.send(struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, CONTROL_SEQ, 0) + bytes(16))
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            deadline = time.monotonic() + 5  # the socket's queue is in order: the last control seen, all was read
            while set(self.sent) - set(self.controls) and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
            packets, drops = struct.unpack("II", self.packets.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.stats = (packets, drops)
            self.packets.close()
            self.rtnl.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.packets, self.rtnl], [], [], 0.1)
                if self.rtnl in ready:
                    self._drain(self.rtnl, lambda data, _: self.notifications.append(data))
                if self.packets in ready:
                    self._drain(self.packets, self._judge)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    @staticmethod
    def _drain(sock: socket.socket, handle) -> None:
        while True:
            try:
                data, address = sock.recvfrom(1 << 16)
            except BlockingIOError:
                return
            handle(data, address)

    def _judge(self, frame: bytes, address) -> None:
        ifname, protocol, pkttype, hatype = address[:4]
        ifname = ifname or "(an interface gone before the frame was read)"
        self.frames[ifname] += 1
        found = network_addresses(frame, hatype, protocol)
        if found is None:
            self.unparsed[f"{ifname} (link type {hatype})"] += 1
            return
        if self.marker in frame:
            name = frame[frame.index(self.marker) + len(self.marker):].split(b"|")[0].decode()
            self.controls.setdefault(name, (ifname, [str(a) for _, a in found]))
        hits = lab_addresses(frame, hatype, protocol)
        if hits:
            self.leaks.append(f"{ifname} {PACKET_TYPES.get(pkttype, pkttype)}: {', '.join(hits)}; frame {frame[:64].hex()}")

    def send_controls(self, when: str) -> None:
        """UDP datagrams to 127.0.0.1 and ::1 (when the host has it) that the capture must see on lo."""
        for family, loopback in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            name = f"{when}-{loopback}"
            try:
                with socket.socket(family, socket.SOCK_DGRAM) as receiver, socket.socket(family, socket.SOCK_DGRAM) as s:
                    receiver.bind((loopback, 0))
                    s.sendto(self.marker + name.encode() + b"|", receiver.getsockname())
            except OSError:
                if family == socket.AF_INET:
                    raise
                continue  # no IPv6 on this host's lo
            self.sent.append(name)

    def _messages(self, control: bool) -> list[tuple[str, list]]:
        """The rtnetlink messages received: (type, [(attribute, value)]), of the control dump or the notifications."""
        from pyroute2.netlink.rtnl.marshal import MarshalRtnl

        marshal, found = MarshalRtnl(), []
        for data in self.notifications:
            for msg in marshal.parse(data):
                if (msg["header"]["sequence_number"] == CONTROL_SEQ) != control or msg["header"]["type"] < 16:
                    continue  # the other kind; NLMSG_DONE
                event = msg.get("event") or f"rtnetlink type {msg['header']['type']}"
                found.append((event, list(msg.get("attrs") or [])))
        return found

    def changes(self) -> list[tuple[str, list]]:
        """The rtnetlink notifications received, as (message type, attribute values)."""
        return [(event, [value for _name, value in attrs]) for event, attrs in self._messages(control=False)]

    def control_links(self) -> list[str]:
        """The link names of the control dump's answer, as read and parsed like the notifications."""
        return [value for _event, attrs in self._messages(control=True) for name, value in attrs if name == "IFLA_IFNAME"]

    def report(self) -> str:
        frames = ", ".join(f"{n} {ifname}" for ifname, n in self.frames.most_common()) or "none"
        unparsed = f"; not parsed (link type unknown here): {dict(self.unparsed)}" if self.unparsed else ""
        where = " (the initial namespace)" if self.namespace == INIT_NET_INODE else ""
        return (f"captured {sum(self.frames.values())} frames in the host during the gate: {frames}{unparsed}; "
                f"namespace inode {self.namespace}{where}; "
                f"kernel: {self.stats[0]} queued, {self.stats[1]} dropped; controls seen: {self.controls}; "
                f"{len(self.changes())} rtnetlink notifications")


@dataclass
class GateRun:
    done: subprocess.CompletedProcess
    document: dict | None
    wall_s: float
    before: dict
    after: dict
    namespaces_before: set
    namespaces_after: set
    watch: HostWatch
    instances_before: set  # netkit's tracefs instances (other runs of this machine may own some)
    tracefs_missing: str  # why tracefs cannot be had here ("" when it can)

    def require_a_real_run(self) -> None:
        """The proofs mean something only if the gate really ran its scenarios."""
        ran = [e for e in (self.document or {}).get("scenarios", []) if e.get("runs")]
        assert len(ran) >= 60, (f"the gate ran {len(ran)} scenarios (exit {self.done.returncode}), not the whole matrix: "
                                f"{self.done.stderr[-3000:]}")


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory):
    """The whole built-in gate, once, watched from the host; snapshots of the host before and after.

    Scope: module. Depends: root (CAP_NET_ADMIN and CAP_SYS_ADMIN), else skip.
    """
    if missing_privileges():
        pytest.skip(missing_privileges())
    if not effective_capabilities() >> CAP_NET_RAW & 1:
        pytest.skip("watching the host's traffic needs CAP_NET_RAW (an AF_PACKET socket), which this process lacks")
    document = tmp_path_factory.mktemp("host-untouched") / "gate.json"
    # The snapshots too are taken holding the suite's lock: no README or docs command (they run beside the
    # suite, tests/test_readme.py) builds or removes a lab between them.
    with one_whole_gate_at_a_time():
        namespaces_before = set(kept_namespaces())
        instances_before = set(tracefs.netkit_instances())
        tracefs_missing = ""
        try:
            tracefs.tracefs_root()  # mounted before the first look: netkit may mount it, which changes no tracing state
        except tracefs.TracefsUnavailable as exc:
            tracefs_missing = str(exc)  # then the snapshots say so (None), and a mount by the gate would show
        before = host_snapshot()
        with HostWatch() as watch:
            started = time.monotonic()
            watch.send_controls("start")
            done = subprocess.run([sys.executable, "-m", "netkit.cli", "gate", "--json", str(document)],
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=GATE_TIMEOUT_S)
            watch.send_controls("end")
            wall = time.monotonic() - started
        after = host_snapshot()
        namespaces_after = set(kept_namespaces())
    return GateRun(done, json.loads(document.read_text()) if document.exists() else None, wall, before, after,
                   namespaces_before, namespaces_after, watch, instances_before, tracefs_missing)


@needs_root
@pytest.mark.slow
def test_a_full_gate_changes_nothing_in_the_host(gate_run):
    gate_run.require_a_real_run()
    if not gate_run.tracefs_missing:  # the tracing state was compared, not two Nones
        assert gate_run.before["top-level tracing state (tracefs)"], "tracefs was mounted, yet not read"
    changed = differences(gate_run.before, gate_run.after)
    assert not changed, "the gate changed the host's network:\n" + "\n".join(changed)
    watch = gate_run.watch
    assert watch.error is None, f"the host watch broke off: {watch.error!r}"
    assert watch.rtnl_namespace == os.stat("/proc/self/ns/net").st_ino
    assert watch.rtnl_groups & RTMGRP == RTMGRP, f"not subscribed to the host's notifications: {watch.rtnl_groups:#x}"
    links = sorted(link["ifname"] for link in ip("link", "show"))
    assert sorted(watch.control_links()) == links, "the notification reader did not read back the control link dump"
    touching = [(event, names_lab_things(values)) for event, values in watch.changes() if names_lab_things(values)]
    assert not touching, f"during the gate, the host was told of changes to nk interfaces or lab addresses: {touching}"


@needs_root
@pytest.mark.slow
def test_a_full_gate_leaves_no_nk_namespace_or_interface_in_the_host(gate_run):
    gate_run.require_a_real_run()
    new = gate_run.namespaces_after - gate_run.namespaces_before
    orphaned = sorted(n for n in new if owner_pid(n) is None or not process_alive(owner_pid(n)))
    assert not orphaned, f"the gate left named namespaces under /run/netns: {orphaned}"
    nk_links = [link["ifname"] for link in ip("link", "show") if link["ifname"].startswith("nk")]
    assert not nk_links, f"nk interfaces in the host after the gate: {nk_links}"
    left = sorted(set(tracefs.census().stale) - gate_run.instances_before)
    assert not left, f"the gate left tracefs instances whose process is gone: {left}"


@needs_root
@pytest.mark.slow
def test_no_lab_traffic_reaches_a_host_interface_during_a_full_gate(gate_run, record_property):
    gate_run.require_a_real_run()
    watch = gate_run.watch
    record_property("host_capture", watch.report())
    print(f"\ngate: exit {gate_run.done.returncode}, {gate_run.document.get('totals')}, {gate_run.wall_s:.1f} s with "
          f"the watch; {watch.report()}")
    assert watch.error is None, f"the capture broke off: {watch.error!r}"
    assert watch.namespace == os.stat("/proc/self/ns/net").st_ino, "the capture socket is not in this (the host) namespace"
    # The positive control: the capture read from before the gate started until after it ended, and parsed real frames.
    for name in watch.sent:
        loopback = name.split("-", 1)[1]
        assert name in watch.controls, f"the capture never saw the control datagram {name!r}: {watch.report()}"
        assert watch.controls[name] == ("lo", [loopback, loopback]), watch.controls[name]
    assert watch.stats[1] == 0, f"the kernel dropped {watch.stats[1]} frames before the capture read them: unproven"
    assert not watch.leaks, "lab traffic on host interfaces:\n" + "\n".join(watch.leaks[:20])
    on_nk = [ifname for ifname in watch.frames if ifname.startswith("nk")]
    assert not on_nk, f"frames seen on nk interfaces in the host: {on_nk}"


def ethernet(ethertype: int, payload: bytes, vlan: bool = False) -> bytes:
    tag = struct.pack("!HH", 0x8100, 42) if vlan else b""
    return b"\x02" * 6 + b"\x04" * 6 + tag + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str) -> bytes:
    return bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]) + ipaddress.ip_address(src).packed + \
        ipaddress.ip_address(dst).packed + bytes(8)


def ipv6(src: str, dst: str, icmp_type: int | None = None, target: str = "::") -> bytes:
    body = bytes([icmp_type, 0, 0, 0, 0, 0, 0, 0]) + ipaddress.ip_address(target).packed if icmp_type else bytes(8)
    next_header = IPPROTO_ICMPV6 if icmp_type else 17
    return bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", len(body), next_header, 255) + \
        ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + body


def arp(sender: str, target: str) -> bytes:
    return struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + b"\x02" * 6 + ipaddress.ip_address(sender).packed + \
        bytes(6) + ipaddress.ip_address(target).packed


FRAMES = {  # id: (frame, sll_hatype, lab addresses the check must report)
    "ipv4-dst": (ethernet(ETH_P_IP, ipv4("192.0.2.2", "198.18.0.1")), 1, ["IPv4 dst 198.18.0.1"]),
    "ipv4-src-top-of-/15": (ethernet(ETH_P_IP, ipv4("198.19.255.255", "192.0.2.1")), 1, ["IPv4 src 198.19.255.255"]),
    "ipv4-just-outside-/15": (ethernet(ETH_P_IP, ipv4("198.20.0.1", "198.17.255.255")), 1, []),
    "ipv4-loopback": (ethernet(ETH_P_IP, ipv4("127.0.0.1", "127.0.0.1")), 772, []),
    "ipv4-vlan-tagged": (ethernet(ETH_P_IP, ipv4("198.18.0.2", "198.18.0.1"), vlan=True), 1,
                         ["IPv4 src 198.18.0.2", "IPv4 dst 198.18.0.1"]),
    "ipv4-no-link-header": (ipv4("10.0.0.1", "198.18.0.1"), 0xFFFE, ["IPv4 dst 198.18.0.1"]),  # a tun device
    "ipv6-src": (ethernet(ETH_P_IPV6, ipv6("2001:2::2", "fd00::1")), 1, ["IPv6 src 2001:2::2"]),
    "ipv6-dst-top-of-/48": (ethernet(ETH_P_IPV6, ipv6("fd00::2", "2001:2:0:ffff::1")), 1, ["IPv6 dst 2001:2:0:ffff::1"]),
    "ipv6-just-outside-/48": (ethernet(ETH_P_IPV6, ipv6("fd00::2", "2001:2:1::1")), 1, []),
    "nd-solicit-for-lab": (ethernet(ETH_P_IPV6, ipv6("fe80::1", "ff02::1:ff00:1", ND_SOLICIT, "2001:2::1")), 1,
                           ["ND target 2001:2::1"]),
    "nd-solicit-for-host": (ethernet(ETH_P_IPV6, ipv6("fe80::1", "ff02::1:ff00:1", ND_SOLICIT, "fd00::1")), 1, []),
    "arp-target": (ethernet(ETH_P_ARP, arp("192.0.2.2", "198.18.0.1")), 1, ["ARP target 198.18.0.1"]),
    "arp-sender": (ethernet(ETH_P_ARP, arp("198.18.0.2", "192.0.2.1")), 1, ["ARP sender 198.18.0.2"]),
    "truncated": (ethernet(ETH_P_IP, ipv4("198.18.0.1", "198.18.0.2"))[:20], 1, []),  # no whole IPv4 header to read
}


@pytest.mark.parametrize("frame, hatype, found", FRAMES.values(), ids=FRAMES.keys())
def test_the_frame_check_finds_lab_addresses_in_each_place_they_can_be(frame, hatype, found):
    """The capture's judge, on frames built here: it must see a lab address wherever one can be (no root needed)."""
    protocol = ETH_P_IP if hatype == 0xFFFE else 0
    assert lab_addresses(frame, hatype, protocol) == found


def test_frames_of_an_unknown_link_type_are_counted_as_unparsed_not_as_clean():
    assert network_addresses(ipv4("198.18.0.1", "198.18.0.2"), 32, ETH_P_IP) is None  # ARPHRD_INFINIBAND


@pytest.mark.parametrize("values, found", [
    (["nk-1a2b3c-s", "eth0"], ["nk-1a2b3c-s"]),
    (["198.18.0.0/24", "192.0.2.0/24", "2001:2::1", "fd00::2", 7], ["198.18.0.0/24", "2001:2::1"]),
])
def test_a_notification_naming_an_nk_interface_or_a_lab_address_is_caught(values, found):
    assert names_lab_things(values) == found


def test_a_difference_names_the_section_and_the_entry():
    """What the untouched-host proof prints when something changed (no root needed)."""
    before = {"links": [{"ifname": "lo"}], "sysctls": {"/proc/sys/net/ipv4/tcp_retries2": "15"}}
    after = {"links": [{"ifname": "lo"}, {"ifname": "nk-1a2b3c-s"}], "sysctls": {"/proc/sys/net/ipv4/tcp_retries2": "3"}}
    assert differences(before, after) == ['links: + {"ifname": "nk-1a2b3c-s"}',
                                          "sysctls: /proc/sys/net/ipv4/tcp_retries2: '15' -> '3'"]
    assert differences(before, before) == []
