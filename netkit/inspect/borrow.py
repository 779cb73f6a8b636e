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
import os
import socket

from .facts import Borrowed

SYS_PIDFD_GETFD = 438
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class NotPermitted(Exception):
    """pidfd_getfd said EPERM: no ptrace access to the process."""


def read_options(sock: socket.socket) -> Borrowed:
    tcp, get = socket.IPPROTO_TCP, sock.getsockopt
    return Borrowed(
        keepalive=bool(get(socket.SOL_SOCKET, socket.SO_KEEPALIVE)),
        idle=get(tcp, socket.TCP_KEEPIDLE), intvl=get(tcp, socket.TCP_KEEPINTVL), cnt=get(tcp, socket.TCP_KEEPCNT),
        user_timeout_ms=get(tcp, socket.TCP_USER_TIMEOUT),
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

    def options(self, fd: int, inode: int) -> Borrowed | None:
        """The options of the socket behind the process's ``fd``, or None if that fd is no longer socket ``inode``."""
        borrowed = _libc.syscall(SYS_PIDFD_GETFD, self.pidfd, fd, 0)
        if borrowed < 0:
            err = ctypes.get_errno()
            if err == errno.EPERM:
                raise NotPermitted(os.strerror(err))
            if err == errno.EBADF:  # closed since /proc was read
                return None
            raise OSError(err, f"pidfd_getfd(pid {self.pid}, fd {fd}): {os.strerror(err)}")
        try:
            if os.fstat(borrowed).st_ino != inode:
                return None
            sock = socket.socket(fileno=os.dup(borrowed))
            try:
                return read_options(sock)
            finally:
                sock.close()
        finally:
            os.close(borrowed)
