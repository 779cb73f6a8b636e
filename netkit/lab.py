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
local qdisc, not counted, and retried 500 ms later (KERNEL-NOTES, trap 1).

Teardown runs in reverse order of creation from one ExitStack per lab, on
success, failure, Ctrl-C and pytest-timeout.  Because the namespaces are held
only by file descriptors, a SIGKILLed process leaves nothing behind either.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType

from .namespaces import PREFIX, Namespace, new_lab_name

IFA_F_NODAD = 0x02
SERVER_PORT = 4242
CONNECT_TIMEOUT_S = 5
SERVER_IFINDEX = 7  # anything but 2, the index the client end gets by default

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
ADDRESSES = {
    "server": {"ipv4": ("198.18.0.1", 24), "ipv6": ("2001:2::1", 64)},
    "client": {"ipv4": ("198.18.0.2", 24), "ipv6": ("2001:2::2", 64)},
}


def family_number(family: str) -> int:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown address family {family!r}: use 'ipv4' or 'ipv6'") from None


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
            raise ValueError(f"link state must be 'up' or 'down', not {state!r}")

        def change() -> None:
            with self.namespace.iproute() as ipr:
                ipr.link("set", index=self.ifindex, state=state)

        self.namespace.run(change)

    def refresh_link(self) -> None:
        """Ask the kernel for this side's link (RTM_GETLINK).

        Done right after breaking the *other* end: it makes the kernel process
        the pending carrier change now (linkwatch), instead of up to a second
        later (KERNEL-NOTES, trap 1).
        """

        def get() -> None:
            with self.namespace.iproute() as ipr:
                ipr.link("get", index=self.ifindex)

        self.namespace.run(get)


def _configure(endpoint: Endpoint, create_veth_to: Endpoint | None) -> None:
    """Inside ``endpoint``'s namespace: (create the veth,) lo up, addresses, link up."""
    with endpoint.namespace.iproute() as ipr:
        if create_veth_to is not None:
            ipr.link(
                "add",
                ifname=endpoint.ifname,
                kind="veth",
                index=SERVER_IFINDEX,
                peer={"ifname": create_veth_to.ifname, "net_ns_fd": create_veth_to.namespace.fd},
            )
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        index = ipr.link_lookup(ifname=endpoint.ifname)[0]
        endpoint.ifindex = index
        (v4, v4len), (v6, v6len) = ADDRESSES[endpoint.role]["ipv4"], ADDRESSES[endpoint.role]["ipv6"]
        ipr.addr("add", index=index, address=v4, prefixlen=v4len)
        ipr.addr("add", index=index, address=v6, prefixlen=v6len, flags=IFA_F_NODAD)
        ipr.link("set", index=index, state="up")


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

    def __enter__(self) -> Lab:
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

    def callback(self, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        """Register an undo step that runs before the namespaces are released."""
        self._stack.callback(fn, *args, **kwargs)

    def keep(self) -> list[str]:
        """Give both namespaces names under /run/netns so they survive teardown."""
        self.kept = [ep.namespace.keep() for ep in (self.server, self.client)]
        return self.kept

    def connect(self, family: str, port: int = SERVER_PORT) -> tuple[socket.socket, socket.socket]:
        """A connected TCP pair: (the server's *accepted* socket, the client's socket).

        All three sockets (listener included) are closed when the lab closes.
        """
        address = self.server.address(family)
        listener = self.server.socket(family)
        self.callback(listener.close)
        listener.bind((address, port))
        listener.listen(1)
        client = self.client.socket(family)
        self.callback(client.close)
        client.settimeout(CONNECT_TIMEOUT_S)
        client.connect((address, port))
        client.settimeout(None)
        listener.settimeout(CONNECT_TIMEOUT_S)
        server, _ = listener.accept()
        self.callback(server.close)
        return server, client


