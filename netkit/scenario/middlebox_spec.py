"""What a routed (middlebox) scenario may ask for: the checks ``Scenario`` runs on its routed fields. No I/O.

It names :class:`.spec.Scenario` for type checking only: :mod:`.spec` calls it, and imports nothing back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..enums import FaultName, State, Topology
from ..errors import SettingError
from ..keepalive import whole_in
from ..model.middlebox import MAX_MIDDLEBOX_TIMEOUT_S, middlebox_case

if TYPE_CHECKING:
    from .spec import Scenario


def check_middlebox(s: Scenario) -> None:
    """Raise SettingError for a routed field that makes no sense (or a routed field without the routed topology)."""
    timeout = s.middlebox_timeout_s
    if s.topology == Topology.DIRECT:
        if s.fault == FaultName.MIDDLEBOX_FORGETS:
            raise SettingError("fault", s.fault, "the middlebox that forgets needs a router between the two ends: "
                                                 "use topology='routed' with a middlebox_timeout_s")
        for name, value, default in (("middlebox_timeout_s", timeout, None), ("middlebox", s.middlebox, "drop"),
                                     ("masquerade", s.masquerade, False)):
            if value != default:
                raise SettingError(name, value, "it applies to the routed topology only: add topology='routed'")
        return
    if s.fault != FaultName.MIDDLEBOX_FORGETS:
        raise SettingError("fault", s.fault, f"the routed topology proves the middlebox that forgets: use "
                                             f"fault={FaultName.MIDDLEBOX_FORGETS!r}")
    if not whole_in(timeout, 1, MAX_MIDDLEBOX_TIMEOUT_S):
        raise SettingError("middlebox_timeout_s", timeout, f"give the router's idle timeout in whole seconds, "
                                                           f"1..{MAX_MIDDLEBOX_TIMEOUT_S} (the kernel's default, 5 days)")
    if not isinstance(s.masquerade, bool):
        raise SettingError("masquerade", s.masquerade, "use True or False")
    if s.state != State.IDLE:
        raise SettingError("state", s.state, "the middlebox scenarios are about idle connections: use state='idle'")
    if s.connections != 1:
        raise SettingError("connections", s.connections, "the routed topology carries one connection: use 1")
    if s.keepalive.user_timeout_ms is not None:
        raise SettingError("user_timeout_ms (TCP_USER_TIMEOUT)", s.keepalive.user_timeout_ms,
                           "netkit's middlebox rules are for keepalive alone: leave it unset")
    case = middlebox_case(s.keepalive, timeout)
    if isinstance(case, str):
        raise SettingError("keepalive", f"{s.keepalive.idle}/{s.keepalive.intvl}/{s.keepalive.cnt}", case)


__all__ = ["check_middlebox"]
