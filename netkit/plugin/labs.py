"""The plugin's lab fixtures: a lab, a connected socket pair in it, a routed lab with a stateful middlebox.

Each is function-scoped and torn down after its test whatever happened; each
skips the test, with the reason, when labs cannot be built here
(:func:`netkit.plugin.options.skip_unless_privileged`).  The small fixtures
(``netkit_family``, ``netkit_middlebox``) are there to be overridden.

The lab (and pyroute2 with it) is imported when a fixture is first used, not
when the plugin loads: the plugin module is loaded in every pytest session.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from ..errors import FeatureMissing
from .options import skip_unless_privileged
from .record import RECORD_KEY

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.routed import MiddleboxConfig, RoutedLab


@pytest.fixture
def netkit_family() -> str:
    """Name: netkit_family. Scope: function. Depends: nothing.

    The address family of ``netkit_connection``: "ipv4" by default. Cover both with
    ``@pytest.mark.parametrize("netkit_family", ["ipv4", "ipv6"])``.
    """
    return "ipv4"


@pytest.fixture
def netkit_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """Name: netkit_lab. Scope: function. Depends: root.

    A fresh two-namespace lab (server, client) joined by a veth pair, with
    IPv4 and IPv6 addresses; torn down after the test, whatever happened::

        def test_reach(netkit_lab):
            s = netkit_lab.server.socket("ipv4")
    """
    from ..lab.lab import Lab

    skip_unless_privileged(request.config)
    with Lab() as lab:
        request.node.stash[RECORD_KEY].labs.append(lab)
        yield lab


@pytest.fixture
def netkit_middlebox() -> MiddleboxConfig:
    """Name: netkit_middlebox. Scope: function. Depends: nothing.

    The router of ``netkit_routed_lab``: conntrack established timeout 2 s,
    a forgotten flow's packets dropped, no masquerade, no mid-stream pick-up.
    Override it (or parametrize it indirectly) for another router::

        @pytest.fixture
        def netkit_middlebox():
            return MiddleboxConfig(timeout_s=5, action="reject", masquerade=True)
    """
    from ..lab.routed import MiddleboxConfig

    return MiddleboxConfig(timeout_s=2)


@pytest.fixture
def netkit_routed_lab(request: pytest.FixtureRequest, netkit_middlebox: MiddleboxConfig) -> Iterator[RoutedLab]:
    """Name: netkit_routed_lab. Scope: function. Depends: netkit_middlebox, root, the nft program.

    Three namespaces -- client, router, server -- the router forwarding
    between two veth pairs and tracking connections with the
    ``netkit_middlebox`` settings, all inside its own namespace (nftables
    table ``inet nk_middlebox``); the same API as ``netkit_lab`` (``server``,
    ``client``, ``connect``) plus ``router``, ``conntrack(family)`` and
    ``conntrack_entry(family, ports)``; torn down after the test, whatever
    happened.  Skipped with the reason where the machine lacks nft or conntrack::

        def test_nat_forgets(netkit_routed_lab):
            server, client = netkit_routed_lab.connect("ipv4")
            assert netkit_routed_lab.conntrack("ipv4")[0].state == "ESTABLISHED"
    """
    from ..lab.faults import MIDDLEBOX_FORGETS
    from ..lab.routed import RoutedLab

    skip_unless_privileged(request.config)
    reason = MIDDLEBOX_FORGETS.unsupported_reason()
    if reason:
        pytest.skip(reason)
    try:
        lab = RoutedLab(netkit_middlebox).__enter__()
    except FeatureMissing as exc:
        pytest.skip(str(exc))
    try:
        request.node.stash[RECORD_KEY].labs.append(lab)
        yield lab
    finally:
        lab.close()


@dataclass
class Connection:
    """A connected TCP pair in a lab: ``server`` is the accepted socket."""

    lab: Lab
    family: str
    server: socket.socket
    client: socket.socket


@pytest.fixture
def netkit_connection(netkit_lab: Lab, netkit_family: str) -> Connection:
    """Name: netkit_connection. Scope: function. Depends: netkit_lab, netkit_family.

    A connected server/client TCP pair across the lab's veth::

        def test_keepalive(netkit_connection):
            KeepaliveSettings(1, 1, 3).apply(netkit_connection.server)
            netkit_connection.lab.client.set_link("down")
    """
    server, client = netkit_lab.connect(netkit_family)
    return Connection(netkit_lab, netkit_family, server, client)
