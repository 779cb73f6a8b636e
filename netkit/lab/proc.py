"""Walking /proc: who holds a namespace or a socket, and which processes a program forked.

One walker for the three questions netkit asks of /proc; a process that ends
while we look is simply skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (or exists under another user); False once it is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def links(pid: int, namespaces: bool = False) -> list[str]:
    """The targets of ``pid``'s open fds (``socket:[N]``, ``net:[N]``...), and of its threads' ``ns/net`` if asked."""
    paths = []
    try:
        if namespaces:
            paths.append(f"/proc/{pid}/ns/net")
            paths += [f"/proc/{pid}/task/{tid}/ns/net" for tid in os.listdir(f"/proc/{pid}/task")]
        paths += [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return []  # the process ended while we looked
    found = []
    for path in paths:
        try:
            found.append(os.readlink(path))
        except OSError:
            continue
    return found


def holders(inode: int) -> list[int]:
    """PIDs whose thread or open fd refers to network namespace ``inode``.

    Empty means nothing but a bind mount (see /run/netns) or a socket can
    still pin it; for netkit's fd-held namespaces, empty means gone.  Ask
    only while the namespace is known to be alive, or about specific pids:
    once freed, its inode number is soon reused by a new namespace.
    """
    target = f"net:[{inode}]"
    return [pid for pid in pids() if target in links(pid, namespaces=True)]


def owners(inodes: Iterable[int]) -> dict[int, list[int]]:
    """{socket inode: pids holding it open}, from /proc/*/fd (processes of any namespace)."""
    wanted = {f"socket:[{i}]": i for i in inodes if i}
    found: dict[int, list[int]] = {i: [] for i in wanted.values()}
    for pid in pids():
        for target in set(links(pid)):
            if target in wanted:
                found[wanted[target]].append(pid)
    return found


def descendants(pid: int) -> list[int]:
    """Pids of ``pid``'s children, grandchildren, ... (from /proc/*/stat)."""
    parent_of: dict[int, int] = {}
    for child in pids():
        try:
            with open(f"/proc/{child}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent_of[child] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [p for p, pp in parent_of.items() if pp in frontier]
        found += children
        frontier = children
    return found
