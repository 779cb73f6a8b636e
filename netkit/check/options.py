"""A program's socket options, read off its socket, and where each keepalive value comes from.

The socket is borrowed like ``netkit inspect`` does (:mod:`netkit.inspect.borrow`:
``pidfd_getfd`` + ``getsockopt`` on the copy, closed at once).  ``getsockopt``
returns the *effective* values -- ``tp->keepalive_time ?: the namespace's
sysctl`` (``keepalive_time_when()``, likewise ``keepalive_intvl_when()`` and
``keepalive_probes()``) -- so ``inspect`` cannot tell "inherited" from "set to
the same number".  Here the namespace is the lab's own, so netkit asks the
kernel instead: it moves each sysctl by one for a moment and reads the socket
again.  A value that follows the sysctl is inherited; one that does not was
set on the socket.  That is safe because the keepalive timer reads these
sysctls only when it runs (``tcp_keepalive_timer``), and the flip happens only
while sock_diag says the timer is at least ``FLIP_MARGIN_S`` away; each sysctl
is put back and read back before the next.
"""

from __future__ import annotations

import dataclasses
import errno
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import NetkitError
from ..inspect.borrow import Borrower, NotPermitted, refused_here
from ..inspect.facts import Borrowed
from ..inspect.gather import socket_fds
from ..keepalive import KEEPALIVE_SYSCTLS
from ..lab.lab import Endpoint
from ..lab.proc import owners
from ..lab.sysctl import set_sysctl
from ..tcpsocket import Sample
from .result import SET_ON_SOCKET, CheckResult, ClientCheckResult

FLIP_MARGIN_S = 0.1  # the keepalive timer must be at least this far away for the sysctl flip


@dataclass
class SocketOptions:
    """What the socket holds (None: unreadable, ``unread`` says why) and where idle/intvl/cnt come from."""

    borrowed: Borrowed | None = None
    source: dict[str, str] = field(default_factory=dict)  # field -> SET_ON_SOCKET or the sysctl it follows
    unread: str = ""
    sysctls: dict[str, int] = field(default_factory=dict)  # the namespace's keepalive sysctls, by field


def namespace_keepalive(endpoint: Endpoint) -> dict[str, int]:
    """The keepalive sysctls of ``endpoint``'s namespace, by field (idle, intvl, cnt)."""
    return {f: int(endpoint.sysctl(name)) for f, name in KEEPALIVE_SYSCTLS.items()}


def read_into(r: CheckResult | ClientCheckResult, pid: int, sample: Sample, endpoint: Endpoint,
              say: Callable[[str], None]) -> SocketOptions:
    """Read the options of ``sample``'s socket into the audit's result (``options`` and ``options_from``, or why
    not: ``options_unread``), say them, and return what was found (the namespace's sysctls too).

    The keepalive timer's distance is counted from the start of the sample's
    dump: the latest its expiry can have been read, so the nearest the timer
    can be (the sysctl flip needs it far enough).
    """
    sock = sample.sock
    assert sock is not None
    due = sock.expires_ms / 1000 - (time.monotonic() - sample.start) if sock.timer == "keepalive" else None
    found = read_options(pid, sock.inode, endpoint, due)
    if found.borrowed is None:
        r.options_unread = found.unread
        say(f"socket options: not read ({found.unread})")
        return found
    b = found.borrowed
    r.options, r.options_from = dataclasses.asdict(b), found.source
    say(f"socket options (pidfd_getfd + getsockopt): SO_KEEPALIVE {'on' if b.keepalive else 'off'}, "
        f"idle/intvl/cnt {b.idle}/{b.intvl}/{b.cnt}, TCP_USER_TIMEOUT {b.user_timeout_ms or 'not set'}")
    return found


def read_options(pid: int, inode: int, endpoint: Endpoint, timer_due_s: float | None) -> SocketOptions:
    """Borrow socket ``inode`` from ``pid`` (or a process it runs in); read it; prove each value's source.

    ``timer_due_s``: how far away the socket's keepalive timer is (None: no
    keepalive timer); the sources are proved only when it is far enough.
    """
    found = SocketOptions(sysctls=namespace_keepalive(endpoint))
    holders = owners([inode])[inode]
    holder = pid if pid in holders else (holders[0] if holders else None)
    fd = (socket_fds(holder) or {}).get(inode) if holder is not None else None
    if holder is None or fd is None:
        found.unread = "no process holds the socket any more"
        return found
    try:
        with Borrower(holder) as borrower:
            def read() -> Borrowed:
                options = borrower.options(fd, inode)
                if options is None:
                    raise NetkitError(f"fd {fd} of pid {holder} is no longer the socket netkit follows")
                return options

            found.borrowed = read()
            found.source = _sources(found.borrowed, found.sysctls, endpoint, read, timer_due_s)
    except NotPermitted as exc:
        found.unread = (f"pidfd_getfd was refused ({exc}): {refused_here() or 'netkit needs CAP_SYS_PTRACE'}; "
                        "the settings below are inferred from the kernel's timers alone")
    except (ProcessLookupError, NetkitError) as exc:
        found.unread = f"the socket went away while netkit read it ({exc or 'process gone'})"
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        found.unread = "this kernel has no pidfd_getfd (Linux >= 5.6 has): the settings are inferred from the timers"
    return found


def _sources(options: Borrowed, sysctls: dict[str, int], endpoint: Endpoint, read: Callable[[], Borrowed],
             timer_due_s: float | None) -> dict[str, str]:
    """field -> SET_ON_SOCKET, or the sysctl it follows (proved by the flip, or "=sysctl?" if not provable)."""
    sources = {}
    can_flip = timer_due_s is None or timer_due_s >= FLIP_MARGIN_S
    for name, sysctl in KEEPALIVE_SYSCTLS.items():
        value = getattr(options, name)
        if value != sysctls[name]:
            sources[name] = SET_ON_SOCKET  # differs from the sysctl: it can only have been set
        elif not can_flip:
            sources[name] = f"{sysctl}?"  # equal, and no time to prove which
        else:
            original = sysctls[name]
            endpoint.sysctl(sysctl, original - 1 if original > 1 else original + 1)  # always in range
            try:
                follows = getattr(read(), name) != original
            finally:
                set_sysctl(endpoint, sysctl, original)
            sources[name] = sysctl if follows else SET_ON_SOCKET
    return sources
