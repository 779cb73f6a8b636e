"""The observer's waits, on plain sockets (no root, no lab)."""

import socket
import time

from netkit.scenario.observe import _peer_dies_within


def test_a_living_peer_is_not_seen_dead_even_beside_a_dead_socket():
    """Regression: the peer's grace wait shared a poller with the dead tested socket, always ready, so a living
    peer was "seen" dead at once with no error ("peer error none, 0.000251 s apart" in a gate run under load)."""
    dead, _gone = socket.socketpair()
    _gone.close()  # `dead` now reports POLLHUP at once, as the tested socket does after its death
    peer, partner = socket.socketpair()
    try:
        started = time.monotonic()
        assert not _peer_dies_within(peer, 0.2)
        assert time.monotonic() - started >= 0.19  # it waited the whole grace, not woken by `dead`
        partner.close()
        assert _peer_dies_within(peer, 0.2)
    finally:
        for s in (dead, peer):
            s.close()
