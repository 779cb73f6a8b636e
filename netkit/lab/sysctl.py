"""Set a sysctl of one lab namespace and check that it held: the one way netkit writes a setting it relies on.

A rule is proved under the values the lab set, so a value the kernel did not
keep would prove something else.  The kernel can refuse one silently: a
write below or above a sysctl's range is clamped or ignored on some
kernels, and a sysctl that is not per namespace on this kernel reads back
the host's value.  Every such write is therefore read back at once, and a
difference raises :class:`netkit.errors.KernelRefused` with what to check.
"""

from __future__ import annotations

from ..errors import KernelRefused
from .lab import Endpoint


def set_sysctl(endpoint: Endpoint, name: str, value: object) -> None:
    """Write ``name`` = ``value`` in ``endpoint``'s namespace and read it back; KernelRefused if it did not hold.

    A sysctl this kernel does not have raises FileNotFoundError (the caller
    knows which feature that means).
    """
    held = endpoint.sysctl(name, value)
    if held != str(value):
        raise KernelRefused(
            f"{name} in {endpoint.namespace.name} holds {held} after netkit wrote {value}: this kernel did not keep "
            f"it (outside the range the kernel accepts, or not per network namespace here); choose a value inside "
            f"the range Documentation/networking/*sysctl*.rst gives for {name}, or a kernel that keeps it per namespace")


__all__ = ["set_sysctl"]
