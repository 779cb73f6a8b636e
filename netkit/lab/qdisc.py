"""What this kernel's traffic control can do, probed in a throwaway namespace (never the host's).

:mod:`netkit.doctor` reports it and the netem-loss fault skips on it: a
kernel built without a qdisc (sch_netem is missing on some) answers ENOENT.
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


@functools.lru_cache(maxsize=1)
def netem_missing_reason() -> str | None:
    """None if a netem qdisc can be added here, else why not (for skips)."""
    try:
        qdisc_probe("netem", loss=100)()
    except Exception as exc:  # any failure means: no netem for us
        return str(exc)
    return None
