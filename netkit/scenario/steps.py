"""The steps every scenario procedure takes the same way: settings written and read back, counters counted.

A procedure proves a rule under the settings it made, so each setting is
checked where it is made: the keepalive options on the tested socket (per
socket, or inherited from the namespace's sysctls) and every sysctl written
into a lab namespace (:func:`netkit.lab.sysctl.set_sysctl`).  A value the
kernel did not keep raises :class:`netkit.errors.KernelRefused`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from ..enums import KeepaliveVia, RtoMinVia, State
from ..errors import KernelRefused
from ..keepalive import KEEPALIVE_SYSCTLS, RETRIES2_SYSCTL, read_keepalive
from ..lab import counters
from ..lab.lab import RTAX_RTO_MIN, Endpoint
from ..lab.namespaces import Namespace
from ..lab.sysctl import set_sysctl
from ..model.retracted import SHRINK_WINDOW_SYSCTL
from ..model.rto import RTO_MAX_MS_SYSCTL, RTO_MIN_US_SYSCTL, TCP_RTO_MAX_MS, jiffies_to_msecs, msecs_to_jiffies
from .spec import Scenario


def write_keepalive_sysctls(scenario: Scenario, endpoint: Endpoint) -> None:
    """Keepalive from the namespace (``keepalive_via="sysctl"``): its three sysctls, before the connection."""
    if scenario.keepalive_via != KeepaliveVia.SYSCTL:
        return
    for name, sysctl in KEEPALIVE_SYSCTLS.items():
        set_sysctl(endpoint, sysctl, getattr(scenario.keepalive, name))


def write_retries2(scenario: Scenario, endpoint: Endpoint) -> None:
    """The scenario's ``tcp_retries2`` in the tested namespace, if it sets one."""
    if scenario.retries2 is not None:
        set_sysctl(endpoint, RETRIES2_SYSCTL, scenario.retries2)


def let_the_peer_retract(scenario: Scenario, peer: Endpoint) -> None:
    """A retracted window: ``net.ipv4.tcp_shrink_window`` = 1 in the *peer's* namespace, which takes the window back.

    Without it ``tcp_select_window`` never offers less than it offered
    before (it keeps the old right edge and counts TCPWantZeroWindowAdv), so
    the sender's window never reads zero with data in flight.
    """
    if scenario.state == State.RETRACTED_WINDOW:
        set_sysctl(peer, SHRINK_WINDOW_SYSCTL, 1)


def write_rto_sysctls(scenario: Scenario, endpoint: Endpoint) -> None:
    """The scenario's RTO bounds that live in the tested namespace, before the connection: new sockets read them.

    ``tcp_init_sock`` copies ``tcp_rto_min_us`` and ``tcp_rto_max_ms`` into
    the socket when it is made (an accepted socket inherits them from its
    listener, made after this).
    """
    if scenario.rto_min_us is not None and scenario.rto_min_via == RtoMinVia.SYSCTL:
        set_sysctl(endpoint, RTO_MIN_US_SYSCTL, scenario.rto_min_us)
    if scenario.rto_max_ms is not None and scenario.rto_max_via == KeepaliveVia.SYSCTL:
        set_sysctl(endpoint, RTO_MAX_MS_SYSCTL, scenario.rto_max_ms)


def route_rto_min(scenario: Scenario, tested: Endpoint, peer: Endpoint) -> None:
    """The minimum RTO on the tested side's route to its peer (``rto_min_via="route"``), before the connection.

    ``tcp_rto_min()`` prefers a route's RTAX_RTO_MIN over the socket's
    ``icsk_rto_min`` when the metric is locked, which ``ip route ... rto_min``
    always does; the socket reads it through its cached route, so the route
    must be there before the connection.  Read back from the kernel.
    """
    if scenario.rto_min_us is None or scenario.rto_min_via != RtoMinVia.ROUTE:
        return
    ms, peer_address = scenario.rto_min_us // 1000, peer.address(scenario.family)
    tested.route_rto_min(scenario.family, peer_address, ms)
    held = tested.route_metrics(scenario.family, peer_address)
    if held.get("RTAX_RTO_MIN") != ms or not held.get("RTAX_LOCK", 0) & (1 << RTAX_RTO_MIN):
        raise KernelRefused(f"the tested side's route to {peer_address} holds the metrics {held} after netkit set a "
                            f"locked rto_min of {ms} ms: the kernel did not keep it")


def set_rto_max(scenario: Scenario, sock: socket.socket, hz: int) -> None:
    """The tested socket's maximum RTO: set with TCP_RTO_MAX_MS (``rto_max_via="socket"``), read back either way.

    The kernel keeps ``msecs_to_jiffies(ms)`` and reads back
    ``jiffies_to_msecs`` of it: a value that is not a whole number of jiffies
    reads back rounded up, and that is what the model uses.
    """
    if scenario.rto_max_ms is None:
        return
    if scenario.rto_max_via == KeepaliveVia.SOCKET:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, scenario.rto_max_ms)
    held = sock.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS)
    wanted = jiffies_to_msecs(msecs_to_jiffies(scenario.rto_max_ms, hz), hz)
    if held != wanted:
        where = "TCP_RTO_MAX_MS" if scenario.rto_max_via == KeepaliveVia.SOCKET else f"{RTO_MAX_MS_SYSCTL} (sysctl)"
        raise KernelRefused(f"the tested socket's TCP_RTO_MAX_MS reads {held} ms after netkit set {where} to "
                            f"{scenario.rto_max_ms} ms (expected {wanted}): the kernel did not apply it")


def enable_keepalive(scenario: Scenario, sock: socket.socket) -> None:
    """Keepalive on the tested socket, per socket or from the namespace's sysctls, read back either way.

    From the sysctls, SO_KEEPALIVE must come after them: the timer is armed
    with the values they hold at that moment (written before the connection).
    """
    k = scenario.keepalive
    if scenario.keepalive_via == KeepaliveVia.SOCKET:
        k.apply(sock)  # sets, reads back, raises KernelRefused
        return
    if k.user_timeout_ms is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, k.user_timeout_ms)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    held = read_keepalive(sock)
    wanted = (k.idle, k.intvl, k.cnt, held.user_timeout_ms if k.user_timeout_ms is None else k.user_timeout_ms)
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) or (
            held.idle, held.intvl, held.cnt, held.user_timeout_ms) != wanted:
        raise KernelRefused(f"the tested socket holds {held} after SO_KEEPALIVE under the namespace's sysctls "
                            f"{k}: the kernel did not apply them to the socket; run with keepalive_via='socket' "
                            "to set them on the socket instead")


@dataclass(frozen=True)
class Counted:
    """A namespace's TcpExt counters from one moment on (:meth:`since` gives what each grew by)."""

    namespace: Namespace
    names: tuple[str, ...]
    before: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, namespace: Namespace, names: tuple[str, ...]) -> Counted:
        return cls(namespace, names, counters.tcpext_counts(namespace, names))

    def since(self) -> dict[str, int]:
        return counters.delta(self.before, counters.tcpext_counts(self.namespace, self.names))


__all__ = ["Counted", "enable_keepalive", "let_the_peer_retract", "route_rto_min", "set_rto_max",
           "write_keepalive_sysctls", "write_retries2", "write_rto_sysctls"]
