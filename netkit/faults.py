"""Ways to break the path between the side under test and its peer.

Each fault is a small strategy object: a name, what it does, whether this
machine supports it (``unsupported_reason``: None, or why not -- tests turn
that into a skip), and ``apply(ctx)``.  Faults act on the *peer* of the side
whose keepalive is tested (normally the client; the server in the "client's
view" scenarios), through a :class:`FaultContext`.

Everything a fault creates lives inside the lab's namespaces (nft tables are
named ``nk_fault``) and vanishes with them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Protocol

from .errors import FeatureMissing
from .lab import Endpoint, Lab
from .namespaces import holders

TCP_REPAIR = 19  # include/uapi/linux/tcp.h
NFT_TABLE = "nk_fault"
GONE_TIMEOUT_S = 2.0


@dataclass
class FaultContext:
    """What a fault may act on: the lab, both sides, and the peer's sockets."""

    lab: Lab
    family: str
    tested: Endpoint  # the side whose timers are under test
    peer: Endpoint  # the side that goes away
    peer_connection: socket.socket  # the peer's end of the tested connection
    peer_sockets: list[socket.socket] = field(default_factory=list)  # everything else open in the peer namespace


class Fault(Protocol):
    name: str
    description: str

    def unsupported_reason(self) -> str | None: ...

    def apply(self, ctx: FaultContext) -> None: ...


def close_silently(sock: socket.socket) -> None:
    """Close a connected TCP socket without sending FIN or RST.

    In repair mode (TCP_REPAIR, CAP_NET_ADMIN) close() just drops the socket:
    to the other side the peer simply stops existing, as after a crash.
    """
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    sock.close()


class LinkDown:
    """Set the peer's veth end down, inside the peer's namespace.

    The tested side's end loses carrier; its probes are counted by the kernel
    but discarded by the local qdisc before any packet tap (KERNEL-NOTES,
    trap 4).  Right after the break we ask for the tested side's own link so
    the kernel processes the carrier change now, not up to a second later
    (trap 1).
    """

    name = "link-down"
    description = "the peer's veth end is set down (no carrier on the tested end)"

    def unsupported_reason(self) -> str | None:
        return None  # veth is checked when the lab is built

    def apply(self, ctx: FaultContext) -> None:
        ctx.peer.set_link("down")
        ctx.tested.refresh_link()


class PeerGone:
    """Destroy the peer's namespace (a crashed VM, a deleted container).

    A namespace lives while anything pins it: an open socket in it keeps it,
    its veth and its answers alive (KERNEL-NOTES, trap 3).  So the peer's
    sockets are closed first -- the connection silently (no FIN, no RST) --
    then netkit's fd; the fault then waits until the namespace is really gone
    (no process refers to it and the tested side's veth end has vanished).
    """

    name = "peer-gone"
    description = "the peer's namespace is destroyed (its veth pair vanishes with it)"

    def unsupported_reason(self) -> str | None:
        return None

    def apply(self, ctx: FaultContext) -> None:
        inode = ctx.peer.namespace.inode
        close_silently(ctx.peer_connection)
        for sock in ctx.peer_sockets:
            sock.close()
        ctx.peer.namespace.close()
        deadline = time.monotonic() + GONE_TIMEOUT_S
        while holders(inode) or ctx.tested.link_exists():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"peer namespace still alive {GONE_TIMEOUT_S} s after its last reference was dropped "
                    f"(held by pids {holders(inode)}, tested veth present: {ctx.tested.link_exists()})"
                )
            time.sleep(0.002)


class PeerReboot:
    """The peer loses its TCP state while its address still answers.

    The peer's socket is dropped silently (TCP_REPAIR); the namespace, link
    and address stay.  The next segment from the tested side meets a RST.
    """

    name = "peer-reboot"
    description = "the peer forgets the connection (silent close) but its address still answers"

    def unsupported_reason(self) -> str | None:
        return None

    def apply(self, ctx: FaultContext) -> None:
        close_silently(ctx.peer_connection)


def _run_in(endpoint: Endpoint, argv: list[str], stdin: str = "") -> None:
    proc = endpoint.namespace.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(stdin, timeout=10)
    if proc.returncode != 0:
        raise FeatureMissing(f"`{' '.join(argv)}` failed in {endpoint.namespace.name}: {(err or out).strip()}")


class FirewallDrop:
    """Drop packets in the peer's namespace with nftables (iptables as fallback).

    ``hook`` "input": everything the peer receives vanishes (a blackhole; the
    probes reach the wire). "output": the peer receives but everything it
    sends is dropped (one-way; the tested side's final RST still reaches it).
    """

    def __init__(self, name: str, hook: str, description: str) -> None:
        self.name = name
        self.hook = hook
        self.description = description

    def unsupported_reason(self) -> str | None:
        if shutil.which("nft") or shutil.which("iptables"):
            return None
        return "neither nft (nftables) nor iptables is installed: apt-get install nftables"

    def apply(self, ctx: FaultContext) -> None:
        if shutil.which("nft"):
            ruleset = (
                f"table inet {NFT_TABLE} {{\n"
                f"  chain {self.hook} {{\n"
                f"    type filter hook {self.hook} priority 0; policy drop;\n"
                "  }\n"
                "}\n"
            )
            _run_in(ctx.peer, ["nft", "-f", "-"], ruleset)
        else:
            tool = "ip6tables" if ctx.family == "ipv6" else "iptables"
            _run_in(ctx.peer, [tool, "-P", self.hook.upper(), "DROP"])


class NetemLoss:
    """``tc netem loss 100%`` on the tested side's egress (needs sch_netem)."""

    name = "netem-loss"
    description = "netem drops 100 % of what the tested side sends"

    def unsupported_reason(self) -> str | None:
        from .doctor import netem_missing_reason

        return netem_missing_reason()

    def apply(self, ctx: FaultContext) -> None:
        def add() -> None:
            with ctx.tested.namespace.iproute() as ipr:
                ipr.tc("add", "netem", index=ctx.tested.ifindex, handle="1:", loss=100)

        ctx.tested.namespace.run(add)


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        LinkDown(),
        PeerGone(),
        FirewallDrop("blackhole", "input", "nftables in the peer's namespace drops everything the peer receives"),
        FirewallDrop("one-way", "output", "nftables in the peer's namespace drops everything the peer sends"),
        PeerReboot(),
        NetemLoss(),
    )
}


def get_fault(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise ValueError(f"unknown fault {name!r}: choose one of {', '.join(FAULTS)}") from None
