"""Ways to break the path between the lab's two ends.

Each fault is a small strategy object: a name, what it does, whether this
machine supports it (``unsupported_reason``: None, or why not -- tests turn
that into a skip), and ``apply(lab)``.  The server side is the one under test;
faults break the *client* (the peer) away from it.
"""

from __future__ import annotations

from typing import Protocol

from .lab import Lab


class Fault(Protocol):
    name: str
    description: str

    def unsupported_reason(self) -> str | None: ...

    def apply(self, lab: Lab) -> None: ...


class LinkDown:
    """Set the peer's (client's) veth end down, inside the client namespace.

    The server's end loses carrier; its probes are counted by the kernel but
    discarded by the local qdisc before any packet tap (KERNEL-NOTES, trap 4).
    Right after the break we ask for the server's own link so the kernel
    processes the carrier change now, not up to a second later (trap 1).
    """

    name = "link-down"
    description = "the peer's veth end is set down (no carrier on the server's end)"

    def unsupported_reason(self) -> str | None:
        return None  # veth is checked when the lab is built

    def apply(self, lab: Lab) -> None:
        lab.client.set_link("down")
        lab.server.refresh_link()


FAULTS: dict[str, Fault] = {fault.name: fault for fault in (LinkDown(),)}


def get_fault(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise ValueError(f"unknown fault {name!r}: choose one of {', '.join(FAULTS)}") from None
