"""The routed lab: client -- router -- server, the router a stateful middlebox (conntrack, nftables).

A small extension of :class:`netkit.lab.lab.Lab` (whose two-namespace
topology stays the default): a third namespace, ``nk-<pid>-<random>-router``,
forwards between two veth pairs, tracks connections and, as an option,
masquerades the client behind its server-side address.  Everything is made
the way the two-namespace lab is made -- namespaces held by fds, one
rtnetlink batch per namespace, fixed distinct ifindexes, IPv6 with
IFA_F_NODAD -- and torn down from the same ExitStack.

=============  ===================  =====================  ========
where          IPv4                 IPv6                   ifindex
=============  ===================  =====================  ========
client         198.18.1.2/24        2001:2:0:1::2/64       8
router (-rc)   198.18.1.254/24      2001:2:0:1::fe/64      9
router (-rs)   198.18.2.254/24      2001:2:0:2::fe/64      10
server         198.18.2.1/24        2001:2:0:2::1/64       7
=============  ===================  =====================  ========

Client and server have a default route via the router; only the router
forwards (``net.ipv4.ip_forward``, ``net.ipv6.conf.all.forwarding``, written
inside its namespace).  The middlebox is configured in the router's namespace
only: ``net.netfilter.nf_conntrack_tcp_timeout_established`` (the idle timeout
it forgets a flow after), ``net.netfilter.nf_conntrack_tcp_loose`` and one
nftables table, ``inet nk_middlebox``::

    chain pre { type filter hook prerouting priority filter; ct state invalid drop; }
    # or: ct state invalid meta l4proto tcp reject with tcp reset
    chain post { type nat hook postrouting priority srcnat; oifname "nk-...-rs" masquerade; }  # optional

The rule sits at prerouting so that it sees a forgotten flow's packet
whether it is forwarded or, masqueraded, addressed to the router itself.
The table is loaded by running ``nft -f -`` inside the router namespace
(:meth:`Namespace.popen`): pyroute2 0.9's ``NFTables`` has no builders for
``ct state``, ``reject`` or ``masquerade`` expressions (each would be
hand-assembled registers: ct load, bitwise, cmp, immediate), and this is set
up once before the connection, where the 100 ms of a program start cost
nothing.

Conntrack entries are read through ctnetlink (pyroute2 ``Conntrack``) from a
thread inside the router namespace: the host's table is never read.
"""

from __future__ import annotations

import errno
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWROUTE
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ..errors import FeatureMissing
from ..privileges import require_privileges
from .lab import LOOPBACK_IFINDEX, Endpoint, Lab, _link_up, _new_address, family_number, new_veth
from .namespaces import PREFIX, Namespace
from .sysctl import set_sysctl

NFT_TABLE = "nk_middlebox"
ROUTER_CLIENT_IFINDEX = 9
ROUTER_SERVER_IFINDEX = 10
ROUTED_ADDRESSES = {
    "server": {"ipv4": ("198.18.2.1", 24), "ipv6": ("2001:2:0:2::1", 64)},
    "client": {"ipv4": ("198.18.1.2", 24), "ipv6": ("2001:2:0:1::2", 64)},
    "router-c": {"ipv4": ("198.18.1.254", 24), "ipv6": ("2001:2:0:1::fe", 64)},
    "router-s": {"ipv4": ("198.18.2.254", 24), "ipv6": ("2001:2:0:2::fe", 64)},
}
GATEWAYS = {"client": "router-c", "server": "router-s"}
TIMEOUT_SYSCTL = "net.netfilter.nf_conntrack_tcp_timeout_established"
LOOSE_SYSCTL = "net.netfilter.nf_conntrack_tcp_loose"
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
NFT_TIMEOUT_S = 10


class RoutedEndpoint(Endpoint):
    """A client or server of the routed lab: the same as the lab's, with the routed addresses."""

    def address(self, family: str) -> str:
        family_number(family)
        return ROUTED_ADDRESSES[self.role][family][0]


@dataclass(frozen=True)
class MiddleboxConfig:
    """How the router behaves: its idle timeout, what it does with a forgotten flow's packets, NAT, pick-up."""

    timeout_s: int  # net.netfilter.nf_conntrack_tcp_timeout_established
    action: str = "drop"  # "drop" or "reject" (reject with tcp reset) for ct state invalid
    masquerade: bool = False  # SNAT the client to the router's server-side address
    loose: bool = False  # net.netfilter.nf_conntrack_tcp_loose: pick up a flow mid-stream

    def ruleset(self, server_side_ifname: str) -> str:
        verdict = "drop" if self.action == "drop" else "meta l4proto tcp reject with tcp reset"
        lines = [f"table inet {NFT_TABLE} {{", "  chain pre {",
                 "    type filter hook prerouting priority filter;", f"    ct state invalid {verdict}", "  }"]
        if self.masquerade:
            lines += ["  chain post {", "    type nat hook postrouting priority srcnat;",
                      f'    oifname "{server_side_ifname}" masquerade', "  }"]
        return "\n".join(lines + ["}", ""])


@dataclass(frozen=True)
class ConntrackEntry:
    """One conntrack entry of the router, as ctnetlink reports it (``timeout_s``: whole seconds left)."""

    id: int
    state: str  # CTA_PROTOINFO_TCP_STATE, e.g. "ESTABLISHED"
    timeout_s: int
    original: tuple[str, int, str, int]  # saddr, sport, daddr, dport
    reply: tuple[str, int, str, int]


TCP_CT_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
                 "CLOSE", "SYN_SENT2")


def _tuple(t: Any) -> tuple[str, int, str, int]:
    return (str(t.saddr), int(t.sport or 0), str(t.daddr), int(t.dport or 0))


def open_conntrack(family: int) -> Any:
    """Inside the router's thread: a pyroute2 ctnetlink socket of that namespace (close it, or use ``with``)."""
    from pyroute2 import Conntrack  # imported here: only the routed lab needs ctnetlink

    return Conntrack(nfgen_family=family)


def tcp_entries(ct: Any) -> list[ConntrackEntry]:
    """Every TCP entry an open ctnetlink socket dumps (expired ones are not dumped: ctnetlink_dump_table)."""
    found = []
    for e in ct.dump_entries():
        if e.tuple_orig.proto != socket.IPPROTO_TCP:
            continue
        state = e.protoinfo.state if e.protoinfo is not None else 0
        found.append(ConntrackEntry(int(e.id or 0), TCP_CT_STATES[state] if state < len(TCP_CT_STATES) else str(state),
                                    int(e.timeout or 0), _tuple(e.tuple_orig), _tuple(e.tuple_reply)))
    return found


def get_entry(ct: Any, original: tuple[str, int, str, int]) -> ConntrackEntry | None:
    """The entry whose original tuple (saddr, sport, daddr, dport) this is, or None: one hash lookup.

    IPCTNL_MSG_CT_GET with a tuple (``ctnetlink_get_conntrack``) finds the
    entry through ``nf_conntrack_find_get``, which treats an expired entry as
    absent -- in about 0.5 ms, where a dump walks the whole (host-wide) hash
    table and took 12 ms here.
    """
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    saddr, sport, daddr, dport = original
    try:
        family = socket.AF_INET6 if ":" in saddr else socket.AF_INET
        msg = ct.entry("get", tuple_orig=NFCTAttrTuple(family=family, saddr=saddr, daddr=daddr,
                                                       proto=socket.IPPROTO_TCP, sport=sport, dport=dport))
    except NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return None
        raise
    info = msg.get_attr("CTA_PROTOINFO")
    tcp = info.get_attr("CTA_PROTOINFO_TCP") if info is not None else None
    state = (tcp.get_attr("CTA_PROTOINFO_TCP_STATE") if tcp is not None else None) or 0
    reply = msg.get_attr("CTA_TUPLE_REPLY")
    rip, rproto = reply.get_attr("CTA_TUPLE_IP"), reply.get_attr("CTA_TUPLE_PROTO")
    rsrc = rip.get_attr("CTA_IP_V4_SRC") or rip.get_attr("CTA_IP_V6_SRC")
    rdst = rip.get_attr("CTA_IP_V4_DST") or rip.get_attr("CTA_IP_V6_DST")
    return ConntrackEntry(int(msg.get_attr("CTA_ID") or 0),
                          TCP_CT_STATES[state] if state < len(TCP_CT_STATES) else str(state),
                          int(msg.get_attr("CTA_TIMEOUT") or 0), original,
                          (str(rsrc), int(rproto.get_attr("CTA_PROTO_SRC_PORT") or 0), str(rdst),
                           int(rproto.get_attr("CTA_PROTO_DST_PORT") or 0)))


def _dump_conntrack(family: int) -> list[ConntrackEntry]:
    """Inside the router's thread: every TCP entry of one family."""
    with open_conntrack(family) as ct:
        return tcp_entries(ct)


def _lookup(original: tuple[str, int, str, int]) -> ConntrackEntry | None:
    """Inside the router's thread: :func:`get_entry` on a socket of the tuple's family."""
    with open_conntrack(socket.AF_INET6 if ":" in original[0] else socket.AF_INET) as ct:
        return get_entry(ct, original)


def _invalid_count() -> int:
    """Inside the router's thread: packets conntrack found invalid, summed over CPUs (CTA_STATS_INVALID)."""
    from pyroute2 import Conntrack

    with Conntrack() as ct:
        return sum(int(cpu.get("invalid", 0) or 0) for cpu in ct.stat())


def _route_via(family: str, gateway: str) -> Any:
    """RTM_NEWROUTE: the default route of ``family`` via ``gateway``."""
    msg = rtmsg()
    msg["family"] = family_number(family)
    msg["dst_len"] = 0
    msg["table"] = RT_TABLE_MAIN
    msg["proto"] = RTPROT_BOOT
    msg["scope"] = RT_SCOPE_UNIVERSE
    msg["type"] = RTN_UNICAST
    msg["attrs"] = [("RTA_TABLE", RT_TABLE_MAIN), ("RTA_GATEWAY", gateway)]
    msg["header"]["type"] = RTM_NEWROUTE
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    return msg


def _addresses(index: int, role: str) -> list[Any]:
    return [_new_address(index, family, *ROUTED_ADDRESSES[role][family]) for family in ("ipv4", "ipv6")]


class RoutedLab(Lab):
    """Client and server joined through a router namespace that tracks (and may NAT) connections.

    >>> with RoutedLab(MiddleboxConfig(timeout_s=2)) as lab:
    ...     server, client = lab.connect("ipv4")
    ...     lab.conntrack("ipv4")
    """

    def __init__(self, middlebox: MiddleboxConfig) -> None:
        super().__init__()
        tag = self.name.rsplit("-", 1)[1]
        self.middlebox = middlebox
        self.server = RoutedEndpoint("server", None, f"{PREFIX}-{tag}-s")  # type: ignore[arg-type]
        self.client = RoutedEndpoint("client", None, f"{PREFIX}-{tag}-c")  # type: ignore[arg-type]
        self.router = Endpoint("router", None, f"{PREFIX}-{tag}-rs")  # type: ignore[arg-type]
        self.router_client_ifname = f"{PREFIX}-{tag}-rc"

    def __enter__(self) -> RoutedLab:
        from contextlib import ExitStack

        require_privileges()
        with ExitStack() as stack:
            for endpoint in (self.server, self.client, self.router):
                endpoint.namespace = Namespace.create(f"{self.name}-{endpoint.role}")
                stack.callback(endpoint.namespace.close)
            self.server.ifindex, self.client.ifindex = 7, 8
            self.router.ifindex = ROUTER_SERVER_IFINDEX
            # Before its veths exist: their link-local addresses then skip DAD.  A router soliciting its
            # neighbour for a *forwarded* packet has no local source to use (ndisc_solicit passes saddr NULL)
            # and ndisc_send_ns() sends nothing while the link-local is still tentative: measured, every
            # IPv6 connection through a fresh router took 2.04-2.06 s (the first NS went out after DAD),
            # with an RTT estimate of 2 s and an RTO of 6 s ever after.
            self.router.sysctl("net.ipv6.conf.default.accept_dad", 0)
            self.router.namespace.run(self.router.namespace.rtnl_batch, [
                new_veth(self.router_client_ifname, ROUTER_CLIENT_IFINDEX, self.client.ifname, self.client.ifindex,
                          self.client.namespace),
                new_veth(self.router.ifname, ROUTER_SERVER_IFINDEX, self.server.ifname, self.server.ifindex,
                          self.server.namespace),
                _link_up(LOOPBACK_IFINDEX),
                *_addresses(ROUTER_CLIENT_IFINDEX, "router-c"), *_addresses(ROUTER_SERVER_IFINDEX, "router-s"),
                _link_up(ROUTER_CLIENT_IFINDEX), _link_up(ROUTER_SERVER_IFINDEX),
            ])
            for endpoint in (self.server, self.client):
                gateway = ROUTED_ADDRESSES[GATEWAYS[endpoint.role]]
                endpoint.namespace.run(endpoint.namespace.rtnl_batch, [
                    _link_up(LOOPBACK_IFINDEX), *_addresses(endpoint.ifindex, endpoint.role), _link_up(endpoint.ifindex),
                    _route_via("ipv4", gateway["ipv4"][0]), _route_via("ipv6", gateway["ipv6"][0]),
                ])
            self._configure_router()
            self._stack = stack.pop_all()
        return self

    def _configure_router(self) -> None:
        """Forwarding, the conntrack timeout and pick-up, the nftables table: all inside the router's namespace."""
        m = self.middlebox
        for name, value in (("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1)):
            self.router.sysctl(name, value)
        try:
            for name, value in ((TIMEOUT_SYSCTL, m.timeout_s), (LOOSE_SYSCTL, int(m.loose))):
                set_sysctl(self.router, name, value)
        except FileNotFoundError as exc:
            raise FeatureMissing(f"no per-namespace conntrack sysctls ({exc.filename}): this kernel lacks "
                                 "CONFIG_NF_CONNTRACK") from None
        proc = self.router.namespace.popen(["nft", "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(m.ruleset(self.router.ifname), timeout=NFT_TIMEOUT_S)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        if proc.returncode != 0:
            raise FeatureMissing(f"the middlebox's nftables table would not load in {self.router.namespace.name} "
                                 f"(nft exit {proc.returncode}): {(err or out).strip()}")
        try:
            self.router.namespace.run(_dump_conntrack, socket.AF_INET)
        except Exception as exc:  # any netlink error here means no ctnetlink (CONFIG_NF_CT_NETLINK)
            raise FeatureMissing(f"the router's conntrack table cannot be read through ctnetlink ({exc}): this "
                                 "kernel lacks CONFIG_NF_CT_NETLINK") from None

    def keep(self) -> list[str]:
        """Name all three namespaces under /run/netns so they survive teardown."""
        self.kept = [ep.namespace.keep() for ep in (self.server, self.client, self.router) if ep.namespace.fd >= 0]
        return self.kept

    def conntrack(self, family: str) -> list[ConntrackEntry]:
        """The router's TCP conntrack entries of ``family`` (ctnetlink dump; expired entries are not listed)."""
        return self.router.namespace.run(_dump_conntrack, family_number(family))

    def conntrack_entry(self, family: str, ports: tuple[int, int]) -> ConntrackEntry | None:
        """The router's entry for the connection between these two ports (either direction), or None."""
        wanted = set(ports)
        for entry in self.conntrack(family):
            if {entry.original[1], entry.original[3]} == wanted or {entry.reply[1], entry.reply[3]} == wanted:
                return entry
        return None

    def conntrack_lookup(self, original: tuple[str, int, str, int]) -> ConntrackEntry | None:
        """The router's entry whose original tuple (saddr, sport, daddr, dport) this is, or None.

        One hash lookup (:func:`get_entry`, about 0.5 ms), where a dump walks
        the host-wide table: 12 ms on a quiet machine, and seconds with two
        gates of 128 labs at once on 2 CPUs, long enough for a 2 s entry to
        expire before it was seen.
        """
        return self.router.namespace.run(_lookup, original)

    def invalid_count(self) -> int:
        """The router's conntrack ``invalid`` statistic (packets that matched no entry and started none)."""
        return self.router.namespace.run(_invalid_count)
