"""What a scenario may ask of the retransmission timer's bounds: the checks ``Scenario`` runs on them. No I/O.

The maximum RTO (Linux 6.15: the ``TCP_RTO_MAX_MS`` socket option and the
``net.ipv4.tcp_rto_max_ms`` sysctl) and the minimum (Linux 6.11: the
``net.ipv4.tcp_rto_min_us`` sysctl; any kernel: a route's locked ``rto_min``
metric) change only the timers that back off
from the RTO: the retransmission and persist timers of data in flight.
Keepalive and the handshake's SYN timer do not read them the way netkit's
rules would need, so a scenario asks for them only in the data states.
Whether this kernel has them is asked where the scenario runs
(:func:`netkit.lab.features.missing_feature`).

It names :class:`.spec.Scenario` for type checking only: :mod:`.spec` calls it, and imports nothing back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..enums import KeepaliveVia, RtoMinVia, State
from ..errors import SettingError
from ..keepalive import whole_in
from ..model.rto import RTO_MAX_MS_RANGE

if TYPE_CHECKING:
    from .spec import Scenario

RTO_MIN_US_RANGE = (10_000, 1_000_000)  # netkit's: 10 ms .. 1 s (the kernel accepts 1 us and up)
DATA_STATES = (State.UNACKED, State.ZERO_WINDOW, State.RETRACTED_WINDOW)


def check_rto_bounds(s: Scenario) -> None:
    """Raise SettingError for an RTO bound out of range, or one given where no rule of netkit's reads it."""
    if s.rto_max_ms is None and s.rto_max_via != KeepaliveVia.SOCKET:
        raise SettingError("rto_max_via", s.rto_max_via, "it says where rto_max_ms is set: give rto_max_ms too")
    if s.rto_min_us is None and s.rto_min_via != RtoMinVia.SYSCTL:
        raise SettingError("rto_min_via", s.rto_min_via, "it says where rto_min_us is set: give rto_min_us too")
    for name, value, (low, high), unit in (("rto_max_ms (TCP_RTO_MAX_MS, net.ipv4.tcp_rto_max_ms)", s.rto_max_ms,
                                            RTO_MAX_MS_RANGE, "ms, the kernel's range"),
                                           ("rto_min_us (net.ipv4.tcp_rto_min_us, a route's rto_min)", s.rto_min_us,
                                            RTO_MIN_US_RANGE, "us: netkit's range (10 ms .. 1 s); the kernel accepts 1 and up")):
        if value is None:
            continue
        if not whole_in(value, low, high):
            raise SettingError(name, value, f"use a whole number {low}..{high} {unit}")
        if s.state not in DATA_STATES:
            raise SettingError(name, value, "it bounds the retransmission and persist timers: it applies to data in "
                                            f"flight (state unacked, zero-window or retracted-window), not {s.state}")
    if s.rto_min_via == RtoMinVia.ROUTE and s.rto_min_us is not None and s.rto_min_us % 1000:  # a whole number now
        raise SettingError("rto_min_us", s.rto_min_us, "a route's rto_min is whole milliseconds (RTAX_RTO_MIN): "
                                                       "use a multiple of 1000 us")


__all__ = ["RTO_MIN_US_RANGE", "check_rto_bounds"]
