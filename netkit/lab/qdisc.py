"""What this kernel's traffic control can do, probed in a throwaway namespace (never the host's).

:mod:`netkit.doctor` reports it and the netem-loss and local-drop faults skip
on it: a kernel built without a qdisc (sch_netem is missing on some) answers
ENOENT.  The fifo qdiscs are always built in (they are the kernel's default
for a device with a queue), so ``pfifo`` is missing only where traffic
control itself is (CONFIG_NET_SCHED).
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable

from ..errors import EnvironmentUnusable
from .namespaces import Namespace


def qdisc_probe(kind: str, **options: object) -> Callable[[], str]:
    """A probe (for :mod:`netkit.doctor` and the skips): can a ``kind`` qdisc be added, in a throwaway namespace?"""
    def probe() -> str:
        namespace = Namespace.create("nk-doctor")
        try:
            def add() -> None:
                with namespace.iproute() as ipr:
                    lo = ipr.link_lookup(ifname="lo")[0]
                    ipr.link("set", index=lo, state="up")
                    ipr.tc("add", kind, index=lo, handle="1:", **options)
            try:
                namespace.run(add)
            except Exception as exc:
                if getattr(exc, "code", None) == errno.ENOENT:
                    raise EnvironmentUnusable(f"the kernel has no sch_{kind} (CONFIG_NET_SCH_{kind.upper()})") from None
                raise
            return f"qdisc {kind} can be added"
        finally:
            namespace.close()

    return probe


@functools.cache
def qdisc_missing_reason(kind: str, **options: object) -> str | None:
    """None if a ``kind`` qdisc with ``options`` can be added here, else why not (for skips); asked once per process."""
    try:
        qdisc_probe(kind, **options)()
    except Exception as exc:  # any failure means: not this qdisc for us
        return str(exc)
    return None
