"""Private tracefs instances: the kernel's own record of a connection's timers.

Why an instance (``instances/nk-<pid>-<pidns>-<hex>``) and not the top-level buffer:
the top-level tracing state (``tracing_on``, ``current_tracer``,
``set_event``, ``trace_clock``, its options, other instances) belongs to
whoever else traces this machine, and netkit never changes it.  An instance
has its own buffer, clock, options, events and filters; a process tree
shares one (:mod:`netkit.lab.tracefeed`), and removing it (``rmdir``)
removes everything it enabled.

Each instance is set up the same way: a bounded buffer (:func:`buffer_kb`
per CPU), ``trace_clock`` = ``mono`` (``time.monotonic()``'s clock, so the
ledger's moments and the observer's share one axis), and the output options
the ledger's parser reads (``OPTIONS``: among them ``hash-ptr`` = 0, the
timer addresses printed as the values the filters compare, not hashed).

The name carries the owner's pid and its pid namespace
(``nk-<pid>-<pidns>-<hex>``, the namespace's inode in decimal): the kernel
has one tracefs, and a container that mounts it (``mount -t tracefs`` works
as root inside systemd-nspawn) shares the host's instances, while its pids
are its own -- pid 1234 in a container is not the host's 1234.  An instance
whose owner is gone (a run killed by SIGKILL) is removed by
:func:`remove_stale` (``netkit cleanup``): the owner is looked up in its own
pid namespace, which a process sees only from that namespace or from the
initial one (which sees every process); seen from anywhere else, it is left
alone.  An instance whose owner runs, or whose name is not netkit's, is
never touched.

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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import FeatureMissing
from .proc import pids, process_alive

MOUNT_POINT = "/sys/kernel/tracing"
PREFIX = "nk"
BUFFER_BUDGET_KB = 64 * 1024  # all of netkit's instances at once
MAX_INSTANCES = 16  # one per process tree (netkit.lab.tracefeed): pytest-xdist's workers, gates side by side


def buffer_kb() -> int:
    """Per-CPU buffer of one instance: the budget over 16 instances and this machine's CPUs, 256..2048 KB.

    A gate on 2 CPUs records about 5,300 events (650 KB as text, most of it
    other timers' exits the feed's reader drops), and the reader consumes
    them as they come: the buffer only holds what it has not read yet.
    """
    cpus = os.cpu_count() or 1
    return max(256, min(2048, BUFFER_BUDGET_KB // (MAX_INSTANCES * cpus)))
CLOCK = "mono"
OPTIONS = (  # an instance inherits the top level's output options: set the ones the ledger's parser reads
    ("hash-ptr", "0"),  # addresses as the filters compare them
    ("pause-on-trace", "0"),  # reading mid-run (learning a timer) loses nothing
    ("irq-info", "1"),  # the context flags: an arming in a softirq is not the caller's
    ("context-info", "1"),  # task-pid, CPU, timestamp
    ("latency-format", "0"),
)
EVENTS = (  # what a ledger reads; "group/name" under events/
    "timer/timer_start",
    "timer/timer_expire_entry",
    "timer/timer_expire_exit",
    "sock/inet_sock_set_state",
    "sock/inet_sk_error_report",
    "tcp/tcp_probe",  # a program's socket (check-server, check-client): its cookie beside its address
)
FIELDS = {  # fields a ledger reads that not every kernel's event has: without them it cannot check the rule
    "timer/timer_start": ("bucket_expiry",),  # the wheel's rounding
    "tcp/tcp_probe": ("sock_cookie", "skaddr"),  # the program's socket and its address
}
PRINTED_INSTEAD = {  # a field an older kernel lacks, and what its event prints that gives the same fact
    "bucket_expiry": "idx=",  # before 6.2 (Debian's 6.1): the wheel index, whose level gives the bucket (ledger._bucket)
}
_NAME = re.compile(rf"^{PREFIX}-(\d+)-(\d+)-[0-9a-f]+$")
INIT_PID_NAMESPACE = 0xEFFFFFFC  # PROC_PID_INIT_INO: the initial pid namespace's fixed inode (include/linux/proc_ns.h)


class TracefsUnavailable(FeatureMissing):
    """tracefs cannot be used here; the message says why (runs then judge from the observer and the wire)."""


def _mounted() -> str | None:
    """The first tracefs mount point this process can reach.

    A mount listed in /proc/self/mountinfo can be hidden by a later mount over
    its parent: ``systemd-nspawn --bind=/sys/kernel/tracing`` lists tracefs
    there, but mounts sysfs's ``/sys/kernel`` over it afterwards.  A mount point
    counts only when stat() of it lands on the tracefs device it lists.
    """
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype = line.split(" - ", 1)[1].split()[0]
        if fstype != "tracefs":
            continue
        point = fields[4].replace("\\040", " ")
        major, minor = (int(n) for n in fields[2].split(":"))
        try:
            if os.stat(point).st_dev == os.makedev(major, minor):
                return point
        except OSError:
            continue
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
            why = (done.stderr.strip().splitlines() or [f"mount exited {done.returncode}"])[0]
            raise TracefsUnavailable(f"tracefs is not mounted and mounting it at {MOUNT_POINT} was refused: {why} "
                                     "(a container needs CAP_SYS_ADMIN and the mount system call: systemd-nspawn "
                                     "gives both to root, Docker only with --privileged)")
    if found is None:
        raise TracefsUnavailable("tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)")
    if not os.path.isdir(os.path.join(found, "instances")):
        raise TracefsUnavailable(f"{found} has no instances directory: this kernel's tracefs is too old")
    return found


def missing_events(root: str) -> list[str]:
    """The events netkit needs that this kernel's tracefs does not have."""
    return [e for e in EVENTS if not os.path.isdir(os.path.join(root, "events", e))]


def missing_fields(root: str) -> list[str]:
    """The fields of :data:`FIELDS` this kernel's events lack, as "group:event has no FIELD field" (from each ``format``)."""
    found = []
    for event, fields in FIELDS.items():
        try:
            with open(os.path.join(root, "events", event, "format")) as f:
                described = f.read()
        except OSError:
            continue  # no such event: missing_events says so
        found += [f"{event.replace('/', ':')} has no {name} field" for name in fields
                  if not re.search(rf"\b{name};", described)
                  and not (name in PRINTED_INSTEAD and PRINTED_INSTEAD[name] in _print_format(described))]
    return found


def _print_format(described: str) -> str:
    return next((line for line in described.splitlines() if line.startswith("print fmt:")), "")


def owner(name: str) -> tuple[int, int] | None:
    """(pid, pid namespace inode) in a netkit instance name (``nk-<pid>-<pidns>-<hex>``), None for any other name."""
    m = _NAME.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def owner_pid(name: str) -> int | None:
    """The pid in a netkit instance name, None for any other name."""
    found = owner(name)
    return found[0] if found else None


def pid_namespace(pid: int | str = "self") -> int | None:
    """The inode of ``pid``'s pid namespace (the same number seen from every namespace); None once it is gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _innermost_pid(pid: int) -> int | None:
    """``pid``'s pid as its own pid namespace numbers it (the last of ``NSpid``)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def owner_gone(pid: int, namespace: int) -> bool:
    """True only when it is certain that process ``pid`` of pid namespace ``namespace`` no longer runs.

    From the owner's own namespace, ``pid`` is asked directly.  From the
    initial namespace every process is visible with its pid in each namespace
    (``NSpid``), so the owner is looked for among the processes of
    ``namespace`` (none left: the namespace, and the owner, are gone).  From
    any other namespace the owner cannot be seen, so it is never declared gone.
    """
    ours = pid_namespace()
    if namespace == ours:
        return not process_alive(pid)
    if ours != INIT_PID_NAMESPACE:
        return False
    return not any(pid_namespace(p) == namespace and _innermost_pid(p) == pid for p in pids())


class TraceInstance:
    """One private tracefs instance, owned by this process; :meth:`close` (or ``with``) removes it.

    Making and removing an instance is slow work the kernel does under one
    lock (about 45 and 22-55 ms, serialised), so a process tree shares one:
    :mod:`netkit.lab.tracefeed`.
    """

    def __init__(self, root: str, name: str) -> None:
        self.root = root
        self.name = name
        self.path = os.path.join(root, "instances", name)
        self.events: frozenset[str] = frozenset()
        self.filters: dict[str, str] = {}  # event -> the filter it has now (a filter write costs an RCU grace period)
        # trace_marker, open for the instance's life: opening a tracefs file takes the tracing mutex, which another
        # instance's set-up and rmdir hold for tens of milliseconds, and a marker is written between a connect()
        # and its setsockopt()
        self._marker: int | None = None

    def set_filter_or_all(self, event: str, expression: str) -> None:
        """:meth:`set_filter`, or no filter where this kernel cannot parse it (the ledger selects the events)."""
        try:
            self.set_filter(event, expression)
        except OSError:  # e.g. ".function" filters before Linux 6.2: record all, the ledger selects
            self.set_filter(event, "")

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
        lacking = [gap for gap in missing_fields(root) if gap.split(" ", 1)[0].replace(":", "/") in filters]
        if lacking:
            raise TracefsUnavailable(f"this kernel's {'; '.join(lacking)} (the ledger reads it)")
        instance = cls(root, f"{PREFIX}-{os.getpid()}-{pid_namespace()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(instance.path)
        except OSError as exc:
            raise TracefsUnavailable(f"cannot create a tracefs instance in {root}/instances: {exc.strerror}") from exc
        try:
            instance._write("tracing_on", "0")
            instance._write("buffer_size_kb", str(buffer_kb()))
            instance._write("trace_clock", CLOCK)
            for option, value in OPTIONS:  # an option this kernel lacks is at its default already
                if os.path.exists(os.path.join(instance.path, "options", option)):
                    instance._write(f"options/{option}", value)
            for event, expression in filters.items():
                instance.set_filter_or_all(event, expression)
                instance._write(f"events/{event}/enable", "1")
            instance.events = frozenset(filters)
            instance._marker = os.open(os.path.join(instance.path, "trace_marker"), os.O_WRONLY | os.O_CLOEXEC)
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

        A filter the kernel cannot parse raises OSError (EINVAL); the old filter stays.  A filter the event
        already has is not written again: each write waits for an RCU grace period (milliseconds under load).
        """
        if self.filters.get(event) == expression:
            return
        self._write(f"events/{event}/filter", expression or "0")  # "0" clears a filter (tracefs's convention)
        self.filters[event] = expression

    def mark(self, text: str) -> None:
        """Write ``text`` into the trace (``trace_marker``), as an event of the calling thread."""
        if self._marker is None:
            self._write("trace_marker", text)
        else:
            os.write(self._marker, text.encode())

    def close(self) -> None:
        """Remove the instance (its events, filters and buffer with it); an instance already gone is fine."""
        if self._marker is not None:
            os.close(self._marker)  # an open file of an instance makes its rmdir fail (EBUSY)
            self._marker = None
        remove_instance(self.path)

    def __enter__(self) -> TraceInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


REMOVE_WAIT_S = 5.0  # how long a busy instance (a file of it still open somewhere) is waited for


def remove_instance(path: str) -> None:
    """rmdir an instance; while something holds one of its files open (EBUSY), wait for it, up to ``REMOVE_WAIT_S``.

    Still busy after that: the instance stays and this says so (OSError);
    ``netkit cleanup`` removes it once its owner is gone.
    """
    deadline = time.monotonic() + REMOVE_WAIT_S
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _instance_names(root: str) -> list[str]:
    try:
        return sorted(os.listdir(os.path.join(root, "instances")))
    except OSError:
        return []


def netkit_instances(root: str | None = None) -> list[str]:
    """The names of instances that look like netkit's, whatever their owner."""
    root = root or _mounted()
    return [n for n in _instance_names(root) if owner(n) is not None] if root else []


@dataclass
class Census:
    """The instances that carry netkit's prefix, by what ``netkit cleanup`` may do with them."""

    stale: list[str] = field(default_factory=list)  # netkit's, owner gone: removed
    alive: list[str] = field(default_factory=list)  # netkit's, owner runs (or cannot be seen from here): left
    foreign: list[str] = field(default_factory=list)  # nk-prefixed, but not netkit's name format: left


def census(root: str | None = None) -> Census:
    """netkit-looking instances, sorted by whether their owner is certainly gone; nothing is changed."""
    found = Census()
    root = root or _mounted()
    for name in _instance_names(root) if root else []:
        if not name.startswith(PREFIX):
            continue
        who = owner(name)
        if who is None:
            found.foreign.append(name)
        elif owner_gone(*who):
            found.stale.append(name)
        else:
            found.alive.append(name)
    return found


def remove_stale(dry_run: bool = False, found: Census | None = None) -> list[str]:
    """Remove netkit's instances whose owner process is gone (a run killed by SIGKILL); return their names.

    ``found``: a :func:`census` already taken (so a report and the removal agree).
    """
    root = _mounted()
    if root is None:
        return []
    gone = (found or census(root)).stale
    if dry_run:
        return gone
    removed = []
    for name in gone:
        try:
            remove_instance(os.path.join(root, "instances", name))
        except OSError:  # still busy (a reader holds it open): left for the next cleanup
            continue
        removed.append(name)
    return removed


__all__ = ["BUFFER_BUDGET_KB", "CLOCK", "EVENTS", "FIELDS", "MOUNT_POINT", "OPTIONS", "PREFIX", "PRINTED_INSTEAD",
           "Census", "TraceInstance", "TracefsUnavailable", "buffer_kb", "census", "missing_events", "missing_fields",
           "netkit_instances", "owner", "owner_gone", "owner_pid", "pid_namespace", "remove_stale", "tracefs_root"]
