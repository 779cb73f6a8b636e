"""Whether this machine can run a scenario: its fault, and the kernel features its settings need.

Asked before any lab is built (the gate asks in its parent, so a skip costs
no worker), and again where the scenario runs.  The features are asked of
the kernel itself (:mod:`netkit.lab.features`), never of its version.
"""

from __future__ import annotations

import os

from ..enums import KeepaliveVia, RtoMinVia, State
from ..errors import FeatureMissing
from ..lab.faults import fault_object
from ..lab.features import has_sysctl, has_tcp_option
from ..model.retracted import SHRINK_WINDOW_SYSCTL
from ..model.rto import RTO_MAX_MS_SYSCTL, RTO_MIN_US_SYSCTL, TCP_RTO_MAX_MS
from .spec import Scenario


def missing_feature(scenario: Scenario) -> str | None:
    """Why this kernel cannot run ``scenario``'s settings (None: it can); the fault is asked separately."""
    release = os.uname().release
    if scenario.state == State.RETRACTED_WINDOW and not has_sysctl(SHRINK_WINDOW_SYSCTL):
        return (f"this kernel ({release}) has no {SHRINK_WINDOW_SYSCTL} (added in Linux 6.5): a receiver never takes "
                "back window it offered, so no window can be retracted with data in flight")
    if scenario.rto_max_ms is not None:
        if scenario.rto_max_via == KeepaliveVia.SYSCTL and not has_sysctl(RTO_MAX_MS_SYSCTL):
            return (f"this kernel ({release}) has no {RTO_MAX_MS_SYSCTL} (added in Linux 6.15): the maximum RTO is "
                    "the constant TCP_RTO_MAX, 120 s")
        if scenario.rto_max_via == KeepaliveVia.SOCKET and not has_tcp_option(TCP_RTO_MAX_MS):
            return (f"this kernel ({release}) does not know the socket option TCP_RTO_MAX_MS (added in Linux 6.15; "
                    "getsockopt answers ENOPROTOOPT): the maximum RTO is the constant TCP_RTO_MAX, 120 s")
    if scenario.rto_min_us is not None and scenario.rto_min_via == RtoMinVia.SYSCTL and not has_sysctl(RTO_MIN_US_SYSCTL):
        return (f"this kernel ({release}) has no {RTO_MIN_US_SYSCTL} (added in Linux 6.11): the minimum RTO is "
                "TCP_RTO_MIN, 200 ms, or a route's rto_min")
    return None


def require_supported(scenario: Scenario) -> None:
    """Raise FeatureMissing (a skip, in tests) if this machine cannot run ``scenario``: its fault or its settings."""
    fault_object(scenario.fault).require_supported()
    reason = missing_feature(scenario)
    if reason:
        raise FeatureMissing(f"{scenario.id} needs a kernel feature this one lacks: {reason}")


__all__ = ["missing_feature", "require_supported"]
