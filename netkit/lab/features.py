"""Which of a scenario's kernel features this kernel has, asked of the kernel itself (never of its version).

A feature is present when the kernel shows it: a per-namespace sysctl's
file under ``/proc/sys`` (read, never written: in the initial namespace only
its existence is looked at), a socket option that ``getsockopt`` knows on a
socket that is never connected.  A backported feature is therefore found on
an "old" kernel, and a feature compiled out is missing on a new one.  A
missing feature is a :class:`netkit.errors.FeatureMissing`
(:func:`netkit.scenario.requirements.require_supported`): a skip in tests
and in the gate, exit 4 (cannot run here) in the CLI, with the reason.
"""

from __future__ import annotations

import errno
import os
import socket


def has_sysctl(name: str) -> bool:
    """Whether this kernel has the (per-namespace) sysctl ``name``: its file exists in this process's /proc/sys."""
    return os.path.exists("/proc/sys/" + name.replace(".", "/"))


def tcp_option(sock: socket.socket, option: int) -> int | None:
    """``getsockopt(IPPROTO_TCP, option)``; None where this kernel does not know the option (ENOPROTOOPT)."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, option)
    except OSError as exc:
        if exc.errno == errno.ENOPROTOOPT:
            return None
        raise


def has_tcp_option(option: int) -> bool:
    """Whether this kernel knows the TCP socket option ``option`` (asked of a socket that is never connected)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return tcp_option(sock, option) is not None


__all__ = ["has_sysctl", "has_tcp_option", "tcp_option"]
