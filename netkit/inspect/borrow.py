"""Borrowing a process's socket to read its options: ``pidfd_open`` + ``pidfd_getfd`` + ``getsockopt``.

``pidfd_getfd(pidfd, fd, 0)`` (Linux >= 5.6, syscall 438 on every
architecture) gives this process a duplicate of the target's fd -- the same
socket, as after ``dup()``.  Only ``getsockopt`` is called on it, which
changes nothing, and it is closed at once.  The kernel allows it only with
ptrace access to the target (``PTRACE_MODE_ATTACH_REALCREDS``: CAP_SYS_PTRACE,
or the same user and no capability the caller lacks, and Yama's
``ptrace_scope`` permitting); otherwise EPERM.  Before reading, the borrowed
fd's inode is checked against the socket we mean: the process may have closed
the fd and reused the number since /proc was read.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import socket

from ..lab.features import tcp_option
from ..lab.namespaces import SIOCGSKNS
from ..model.rto import TCP_RTO_MAX_MS
from .facts import Borrowed

SYS_PIDFD_GETFD = 438
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class NotPermitted(Exception):
    """pidfd_getfd said EPERM: no ptrace access to the process, or a seccomp filter forbids the call."""


CAP_SYS_PTRACE = 19  # include/uapi/linux/capability.h


def has_cap_sys_ptrace() -> bool:
    """Whether this process holds CAP_SYS_PTRACE in its effective set (/proc/self/status, CapEff)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    return False


def refused_here() -> str | None:
    """Why pidfd_getfd is refused even on this process's own fd (a seccomp filter: systemd-nspawn's, docker's), or None.

    A process may always borrow from itself, whatever its capabilities, so
    EPERM here is a filter on the system call, not missing ptrace access.
    """
    try:
        with Borrower(os.getpid()) as borrower:
            fd = borrower._borrow(0, os.fstat(0).st_ino)  # stdin: any open fd will do
            if fd is not None:
                os.close(fd)
    except NotPermitted:
        return ("pidfd_getfd is refused even on netkit's own fds: a seccomp filter forbids it here (systemd-nspawn's "
                "or a container runtime's default profile)")
    except OSError:
        return None  # ENOSYS and the like: the callers say so themselves
    return None


def read_options(sock: socket.socket) -> Borrowed:
    tcp, get = socket.IPPROTO_TCP, sock.getsockopt
    return Borrowed(
        keepalive=bool(get(socket.SOL_SOCKET, socket.SO_KEEPALIVE)),
        idle=get(tcp, socket.TCP_KEEPIDLE), intvl=get(tcp, socket.TCP_KEEPINTVL), cnt=get(tcp, socket.TCP_KEEPCNT),
        user_timeout_ms=get(tcp, socket.TCP_USER_TIMEOUT), rto_max_ms=tcp_option(sock, TCP_RTO_MAX_MS),
    )


class Borrower:
    """One pidfd for a process; :meth:`options` borrows one of its fds, reads, closes."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)  # ProcessLookupError if it has gone

    def __enter__(self) -> Borrower:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.pidfd)

    def _borrow(self, fd: int, inode: int) -> int | None:
        """A duplicate of the process's ``fd`` if it is still socket ``inode`` (the caller closes it), else None."""
        borrowed = _libc.syscall(SYS_PIDFD_GETFD, self.pidfd, fd, 0)
        if borrowed < 0:
            err = ctypes.get_errno()
            if err == errno.EPERM:
                raise NotPermitted(os.strerror(err))
            if err == errno.EBADF:  # closed since /proc was read
                return None
            raise OSError(err, f"pidfd_getfd(pid {self.pid}, fd {fd}): {os.strerror(err)}")
        if os.fstat(borrowed).st_ino != inode:
            os.close(borrowed)
            return None
        return int(borrowed)

    def tcp_namespace(self, fd: int, inode: int) -> int | None:
        """An fd of the network namespace of the TCP socket behind ``fd`` (SIOCGSKNS); None if it is no TCP socket."""
        borrowed = self._borrow(fd, inode)
        if borrowed is None:
            return None
        try:
            sock = socket.socket(fileno=os.dup(borrowed))
        except OSError:
            os.close(borrowed)
            return None
        try:
            tcp = sock.family in (socket.AF_INET, socket.AF_INET6) and \
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == socket.IPPROTO_TCP
            return int(fcntl.ioctl(sock.fileno(), SIOCGSKNS)) if tcp else None
        finally:
            sock.close()
            os.close(borrowed)

    def options(self, fd: int, inode: int) -> Borrowed | None:
        """The options of the socket behind the process's ``fd``, or None if that fd is no longer socket ``inode``."""
        borrowed = self._borrow(fd, inode)
        if borrowed is None:
            return None
        sock = socket.socket(fileno=borrowed)
        try:
            return read_options(sock)
        finally:
            sock.close()
