"""What each fault is, as data: its name, what it does, its twist to the kernel's rule, what the wire can see.

A :class:`netkit.scenario.Scenario` names its fault and the model reads the
fault's rule (:class:`netkit.model.FaultRule`) without anything touching the
kernel, so building a scenario and predicting its death need no lab.  How
each fault breaks the path (and whether this machine can) is
:mod:`netkit.lab.faults`, whose fault objects carry these records.

``wire_blind`` says why the tested veth's packet tap cannot see the probes
after the fault (None: it can), so that the wire check is skipped for the
right reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from .enums import FaultName, State
from .errors import UnknownChoice
from .model.fault_rule import DataPath, FaultRule


@dataclass(frozen=True)
class FaultInfo:
    """One fault, as what it is (not how it is done)."""

    name: FaultName
    description: str
    rule: FaultRule  # its twist to the kernel's rule and the expected error
    wire_blind: str | None = None  # why the tested veth's tap cannot see the probes after it; None: it can


LINK_DOWN = FaultInfo(
    FaultName.LINK_DOWN, "the peer's veth end is set down (no carrier on the tested end)", FaultRule(DataPath.LOCAL),
    "with no carrier on the tested veth the local qdisc discards every probe before any packet tap")
PEER_GONE = FaultInfo(
    FaultName.PEER_GONE, "the peer's namespace is destroyed (its veth pair vanishes with it)",
    FaultRule(DataPath.NO_ROUTE, soft_error_ipv6="ENETUNREACH"),
    "the tested veth vanished with the peer's namespace: the probes fail in the route lookup and never reach a device")
BLACKHOLE = FaultInfo(  # dropped at the peer: everything passes the tested veth's tap first
    FaultName.BLACKHOLE, "nftables in the peer's namespace drops everything the peer receives", FaultRule(DataPath.LOST))
ONE_WAY = FaultInfo(
    FaultName.ONE_WAY, "nftables in the peer's namespace drops everything the peer sends",
    FaultRule(DataPath.LOST, peer_dies_too=True))
PEER_REBOOT = FaultInfo(
    FaultName.PEER_REBOOT, "the peer forgets the connection (silent close) but its address still answers",
    FaultRule(DataPath.RESET))
NETEM_LOSS = FaultInfo(
    FaultName.NETEM_LOSS, "netem drops 100 % of what the tested side sends", FaultRule(DataPath.LOST),
    "netem drops them in the tested side's own qdisc, before the packet tap (dev_queue_xmit_nit)")
LOCAL_DROP = FaultInfo(
    FaultName.LOCAL_DROP, "the tested side's own qdisc refuses every packet (pfifo limit 0 on its veth end; the link "
    "stays up)", FaultRule(DataPath.REFUSED),
    "the tested side's own qdisc refuses them at enqueue, before the packet tap (dev_queue_xmit_nit)")
MIDDLEBOX_FORGETS = FaultInfo(  # the tested veth sees the probes leave and, with reject, the router's RST arrive
    FaultName.MIDDLEBOX_FORGETS,
    "the router's conntrack entry for the idle flow expires (nf_conntrack_tcp_timeout_established)",
    FaultRule(DataPath.LOST))  # drop; reject is the middlebox model's (netkit.model.middlebox)

PEER_HANGS = FaultInfo(  # nothing breaks: the peer's kernel answers every probe and retransmission
    FaultName.PEER_HANGS,
    "nothing breaks: the peer stays up reading nothing, its kernel answering every segment with a zero window",
    FaultRule(DataPath.ANSWERED))
WINDOW_STATES = (State.ZERO_WINDOW, State.RETRACTED_WINDOW)  # the states a hung peer can end: a closed window, data waiting

# The ways to break the direct (two-namespace) lab, in the order every listing shows them; each joins the
# gate's fault matrix by being here.  MIDDLEBOX_FORGETS is not one: a routed scenario names it.
DIRECT_FAULTS: dict[str, FaultInfo] = {
    f.name: f for f in (LINK_DOWN, PEER_GONE, BLACKHOLE, ONE_WAY, PEER_REBOOT, NETEM_LOSS, LOCAL_DROP)}


# What check-client may break: a client program is checked for noticing a dead server, and a local drop refuses
# the client's own probes, which keepalive never counts (netkit.model.local_drop): there is nothing to notice.
NOTICEABLE_FAULTS: dict[str, FaultInfo] = {
    name: f for name, f in DIRECT_FAULTS.items() if f.rule.data_path is not DataPath.REFUSED}


# Faults only some scenarios may name: not ways to break the direct lab, so not in its fault matrix.
NAMED_ONLY: dict[str, FaultInfo] = {f.name: f for f in (MIDDLEBOX_FORGETS, PEER_HANGS)}


def fault_info(name: object) -> FaultInfo:
    """The fault a Scenario may name: a direct lab's, the routed lab's, or a hung peer; else an UnknownChoice."""
    found = NAMED_ONLY.get(name) if isinstance(name, str) else None
    return found or direct_fault_info(name)


def direct_fault_info(name: object) -> FaultInfo:
    """One of the ways to break the direct lab; else an UnknownChoice naming them."""
    found = DIRECT_FAULTS.get(name) if isinstance(name, str) else None  # not a str: a list from a TOML file, say
    if found is None:
        raise UnknownChoice(f"unknown fault {name!r}: choose one of {', '.join(DIRECT_FAULTS)}")
    return found


__all__ = ["BLACKHOLE", "DIRECT_FAULTS", "LINK_DOWN", "LOCAL_DROP", "MIDDLEBOX_FORGETS", "NAMED_ONLY", "NETEM_LOSS",
           "NOTICEABLE_FAULTS", "ONE_WAY", "PEER_GONE", "PEER_HANGS", "PEER_REBOOT", "WINDOW_STATES", "FaultInfo",
           "direct_fault_info", "fault_info"]
