"""The parts that touch the kernel: namespaces, the two-namespace lab, faults, capture, sock_diag, counters.

- :mod:`.namespaces` -- fd-held network namespaces, work inside them
- :mod:`.lab` -- two namespaces joined by a veth pair (:class:`Lab`)
- :mod:`.routed` -- client, router, server: the router a stateful middlebox (:class:`RoutedLab`)
- :mod:`.faults` -- ways to break the path, each owning what it means
- :mod:`.capture` -- the tested veth's frames, read live in its namespace
- :mod:`.diag` -- TCP sockets of any process in a lab namespace (sock_diag)
- :mod:`.tcpinfo`, :mod:`.counters` -- the kernel's own figures
"""

from .lab import ADDRESSES, CONNECT_TIMEOUT_S, FAMILIES, IFINDEXES, Endpoint, Lab, family_number

__all__ = ["ADDRESSES", "CONNECT_TIMEOUT_S", "FAMILIES", "IFINDEXES", "Endpoint", "Lab", "family_number"]
