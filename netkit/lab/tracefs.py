"""A private tracefs instance per run: the kernel's own record of a connection's timers and death.

Why an instance (``instances/nk-<pid>-<hex>``) and not the top-level buffer:
the top-level tracing state (``tracing_on``, ``current_tracer``,
``set_event``, ``trace_clock``, its options, other instances) belongs to
whoever else traces this machine, and netkit never changes it.  An instance
has its own buffer, clock, options, events and filters; many labs each own
one at once, and removing it (``rmdir``) removes everything it enabled.

Each instance is set up the same way: a small buffer (``BUFFER_KB`` per
CPU, enough for one connection's few dozen events), ``trace_clock`` =
``mono`` (``time.monotonic()``'s clock, so the ledger's moments and the
observer's share one axis), ``options/hash-ptr`` = 0 (the timer and socket
addresses are printed as the values the filters compare, not hashed).

The name carries the owner's pid: an instance whose owner is gone (a run
killed by SIGKILL) is removed by :func:`remove_stale` (``netkit cleanup``),
and an instance whose owner runs, or whose name is not netkit's, is never
touched.

tracefs is mounted at ``/sys/kernel/tracing`` if it is not mounted yet (a
mount of the kernel's one tracefs, as systemd does at boot; no tracing
state changes with it).  Where that is refused (a container without
CAP_SYS_ADMIN, a seccomp filter), or an event netkit needs is missing (an
old kernel), :class:`TracefsUnavailable` says why, and runs judge from the
observer and the wire as before.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import subprocess
from collections.abc import Mapping

from ..errors import FeatureMissing
from .proc import process_alive

MOUNT_POINT = "/sys/kernel/tracing"
PREFIX = "nk"
BUFFER_KB = 128  # per CPU; a run's ledger is a few dozen lines, the rest is headroom for a filter's learning phase
CLOCK = "mono"
EVENTS = (  # what a ledger reads; "group/name" under events/
    "timer/timer_start",
    "timer/timer_expire_entry",
    "timer/timer_expire_exit",
    "sock/inet_sock_set_state",
    "sock/inet_sk_error_report",
)
_NAME = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]+$")


class TracefsUnavailable(FeatureMissing):
    """tracefs cannot be used here; the message says why (runs then judge from the observer and the wire)."""


def _mounted() -> str | None:
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "tracefs":
                    return fields[1]
    except OSError:
        return None
    return None


def tracefs_root(mount: bool = True) -> str:
    """Where tracefs is mounted; mounted at ``MOUNT_POINT`` first if it is not (as root). Raises TracefsUnavailable."""
    found = _mounted()
    if found is None and mount:
        if os.geteuid() != 0:
            raise TracefsUnavailable("tracefs is not mounted and only root can mount it")
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", MOUNT_POINT], capture_output=True, text=True,
                              check=False)
        found = _mounted()
        if found is None:
            why = done.stderr.strip() or f"mount exited {done.returncode}"
            raise TracefsUnavailable(f"tracefs is not mounted and mounting it at {MOUNT_POINT} was refused: {why} "
                                     "(in a container, bind the host's: --bind=/sys/kernel/tracing)")
    if found is None:
        raise TracefsUnavailable("tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)")
    if not os.path.isdir(os.path.join(found, "instances")):
        raise TracefsUnavailable(f"{found} has no instances directory: this kernel's tracefs is too old")
    return found


def missing_events(root: str) -> list[str]:
    """The events netkit needs that this kernel's tracefs does not have."""
    return [e for e in EVENTS if not os.path.isdir(os.path.join(root, "events", e))]


def owner_pid(name: str) -> int | None:
    """The pid in a netkit instance name (``nk-<pid>-<hex>``), None for any other name."""
    m = _NAME.match(name)
    return int(m.group(1)) if m else None


class TraceInstance:
    """One private tracefs instance, owned by this process; :meth:`close` (or ``with``) removes it."""

    def __init__(self, root: str, name: str) -> None:
        self.root = root
        self.name = name
        self.path = os.path.join(root, "instances", name)

    @classmethod
    def create(cls, filters: Mapping[str, str], root: str | None = None) -> TraceInstance:
        """A new instance recording ``filters``' events (event -> filter, "" for none), started at once.

        Raises TracefsUnavailable when tracefs, an instance or an event cannot
        be had; nothing is left behind then.
        """
        root = root or tracefs_root()
        missing = [e for e in filters if not os.path.isdir(os.path.join(root, "events", e))]
        if missing:
            raise TracefsUnavailable(f"this kernel's tracefs has no {', '.join(missing)} event")
        instance = cls(root, f"{PREFIX}-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(instance.path)
        except OSError as exc:
            raise TracefsUnavailable(f"cannot create a tracefs instance in {root}/instances: {exc.strerror}") from exc
        try:
            instance._write("tracing_on", "0")
            instance._write("buffer_size_kb", str(BUFFER_KB))
            instance._write("trace_clock", CLOCK)
            instance._write("options/hash-ptr", "0")
            if os.path.exists(os.path.join(instance.path, "options/pause-on-trace")):
                instance._write("options/pause-on-trace", "0")  # reading mid-run (learning a timer) loses nothing
            for event, expression in filters.items():
                try:
                    instance.set_filter(event, expression)
                except OSError:  # e.g. ".function" filters before Linux 6.2: record all, the ledger selects
                    instance.set_filter(event, "")
                instance._write(f"events/{event}/enable", "1")
            instance._write("tracing_on", "1")
        except OSError as exc:
            instance.close()
            raise TracefsUnavailable(f"cannot set up tracefs instance {instance.name}: {exc}") from exc
        return instance

    def _write(self, relative: str, value: str) -> None:
        with open(os.path.join(self.path, relative), "w") as f:
            f.write(value)

    def set_filter(self, event: str, expression: str) -> None:
        """Replace ``event``'s filter ("" records every occurrence); takes effect for the events that follow.

        A filter the kernel cannot parse raises OSError (EINVAL); the old filter stays.
        """
        self._write(f"events/{event}/filter", expression or "0")  # "0" clears a filter (tracefs's convention)

    def text(self) -> str:
        """Everything recorded so far, as tracefs prints it (``trace``: one line per event, oldest first)."""
        with open(os.path.join(self.path, "trace")) as f:
            return f.read()

    def stop(self) -> None:
        self._write("tracing_on", "0")

    def close(self) -> None:
        """Remove the instance (its events, filters and buffer with it); an instance already gone is fine."""
        remove_instance(self.path)

    def __enter__(self) -> TraceInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_instance(path: str) -> None:
    """rmdir an instance; a reader still holding it open (EBUSY) is waited for briefly."""
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            os.sched_yield()


def netkit_instances(root: str | None = None) -> list[str]:
    """The names of instances that look like netkit's, whatever their owner."""
    root = root or _mounted()
    if root is None:
        return []
    try:
        return sorted(n for n in os.listdir(os.path.join(root, "instances")) if owner_pid(n) is not None)
    except OSError:
        return []


def remove_stale(dry_run: bool = False) -> list[str]:
    """Remove netkit's instances whose owner process is gone (a run killed by SIGKILL); return their names."""
    root = _mounted()
    if root is None:
        return []
    gone = [n for n in netkit_instances(root) if not process_alive(owner_pid(n) or 0)]
    if not dry_run:
        for name in gone:
            remove_instance(os.path.join(root, "instances", name))
    return gone


__all__ = ["BUFFER_KB", "CLOCK", "EVENTS", "MOUNT_POINT", "PREFIX", "TraceInstance", "TracefsUnavailable",
           "missing_events", "netkit_instances", "owner_pid", "remove_stale", "tracefs_root"]
