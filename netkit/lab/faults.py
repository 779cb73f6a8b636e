"""Ways to break the path between the side under test and its peer.

Each fault is one object that owns everything it means: what it is (its
``info``, a :class:`netkit.faults.FaultInfo`: the name, what it does, whether
the tested veth's packet tap can see the probes after it, its twist to the
kernel's rule and to the expected error -- plain data that a scenario and the
pure model read without this module), how it breaks the path (``apply(ctx)``,
with ``prepare``/``settle`` around it), and whether this machine supports it
(``unsupported_reason``: None, or why not -- tests turn that into a skip).
Faults act on the *peer* of the side whose keepalive is tested (normally the
client; the server in the "client's view" scenarios), through a
:class:`FaultContext`.

Everything a fault creates lives inside the lab's namespaces (nft tables are
named ``nk_fault``) and vanishes with them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from typing import Any

from pyroute2.nftables.main import NFTables

from .. import faults
from ..enums import FaultName
from ..errors import FeatureMissing
from ..faults import FaultInfo
from ..model.neighbour import neighbour_sysctls
from ..waiting import wait_until
from .lab import Endpoint, Lab
from .proc import holders
from .qdisc import qdisc_missing_reason
from .sysctl import set_sysctl
from .tcpinfo import tcp_info

TCP_REPAIR = 19  # include/uapi/linux/tcp.h
NFT_TABLE = "nk_fault"
NFPROTO_INET = 1
NF_DROP = 0
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
    inode: int = 0  # the peer namespace's identity, once a fault needs it
    armed: Any = None  # what a fault's prepare() set up for its apply()


class Fault:
    """A way to break the path, and everything it means (module docstring)."""

    info: FaultInfo  # what the fault is: name, description, its rule (``info.rule``), ``info.wire_blind``

    @property
    def name(self) -> FaultName:
        return self.info.name

    @property
    def description(self) -> str:
        return self.info.description

    def unsupported_reason(self) -> str | None:
        """None if this machine can apply the fault, else why not (a skip, in tests)."""
        return None

    def require_supported(self) -> None:
        """Raise FeatureMissing (a skip, in tests) if this machine cannot apply the fault."""
        reason = self.unsupported_reason()
        if reason:
            raise FeatureMissing(f"fault {self.name} is not available here: {reason}")

    def prepare(self, ctx: FaultContext) -> None:
        """Do the slow part ahead of time, so that ``apply`` is quick; most faults have nothing."""

    def apply(self, ctx: FaultContext) -> None:
        """Break the path; return as soon as the break is in effect."""
        raise NotImplementedError

    def settle(self, ctx: FaultContext) -> None:
        """Wait for (and verify) what follows the break asynchronously; most faults have nothing."""


def close_silently(sock: socket.socket) -> None:
    """Close a TCP socket without sending FIN or RST.

    In repair mode (TCP_REPAIR, CAP_NET_ADMIN) close() just drops a
    connected socket: to the other side the peer simply stops existing, as
    after a crash.  A listener (which TCP_REPAIR refuses) and a socket still
    connecting have no peer to tell anything: a plain close() sends nothing
    (``tcp_disconnect`` resets only synchronised states).
    """
    if sock.fileno() != -1 and (sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                                or tcp_info(sock).state == "SYN_SENT"):
        sock.close()
        return
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    sock.close()


class LinkDown(Fault):
    """Set the peer's veth end down, inside the peer's namespace.

    The tested side's end loses carrier; its probes are counted by the kernel
    but discarded by the local qdisc before any packet tap (docs/rules.md,
    "Link-down probes are not on the wire").  Right after the break we ask for
    the tested side's own link so the kernel processes the carrier change now,
    not up to a second later ("Linkwatch and the ifindex trap").  ``prepare`` pins the tested interface's neighbour timers
    (:data:`netkit.model.neighbour.PINNED`, the kernel's defaults) in its
    namespace: with data in flight the neighbour entry's failure, 3 x 1 s
    after the send, shapes the death, and a new device copies the host's
    table defaults, which may have been tuned.
    """

    info = faults.LINK_DOWN

    def prepare(self, ctx: FaultContext) -> None:
        settings = {**neighbour_sysctls("ipv4", ctx.tested.ifname), **neighbour_sysctls("ipv6", ctx.tested.ifname)}
        for name, value in settings.items():
            set_sysctl(ctx.tested, name, value)

    def apply(self, ctx: FaultContext) -> None:
        ctx.peer.set_link("down")
        ctx.tested.refresh_link()


class PeerGone(Fault):
    """Destroy the peer's namespace (a crashed VM, a deleted container).

    A namespace lives while anything pins it: an open socket in it keeps it,
    its veth and its answers alive (docs/rules.md, "A namespace lives while
    anything pins it").  So the peer's
    link goes down first -- the kernel frees a namespace asynchronously
    (cleanup_net, 10-300 ms under load), and until then a socket-less peer
    would answer with RSTs -- then its sockets are closed (the connection
    silently: no FIN, no RST) and netkit's fd dropped.  ``settle`` then waits
    until the namespace is really gone: no process refers to it and the
    tested side's veth end has vanished with it.
    """

    info = faults.PEER_GONE

    def apply(self, ctx: FaultContext) -> None:
        ctx.inode = ctx.peer.namespace.inode
        ctx.peer.set_link("down")
        ctx.tested.refresh_link()
        close_silently(ctx.peer_connection)
        for sock in ctx.peer_sockets:
            sock.close()
        ctx.peer.namespace.close()

    def settle(self, ctx: FaultContext) -> None:
        """Wait until the kernel has dismantled the peer's namespace.

        The proof is the tested side's veth end vanishing: nothing else deletes
        it, the kernel does so only while tearing the peer namespace down.  We
        also check that this process holds no reference any more.  (Other
        processes are not asked: once freed, a namespace's inode number is
        soon reused by a namespace another scenario creates.)
        """
        def gone() -> bool:
            return os.getpid() not in holders(ctx.inode) and not ctx.tested.link_exists()

        def still_alive() -> str:
            return (f"peer namespace still alive {GONE_TIMEOUT_S} s after its last reference was dropped "
                    f"(still referenced by this process: {os.getpid() in holders(ctx.inode)}, "
                    f"tested veth present: {ctx.tested.link_exists()})")

        wait_until(gone, GONE_TIMEOUT_S, 0.005, on_timeout=still_alive)


class PeerReboot(Fault):
    """The peer loses its TCP state while its address still answers.

    The peer's socket is dropped silently (TCP_REPAIR); the namespace, link
    and address stay.  The next segment from the tested side meets a RST.
    """

    info = faults.PEER_REBOOT

    def apply(self, ctx: FaultContext) -> None:
        close_silently(ctx.peer_connection)


def _end(proc: subprocess.Popen[Any]) -> None:
    """End a helper process we started (by its own Popen, so by our pid), and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


class FirewallDrop(Fault):
    """Drop packets in the peer's namespace with nftables (iptables as fallback).

    ``hook`` "input": everything the peer receives vanishes (a blackhole; the
    probes reach the wire). "output": the peer receives but everything it
    sends is dropped (one-way; the tested side's final RST still reaches it).

    nftables is driven through netlink (pyroute2) from a thread inside the
    peer's namespace: ``prepare`` creates table ``inet nk_fault`` ahead of
    time, ``apply`` adds the dropping base chain in about a millisecond.
    Starting the ``nft`` program instead took 100+ ms on a loaded machine --
    longer than a zero-window scenario may wait (the first window probe
    leaves ~200 ms after the window closes).  Without nf_tables, iptables is
    started ahead of time too, parked on a ``read`` that ``apply`` releases.
    """

    def __init__(self, info: FaultInfo, hook: str) -> None:
        self.info = info
        self.hook = hook

    def unsupported_reason(self) -> str | None:
        return None  # nf_tables is probed in prepare(); iptables is the fallback

    def prepare(self, ctx: FaultContext) -> None:
        try:
            ctx.peer.namespace.run(_nft, "table")
            ctx.armed = None
            return
        except Exception as exc:  # no nf_tables in this kernel: any netlink error means that
            nft_error = exc
        tool = "ip6tables" if ctx.family == "ipv6" else "iptables"
        if not shutil.which(tool):
            raise FeatureMissing(f"nftables is unusable here ({nft_error}) and {tool} is not installed: "
                                 "apt-get install iptables")
        argv = [tool, "-P", self.hook.upper(), "DROP"]
        proc = ctx.peer.namespace.popen(["/bin/sh", "-c", 'read go && exec "$@"', "netkit-fault", *argv],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ctx.lab.callback(_end, proc)  # never left parked: it would pin the peer's namespace
        ctx.armed = (argv, proc)

    def apply(self, ctx: FaultContext) -> None:
        if ctx.armed is None:
            ctx.peer.namespace.run(_nft, "chain", self.hook)
            return
        argv, proc = ctx.armed
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=10)
        if proc.returncode != 0:
            raise FeatureMissing(f"`{' '.join(argv)}` failed in {ctx.peer.namespace.name}: {(err or out).strip()}")


def _nft(what: str, hook: str = "") -> None:
    """Inside a namespace's thread: create netkit's nftables table, or a dropping base chain in it.

    pyroute2 opens its netfilter netlink socket in the calling thread, which
    is inside the lab namespace: the host's ruleset is never touched.
    """
    with NFTables(nfgen_family=NFPROTO_INET) as nft:
        if what == "table":
            nft.table("add", name=NFT_TABLE)
        else:
            nft.chain("add", table=NFT_TABLE, name=hook, hook=hook, type="filter", priority=0, policy=NF_DROP)


class NetemLoss(Fault):
    """``tc netem loss 100%`` on the tested side's egress (needs sch_netem)."""

    info = faults.NETEM_LOSS

    def unsupported_reason(self) -> str | None:
        return qdisc_missing_reason("netem", loss=100)

    def apply(self, ctx: FaultContext) -> None:
        def add() -> None:
            with ctx.tested.namespace.iproute() as ipr:
                ipr.tc("add", "netem", index=ctx.tested.ifindex, handle="1:", loss=100)

        ctx.tested.namespace.run(add)


class LocalDrop(Fault):
    """The tested side's own egress refuses every packet: ``pfifo limit 0`` as its veth end's root qdisc.

    The link stays up and the peer stays reachable; only the tested side's
    transmits fail, locally: ``pfifo_enqueue`` drops at once (with limit 0
    the fifo does not even allow the empty-queue bypass, ``TCQ_F_CAN_BYPASS``)
    and ``dev_queue_xmit`` returns NET_XMIT_DROP, which TCP takes for local
    congestion (:mod:`netkit.model.local_drop`).  The packet tap sits after
    the qdisc, so the wire shows nothing after the fault.  ``prepare`` pins
    the tested side's neighbour entry for its peer (permanent): a dynamic one
    would go stale, fail (its probes refused too) and turn the refusals into
    queued, "sent" packets after 20-odd seconds -- another rule.  The
    kernel's packetdrill test ``tcp_user_timeout_user-timeout-probe.pkt``
    uses the same qdisc.
    """

    info = faults.LOCAL_DROP

    def unsupported_reason(self) -> str | None:
        return qdisc_missing_reason("pfifo", limit=0)

    def prepare(self, ctx: FaultContext) -> None:
        ctx.tested.pin_neighbour(ctx.family, ctx.peer.address(ctx.family), ctx.peer.mac_address())

    def apply(self, ctx: FaultContext) -> None:
        def add() -> None:
            with ctx.tested.namespace.iproute() as ipr:
                ipr.tc("add", "pfifo", index=ctx.tested.ifindex, handle="1:", limit=0)

        ctx.tested.namespace.run(add)


class MiddleboxForgets(Fault):
    """The routed lab's fault (:mod:`netkit.lab.routed`): nobody breaks anything; the router forgets the idle flow.

    Not in :data:`FAULTS` (whose faults break the direct lab and join every
    matrix by existing); a routed Scenario names it.
    """

    info = faults.MIDDLEBOX_FORGETS

    def unsupported_reason(self) -> str | None:
        return None if shutil.which("nft") else "the nft program is not installed (apt-get install nftables)"

    def apply(self, ctx: FaultContext) -> None:
        """Nothing to do: time breaks the path."""


class PeerHangs(Fault):
    """A window state's fault: nobody breaks anything; the peer's application keeps reading nothing.

    Its kernel stays up and answers every window probe and retransmission
    with a zero window, so only TCP_USER_TIMEOUT can end the connection.
    Not in :data:`FAULTS`: a zero-window or retracted-window Scenario names it.
    """

    info = faults.PEER_HANGS

    def apply(self, ctx: FaultContext) -> None:
        """Nothing to do: the peer already reads nothing."""


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        LinkDown(),
        PeerGone(),
        FirewallDrop(faults.BLACKHOLE, "input"),
        FirewallDrop(faults.ONE_WAY, "output"),
        PeerReboot(),
        NetemLoss(),
        LocalDrop(),
    )
}
assert list(FAULTS) == list(faults.DIRECT_FAULTS), "one lab fault for each of netkit.faults' direct faults, in order"
MIDDLEBOX_FORGETS = MiddleboxForgets()


def get_fault(name: object) -> Fault:
    """A way to break the direct lab, by name; else an UnknownChoice naming them."""
    return FAULTS[faults.direct_fault_info(name).name]


PEER_HANGS = PeerHangs()
LAB_FAULTS: dict[str, Fault] = {**FAULTS, MIDDLEBOX_FORGETS.name: MIDDLEBOX_FORGETS,  # every fault a Scenario may name
                                PEER_HANGS.name: PEER_HANGS}


def fault_object(name: object) -> Fault:
    """The fault object for any fault a Scenario may name: the direct lab's, the routed lab's, or a hung peer."""
    return LAB_FAULTS[faults.fault_info(name).name]
