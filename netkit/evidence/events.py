"""One timeline event type for scenarios, the wire and program audits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..enums import EventKind

WIRE, SAMPLED, PROCEDURE = "wire", "sampled", ""


@dataclass(frozen=True)
class Event:
    """Something the kernel (or the procedure) did, timed in s from the clock's anchor.

    ``source``: "wire" (a frame's kernel timestamp on the tested veth),
    "sampled" (``tcp_info`` or sock_diag polled) or "" (the procedure itself).
    ``kind`` says what it is (:class:`netkit.enums.EventKind`), set by whoever made it.
    """

    t_s: float
    what: str
    source: str = PROCEDURE
    kind: EventKind = EventKind.OTHER

    def to_dict(self, with_source: bool = True, with_kind: bool = True) -> dict[str, Any]:
        """As JSON: ``{"t_s", "what", "source", "kind"}``; without the source or kind where a format never had it."""
        data: dict[str, Any] = {"t_s": self.t_s, "what": self.what}
        if with_source:
            data["source"] = self.source
        if with_kind:
            data["kind"] = self.kind
        return data


# The names the three former types had; all three are this one now.
TimelineEvent = WireEvent = Event
