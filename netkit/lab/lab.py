"""The lab: two network namespaces ("server" and "client") joined by one veth pair.

Everything is built through netlink (pyroute2), never by running ``ip``, and
nothing is created in or changed in the host namespace: the veth pair is
created inside the server namespace with its peer placed directly into the
client namespace.

Addresses come from the benchmarking ranges (RFC 2544 / RFC 5180) and exist
only inside the lab:

=========  ==============  ==============
side       IPv4            IPv6
=========  ==============  ==============
server     198.18.0.1/24   2001:2::1/64
client     198.18.0.2/24   2001:2::2/64
=========  ==============  ==============

IPv6 addresses are added with IFA_F_NODAD so they are usable at once.

The two veth ends get *different* ifindexes on purpose: with the default
(both ends ifindex 2 in fresh namespaces) the kernel processes the peer's
carrier loss late and a keepalive probe sent in that window is refused by the
local qdisc, not counted, and retried 500 ms later (docs/rules.md, "Linkwatch
and the ifindex trap").
Both indexes are set, not looked up: the server end is 7, the client end 8
(lo is always 1).  The kernel refuses the veth (EEXIST) rather than pick
another index, so the numbers always hold.  Indexes 2-6 stay free for the
fallback tunnel devices (tunl0, sit0, ...) a new namespace gets when such
modules are loaded.

Each namespace is configured in *one* round trip: its requests (veth, lo up,
addresses, link up) are pyroute2 messages sent in one netlink datagram
(:meth:`Namespace.rtnl_batch`), each acknowledged, the first error raised:
a few times cheaper than a call per step, close to the kernel's own cost of
two namespaces (docs/rules.md, "Lab cost").

Teardown runs in reverse order of creation from one ExitStack per lab, on
success, failure, Ctrl-C and pytest-timeout.  Because the namespaces are held
only by file descriptors, a SIGKILLed process leaves nothing behind either.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from ..enums import family_of
from ..errors import UnknownChoice
from ..privileges import require_privileges
from .namespaces import PREFIX, Namespace, new_lab_name

RT_SCOPE_LINK = 253  # a route to a neighbour on the link (rtnetlink.h)
RTAX_RTO_MIN = 13  # the route metric tcp_rto_min() reads, in ms (rtnetlink.h); locked by bit 1 << RTAX_RTO_MIN

IFA_F_NODAD = 0x02
NUD_PERMANENT = 0x80  # include/uapi/linux/neighbour.h
IFF_UP = 0x01
SERVER_PORT = 4242
CONNECT_TIMEOUT_S = 5
LOOPBACK_IFINDEX = 1  # always: loopback_net_init() BUG()s otherwise
SERVER_IFINDEX = 7  # anything but 2, the index both ends would get by default
CLIENT_IFINDEX = 8  # set too, so the client's requests need no lookup
IFINDEXES = {"server": SERVER_IFINDEX, "client": CLIENT_IFINDEX}

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
ADDRESSES = {
    "server": {"ipv4": ("198.18.0.1", 24), "ipv6": ("2001:2::1", 64)},
    "client": {"ipv4": ("198.18.0.2", 24), "ipv6": ("2001:2::2", 64)},
}


def family_number(family: str) -> int:
    return FAMILIES[family_of(family)]


@dataclass
class Endpoint:
    """One side of the lab: its namespace, veth end and addresses."""

    role: str
    namespace: Namespace
    ifname: str
    ifindex: int = 0

    def address(self, family: str) -> str:
        family_number(family)
        return ADDRESSES[self.role][family][0]

    def socket(self, family: str, type: int = socket.SOCK_STREAM) -> socket.socket:
        return self.namespace.socket(family_number(family), type)

    def set_link(self, state: str) -> None:
        """Set this side's veth end "up" or "down" (inside its own namespace)."""
        if state not in ("up", "down"):
            raise UnknownChoice(f"link state must be 'up' or 'down', not {state!r}")

        def change() -> None:
            with self.namespace.iproute() as ipr:
                ipr.link("set", index=self.ifindex, state=state)

        self.namespace.run(change)

    def route_rto_min(self, family: str, peer: str, rto_min_ms: int) -> None:
        """A host route to ``peer`` over this side's veth with a locked ``rto_min`` metric (``ip route add PEER dev
        VETH rto_min Nms``, which always locks it): ``tcp_rto_min()`` takes a route's RTAX_RTO_MIN only when locked.

        A host route, more specific than the connected one, so that the
        kernel's own route is left as it was; made before the connection,
        whose socket takes its metrics with its route.
        """
        prefix = 32 if family_of(family) == "ipv4" else 128

        def add() -> None:
            with self.namespace.iproute() as ipr:
                ipr.route("add", dst=f"{peer}/{prefix}", oif=self.ifindex, scope=RT_SCOPE_LINK,
                          metrics={"RTAX_LOCK": 1 << RTAX_RTO_MIN, "RTAX_RTO_MIN": rto_min_ms})

        self.namespace.run(add)

    def route_metrics(self, family: str, peer: str) -> dict[str, int]:
        """The metrics of the route to ``peer`` (its RTA_METRICS, by their pyroute2 names), as the kernel holds them."""

        def get() -> dict[str, int]:
            with self.namespace.iproute() as ipr:
                [route] = ipr.route("get", dst=peer)
                metrics = route.get_attr("RTA_METRICS")
                return {} if metrics is None else dict(metrics["attrs"])

        return self.namespace.run(get)

    def link_exists(self) -> bool:
        """Whether this side's veth end still exists (it vanishes with the peer's namespace)."""

        def get() -> bool:

            with self.namespace.iproute() as ipr:
                try:
                    ipr.link("get", index=self.ifindex)
                except NetlinkError:
                    return False
                return True

        return self.namespace.run(get)

    def sysctl(self, name: str, value: object = None) -> str:
        """Read (and with ``value``, first write) a sysctl of this side's namespace only.

        ``/proc/sys/net`` resolves to the namespace of the *thread* that opens
        it, so this never reads or changes the host's values.
        """
        path = "/proc/sys/" + name.replace(".", "/")

        def access() -> str:
            if value is not None:
                with open(path, "w") as f:
                    f.write(str(value))
            with open(path) as f:
                return f.read().strip()

        return self.namespace.run(access)

    def mac_address(self) -> str:
        """This side's veth end's link-layer address."""

        def get() -> str:
            with self.namespace.iproute() as ipr:
                return str(next(iter(ipr.link("get", index=self.ifindex))).get("IFLA_ADDRESS"))

        return self.namespace.run(get)

    def pin_neighbour(self, family: str, address: str, mac: str) -> None:
        """A permanent neighbour entry on this side's veth end: ``address`` is ``mac``, never solicited.

        "replace": it also turns the dynamic entry an established connection
        already made into a permanent one.
        """

        def add() -> None:
            with self.namespace.iproute() as ipr:
                ipr.neigh("replace", dst=address, lladdr=mac, ifindex=self.ifindex, state=NUD_PERMANENT,
                          family=family_number(family))

        self.namespace.run(add)

    def refresh_link(self) -> None:
        """Ask the kernel for this side's link (RTM_GETLINK).

        Done right after breaking the *other* end: it makes the kernel process
        the pending carrier change now (linkwatch), instead of up to a second
        later (docs/rules.md, "Linkwatch and the ifindex trap").
        """

        def get() -> None:
            with self.namespace.iproute() as ipr:
                ipr.link("get", index=self.ifindex)

        self.namespace.run(get)


def _request(msg: Any, msg_type: int, create: bool = False) -> Any:
    """Make ``msg`` an acknowledged rtnetlink request (``create``: fail if it exists)."""

    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if create else 0)
    return msg


def new_veth(ifname: str, index: int, peer_ifname: str, peer_index: int, peer_ns: Namespace) -> Any:
    """RTM_NEWLINK: a veth pair, this end here, the other end created straight in ``peer_ns``.

    The peer is a whole ifinfomsg: its header carries the peer's ifindex.
    """

    peer_msg = {"index": peer_index, "attrs": [("IFLA_IFNAME", peer_ifname), ("IFLA_NET_NS_FD", peer_ns.fd)]}
    msg = ifinfmsg()
    msg["index"] = index
    msg["attrs"] = [
        ("IFLA_IFNAME", ifname),
        ("IFLA_LINKINFO", {"attrs": [
            ("IFLA_INFO_KIND", "veth"),
            ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer_msg)]}),
        ]}),
    ]
    return _request(msg, RTM_NEWLINK, create=True)


def _link_up(index: int) -> Any:
    """RTM_NEWLINK on an existing link: set IFF_UP (what ``ip link set ... up`` sends)."""

    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = IFF_UP
    msg["change"] = IFF_UP
    return _request(msg, RTM_NEWLINK)


def _new_address(index: int, family: str, address: str, prefixlen: int) -> Any:
    """RTM_NEWADDR: ``address/prefixlen`` on link ``index``; IPv6 with IFA_F_NODAD."""

    msg = ifaddrmsg()
    msg["family"] = family_number(family)
    msg["prefixlen"] = prefixlen
    msg["index"] = index
    msg["attrs"] = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
    if family == "ipv6":
        msg["attrs"].append(("IFA_FLAGS", IFA_F_NODAD))
    return _request(msg, RTM_NEWADDR, create=True)


def _configure(endpoint: Endpoint, create_veth_to: Endpoint | None) -> None:
    """Inside ``endpoint``'s namespace: (create the veth,) lo up, addresses, link up.

    One batch, one round trip: the kernel runs the requests in order; the first
    error (e.g. EEXIST for a taken ifindex) is raised as a NetlinkError.
    """
    index = IFINDEXES[endpoint.role]
    requests = []
    if create_veth_to is not None:
        requests.append(new_veth(endpoint.ifname, index, create_veth_to.ifname, IFINDEXES[create_veth_to.role],
                                  create_veth_to.namespace))
    requests.append(_link_up(LOOPBACK_IFINDEX))
    for family in ("ipv4", "ipv6"):
        address, prefixlen = ADDRESSES[endpoint.role][family]
        requests.append(_new_address(index, family, address, prefixlen))
    requests.append(_link_up(index))
    endpoint.namespace.rtnl_batch(requests)
    endpoint.ifindex = index


class Lab:
    """Two namespaces joined by a veth pair; use as a context manager.

    >>> with Lab() as lab:
    ...     listener = lab.server.socket("ipv4")
    """

    def __init__(self) -> None:
        self.name = new_lab_name()  # nk-<pid>-<random>
        tag = self.name.rsplit("-", 1)[1]
        self.server = Endpoint("server", None, f"{PREFIX}-{tag}-s")  # type: ignore[arg-type]
        self.client = Endpoint("client", None, f"{PREFIX}-{tag}-c")  # type: ignore[arg-type]
        self._stack = ExitStack()
        self.kept: list[str] = []
        self.listeners: list[socket.socket] = []  # in the server namespace, from connect()

    def __enter__(self) -> Lab:
        require_privileges()  # one clear message before anything is created
        with ExitStack() as stack:
            for endpoint in (self.server, self.client):
                endpoint.namespace = Namespace.create(f"{self.name}-{endpoint.role}")
                stack.callback(endpoint.namespace.close)
            # The veth must exist before the client side can configure its end.
            self.server.namespace.run(_configure, self.server, self.client)
            self.client.namespace.run(_configure, self.client, None)
            if self.server.ifindex == self.client.ifindex:
                raise RuntimeError(f"veth ends share ifindex {self.server.ifindex}")
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the namespaces (reverse order of creation). Idempotent."""
        self._stack.close()

    def callback(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Register an undo step that runs before the namespaces are released."""
        self._stack.callback(fn, *args, **kwargs)

    def pin_neighbours(self, family: str) -> None:
        """Each side knows the other's link-layer address for good (permanent entries, both ways).

        For a rule that must be TCP's alone: a blackhole drops IPv6's
        neighbour solicitations with everything else (ND is ICMPv6), and a
        failing entry would end a connect() with EHOSTUNREACH instead.  A
        permanent entry also survives a carrier loss (``neigh_carrier_down``
        spares it).
        """
        server_mac, client_mac = self.server.mac_address(), self.client.mac_address()
        self.client.pin_neighbour(family, self.server.address(family), server_mac)
        self.server.pin_neighbour(family, self.client.address(family), client_mac)

    def keep(self) -> list[str]:
        """Give both namespaces names under /run/netns so they survive teardown."""
        self.kept = [ep.namespace.keep() for ep in (self.server, self.client) if ep.namespace.fd >= 0]
        return self.kept

    def connect(
        self, family: str, port: int = SERVER_PORT, rcvbuf: dict[str, int] | None = None
    ) -> tuple[socket.socket, socket.socket]:
        """A connected TCP pair: (the server's *accepted* socket, the client's socket).

        ``rcvbuf`` ({"server"|"client": bytes}) sets SO_RCVBUF before the
        handshake (the window scale is fixed then), e.g. to close a window fast.
        All three sockets (listener included) are closed when the lab closes.
        """
        rcvbuf = rcvbuf or {}
        address = self.server.address(family)
        listener = self.server.socket(family)
        self.callback(listener.close)
        self.listeners.append(listener)
        if "server" in rcvbuf:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf["server"])  # inherited on accept
        listener.bind((address, port))
        listener.listen(1)
        client = self.client.socket(family)
        self.callback(client.close)
        if "client" in rcvbuf:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf["client"])
        client.settimeout(CONNECT_TIMEOUT_S)
        client.connect((address, port))
        client.settimeout(None)
        listener.settimeout(CONNECT_TIMEOUT_S)
        server, _ = listener.accept()
        self.callback(server.close)
        return server, client


