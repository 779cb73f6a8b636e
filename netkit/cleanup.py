"""Remove what a dead netkit process left behind -- and nothing else.

netkit's namespaces are anonymous (held by fds) and vanish with the process,
so the only things that can outlive it are namespaces kept on purpose for
debugging: bind mounts at ``/run/netns/nk-<pid>-<random>-<role>``.  Such a
namespace is removed only when its name has netkit's format *and* process
``<pid>`` no longer runs.  netkit never creates interfaces in the host
namespace (its veth ends live and die inside the lab namespaces), so host
interfaces are reported, never touched.

The same goes for the kernel's tracefs: a run's private instance
(``instances/nk-<pid>-<pidns>-<hex>``, see :mod:`netkit.lab.tracefs`) is
removed at exit, and one left by a SIGKILL is removed here only when its
name has netkit's format *and* its owner certainly no longer runs.
tracefs is never mounted for this: where it is not mounted, no run of
netkit's could have left an instance since boot.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from .lab import tracefs
from .lab.namespaces import NETNS_RUN_DIR, PREFIX, owner_pid, remove_named
from .lab.proc import process_alive
from .rundir import remove_stale, stale_dirs


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)
    kept_alive_owner: list[str] = field(default_factory=list)  # owner process still runs
    foreign: list[str] = field(default_factory=list)  # nk-prefixed, but not netkit's name format
    host_interfaces: list[str] = field(default_factory=list)  # reported, never touched
    run_dirs: list[str] = field(default_factory=list)  # temporary directories of netkit processes that are gone
    trace_instances: list[str] = field(default_factory=list)  # tracefs instances of netkit processes that are gone
    trace_kept_alive_owner: list[str] = field(default_factory=list)  # owner runs, or cannot be seen from here
    trace_foreign: list[str] = field(default_factory=list)  # nk-prefixed, but not netkit's name format


def kept_namespaces() -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(PREFIX))
    except FileNotFoundError:
        return []


def host_interfaces() -> list[str]:
    """Interfaces in this (the host's) namespace whose names look like netkit's: never netkit's, never touched."""
    return sorted(name for _, name in socket.if_nameindex() if name.startswith(PREFIX))


def cleanup(dry_run: bool = False) -> CleanupReport:
    report = CleanupReport()
    for name in kept_namespaces():
        pid = owner_pid(name)
        if pid is None:
            report.foreign.append(name)
        elif process_alive(pid):
            report.kept_alive_owner.append(name)
        else:
            if not dry_run:
                remove_named(name)
            report.removed.append(name)
    report.run_dirs = stale_dirs() if dry_run else remove_stale()
    instances = tracefs.census()
    report.trace_kept_alive_owner, report.trace_foreign = instances.alive, instances.foreign
    report.trace_instances = tracefs.remove_stale(dry_run=dry_run, found=instances)
    report.host_interfaces = host_interfaces()
    return report
