"""One poll helper: wait for a condition, sampling it, until a deadline (or a cancel).

netkit waits on the kernel in many places (a probe's answer, a closed window,
a namespace's end, a socket in sock_diag, a program listening); each is a
condition sampled every few ms.  They all go through :func:`wait_until`, so
the deadline, the cancel and the message on timeout behave the same way
everywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import ScenarioCancelled, WaitTimeout

T = TypeVar("T")

__all__ = ["Drop", "WaitTimeout", "wait_until"]


def wait_until(
    check: Callable[[], T | None],
    timeout_s: float,
    interval_s: float,
    *,
    what: str = "the condition",
    cancel: threading.Event | None = None,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Return ``check()``'s first truthy value; sample every ``interval_s`` for up to ``timeout_s``.

    ``check`` may raise to end the wait (a program that exited, say).  On
    timeout a :class:`WaitTimeout` names ``what`` (or ``on_timeout()``'s
    sentence); a set ``cancel`` raises ScenarioCancelled.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise WaitTimeout(on_timeout() if on_timeout else f"{what}: not within {timeout_s:g} s")
        if cancel is not None:
            if cancel.wait(interval_s):
                raise ScenarioCancelled(f"cancelled while waiting for {what}")
        else:
            time.sleep(interval_s)


class Drop:
    """True on the first sample lower than the one before: how netkit sees a keepalive probe answered.

    A reply is a received segment, so the time since the last segment
    received (``tcpi_last_ack_recv``, from getsockopt or sock_diag) falls
    back towards zero; until then it only grows.
    """

    def __init__(self, first: int | None = None) -> None:
        self.previous = first

    def __call__(self, now: int) -> bool:
        dropped = self.previous is not None and now < self.previous
        self.previous = now
        return dropped
