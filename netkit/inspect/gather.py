"""Reading a live process's TCP sockets: /proc, its own network namespace, sock_diag there, its fds borrowed.

Thin on purpose: everything here reads, nothing changes (``getsockopt`` on
a borrowed duplicate, a sock_diag dump and sysctl reads from a throwaway
thread that ``setns()``-es into ``/proc/PID/ns/net``; netkit's own threads
never change namespace).  What the values mean is :mod:`.assess`.

``--port P`` looks in every network namespace a process is in or holds
open (the distinct ``/proc/*/ns/net`` and ``net:[N]`` fds, as netkit's own
labs are held): the sockets whose local or remote port is P, and the
processes holding them (``/proc/*/fd``).  Namespaces only bind-mounted
(``ip netns add`` with nothing in it) hold no process, so no socket to own.
"""

from __future__ import annotations

import errno
import os
import re

from ..errors import InputError
from ..lab.diag import tcp_sockets
from ..lab.namespaces import Namespace
from ..lab.proc import owners, pids
from ..tcpsocket import TcpSocketDiag
from .assess import NO_PTRACE
from .borrow import Borrower, NotPermitted, has_cap_sys_ptrace, refused_here
from .facts import OPTIONAL_SYSCTLS, SYSCTLS, NamespaceSysctls, ProcessFacts, SocketFacts
from .procnet import parse_proc_net_tcp

SOCKET_LINK = re.compile(r"socket:\[(\d+)\]")


def _read_sysctls() -> NamespaceSysctls:
    """The sysctls of the calling thread's namespace (/proc/sys/net resolves per thread)."""
    values: dict[str, int | None] = {}
    for field, name in SYSCTLS.items():
        try:
            with open("/proc/sys/" + name.replace(".", "/")) as f:
                values[field] = int(f.read())
        except FileNotFoundError:
            if field not in OPTIONAL_SYSCTLS:
                raise
            values[field] = None  # a sysctl this kernel does not have yet
    return NamespaceSysctls(**values)  # type: ignore[arg-type]  # the required ones raised above if absent


def own_namespace() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def host_sysctls() -> NamespaceSysctls:
    return _read_sysctls()


def _status(pid: int) -> tuple[str, int]:
    """(comm, real uid), or InputError if there is no such process."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/status") as f:
            uid = int(next(line for line in f if line.startswith("Uid:")).split()[1])
    except (FileNotFoundError, ProcessLookupError):
        raise InputError(f"no process with pid {pid}") from None
    return comm, uid


def socket_fds(pid: int) -> dict[int, int] | None:
    """{socket inode: fd} of the process; None if its fds cannot be read (no ptrace access)."""
    found: dict[int, int] = {}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                m = SOCKET_LINK.fullmatch(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except FileNotFoundError:
                continue  # closed meanwhile
            if m:
                found.setdefault(int(m.group(1)), int(fd))
    except PermissionError:
        return None
    except FileNotFoundError:
        raise InputError(f"process {pid} ended while netkit read it") from None
    return found


def open_namespace(pid: int) -> Namespace | None:
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:
        return None
    return Namespace(f"pid {pid}'s network namespace", fd)


def _proc_net_table(pid: int) -> list[TcpSocketDiag]:
    found: list[TcpSocketDiag] = []
    for name, family in (("tcp", "ipv4"), ("tcp6", "ipv6")):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                found += parse_proc_net_tcp(f.read(), family)
        except FileNotFoundError:
            continue  # no IPv6 in this kernel
    return found


def gather(pid: int, port: int | None = None) -> ProcessFacts:
    """Everything ``inspect`` reads about ``pid``'s TCP sockets (only those on ``port``, if given)."""
    comm, uid = _status(pid)
    fds = socket_fds(pid)
    namespace = open_namespace(pid)
    facts = ProcessFacts(pid, comm, uid, namespace.inode if namespace else None, own_namespace(), None,
                         host_sysctls(), attributed=fds is not None)
    try:
        table: list[TcpSocketDiag] | None = None
        if namespace is not None:
            try:
                table = tcp_sockets(namespace)
                facts.sysctls = namespace.run(_read_sysctls)
            except PermissionError:  # setns refused: no CAP_SYS_ADMIN
                facts.notes.append("netkit cannot enter the process's network namespace (setns needs CAP_SYS_ADMIN): "
                                   f"socket table from /proc/{pid}/net/tcp, the namespace's sysctls unknown")
                table = None
        if table is None:
            table = _proc_net_table(pid)
            facts.table = f"/proc/{pid}/net/tcp"
            if namespace is None:
                facts.notes.append(f"/proc/{pid}/ns/net is not readable without CAP_SYS_PTRACE: the namespace's "
                                   f"sysctls are unknown; socket table from /proc/{pid}/net/tcp (no TCP_INFO)")
    finally:
        if namespace is not None:
            namespace.close()
    if fds is None:
        mine = [s for s in table if s.uid == uid and s.inode]
        facts.notes.append(f"/proc/{pid}/fd is not readable without CAP_SYS_PTRACE: shown are the TCP sockets of uid "
                           f"{uid} in the process's network namespace, which may include other processes' sockets")
        facts.sockets = [SocketFacts(s) for s in mine]
    else:
        facts.sockets = [SocketFacts(s, fds[s.inode]) for s in table if s.inode in fds]
        seen = {s.inode for s in table}
        missing = {i: fd for i, fd in fds.items() if i not in seen}
        facts.sockets += _elsewhere(pid, missing, facts.netns) if missing else []
    if port is not None:
        facts.sockets = [s for s in facts.sockets if port in (s.diag.local[1], s.diag.remote[1])]
    facts.sockets.sort(key=lambda s: (s.fd if s.fd is not None else -1, s.diag.inode))
    _borrow(facts)
    return facts


def _elsewhere(pid: int, fds: dict[int, int], home: int | None) -> list[SocketFacts]:
    """The process's TCP sockets in namespaces other than its own (a socket keeps the namespace it was made in).

    Each socket fd not found in the process's namespace is borrowed and asked for its protocol and, if TCP,
    its namespace (SIOCGSKNS).  Where borrowing is not permitted, every namespace netkit can see is searched.
    """
    namespaces: dict[int, Namespace] = {}
    try:
        with Borrower(pid) as borrower:
            for inode, fd in fds.items():
                ns_fd = borrower.tcp_namespace(fd, inode)
                if ns_fd is None:
                    continue
                namespace = Namespace(f"the network namespace of pid {pid}'s fd {fd}", ns_fd)
                if namespace.inode in namespaces or namespace.inode == home:
                    namespace.close()
                else:
                    namespaces[namespace.inode] = namespace
    except (NotPermitted, OSError):  # no ptrace access, or no pidfd_getfd: search what we can see
        for namespace in namespaces.values():
            namespace.close()
        namespaces = {}
        for path in _namespace_paths().values():
            try:
                namespace = Namespace(f"the network namespace at {path}", os.open(path, os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                continue
            if namespace.inode in namespaces or namespace.inode == home:
                namespace.close()
            else:
                namespaces[namespace.inode] = namespace
    found: list[SocketFacts] = []
    for namespace in namespaces.values():
        try:
            hits = [s for s in tcp_sockets(namespace) if s.inode in fds]
            if hits:
                sysctls = namespace.run(_read_sysctls)
                found += [SocketFacts(s, fds[s.inode], netns=namespace.inode, sysctls=sysctls) for s in hits]
        except OSError:
            continue  # setns refused
        finally:
            namespace.close()
    return found


def _borrow(facts: ProcessFacts) -> None:
    wanted = [s for s in facts.sockets if s.fd is not None]
    if not facts.attributed:
        facts.notes.append(NO_PTRACE)
        return
    if not wanted:
        return
    try:
        with Borrower(facts.pid) as borrower:
            for s in wanted:
                assert s.fd is not None
                s.borrowed = borrower.options(s.fd, s.diag.inode)
                if s.borrowed is None:
                    s.borrow_error = f"fd {s.fd} was closed or reused while netkit read it"
        facts.borrowed = True
    except NotPermitted:
        for s in wanted:
            s.borrowed, s.borrow_error = None, "pidfd_getfd: not permitted"
        filtered = refused_here() if has_cap_sys_ptrace() else None
        if filtered:
            facts.unreadable_why = "here (pidfd_getfd is filtered)"
            facts.notes.append(f"{filtered}: {NO_PTRACE.split(': ', 1)[1]}")
        else:
            facts.notes.append(NO_PTRACE)
    except ProcessLookupError:
        raise InputError(f"process {facts.pid} ended while netkit read it") from None
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        for s in wanted:
            s.borrow_error = "no pidfd_getfd in this kernel"
        facts.unreadable_why = "on this kernel (no pidfd_getfd before Linux 5.6)"
        facts.notes.append(f"this kernel has no pidfd_open/pidfd_getfd (Linux >= 5.6 has): {NO_PTRACE.split(': ', 1)[1]}")


def _namespace_paths() -> dict[str, str]:
    """{"net:[N]": a /proc path that opens it}: the namespaces processes are in, and those they hold open by fd."""
    found: dict[str, str] = {}
    for pid in pids():
        paths = [f"/proc/{pid}/ns/net"]
        try:
            paths += [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            pass
        for path in paths:
            try:
                link = os.readlink(path)
            except OSError:
                continue
            if link.startswith("net:["):
                found.setdefault(link, path)
    return found


def pids_on_port(port: int) -> tuple[list[int], int]:
    """Processes with a TCP socket whose local or remote port is ``port``, in any network namespace netkit can see,
    and how many processes' namespaces netkit could not look into (no ptrace access, or setns refused)."""
    inodes: set[int] = set()
    hidden = _hidden_namespaces()
    for path in _namespace_paths().values():
        try:
            namespace = Namespace(f"the network namespace at {path}", os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            continue  # gone, or not ours to open
        try:
            table = tcp_sockets(namespace, info=False)
        except OSError:
            hidden += 1  # setns refused (no CAP_SYS_ADMIN)
            continue
        finally:
            namespace.close()
        inodes |= {s.inode for s in table if s.inode and port in (s.local[1], s.remote[1])}
    me = os.getpid()
    return sorted({p for holders in owners(inodes).values() for p in holders if p != me}), hidden


def _hidden_namespaces() -> int:
    """Processes whose /proc/PID/ns/net netkit may not read."""
    hidden = 0
    for pid in pids():
        try:
            os.readlink(f"/proc/{pid}/ns/net")
        except PermissionError:
            hidden += 1
        except OSError:
            continue
    return hidden
