"""Network namespaces held open by a file descriptor, and work done inside them.

Why file descriptors and not ``ip netns add``: a namespace created with
``unshare(CLONE_NEWNET)`` and held only by an open fd of this process is
anonymous -- when the process dies, even by SIGKILL, the kernel drops the last
reference and the namespace, its veth ends and its sockets vanish.  Nothing is
left in /run/netns for anyone to clean up.  A namespace gets a name under
/run/netns only when a person asks to keep it for debugging (:meth:`keep`).

Why threads: network namespace membership is per thread.  A short-lived thread
that ``setns()``-es into the namespace can create sockets (which stay in that
namespace forever) and talk netlink there, without forking.  The calling
thread never changes namespace, so the host namespace is never touched.

Python 3.11 has no ``os.setns``/``os.unshare``, so we call libc via ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink import NLM_F_ACK, NLMSG_ERROR
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from ..errors import EnvironmentUnusable, NameCollision
from ..privileges import missing_privileges

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2
SIOCGSKNS = 0x894C  # include/uapi/linux/sockios.h: an fd of the socket's network namespace
NETNS_RUN_DIR = "/run/netns"
PREFIX = "nk"
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11  # error acks carry the kernel's message text
NETLINK_ACK_TIMEOUT_S = 5.0  # the kernel acks at once; this only guards against a hang
NETLINK_RECV_BYTES = 65536

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
T = TypeVar("T")
_socket_type = socket.socket  # the class; inside Namespace, "socket" is the method


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def run_in_thread(target: Callable[[], T]) -> T:
    """Run ``target`` in a fresh thread and return its result (or raise its error).

    The thread dies afterwards, taking any namespace it entered with it.
    """
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="netkit-netns", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        # Ctrl-C interrupted the wait: let the thread finish before the caller
        # unwinds, or teardown could close an fd the thread still uses.
        thread.join()
        raise
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


def new_lab_name() -> str:
    """A lab name ``nk-<pid>-<random>``; its namespaces add ``-server``/``-client``.

    The pid lets ``netkit cleanup`` tell a kept namespace of a dead process
    from one of a live process; the random part keeps names unique across
    processes and pytest-xdist workers.
    """
    return f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"


def owner_pid(name: str) -> int | None:
    """The pid encoded in a netkit namespace name, or None for a foreign name."""
    parts = name.split("-")
    if len(parts) >= 3 and parts[0] == PREFIX and parts[1].isdigit():
        return int(parts[1])
    return None


class Namespace:
    """One network namespace, alive as long as this object's fd is open."""

    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fd = fd
        self.kept_path: str | None = None

    @classmethod
    def create(cls, name: str) -> Namespace:
        """A new, empty, anonymous network namespace (only ``lo``, down)."""

        def unshare_and_open() -> int:
            try:
                _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            except PermissionError:
                raise EnvironmentUnusable(missing_privileges() or "unshare(CLONE_NEWNET) was refused") from None
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        return cls(name, run_in_thread(unshare_and_open))

    def __repr__(self) -> str:
        return f"Namespace({self.name!r}, fd={self.fd})"

    @property
    def inode(self) -> int:
        """The namespace's identity (as in ``net:[inode]`` under /proc/PID/ns)."""
        return os.fstat(self.fd).st_ino

    # -- doing things inside -------------------------------------------------

    def enter_current_thread(self) -> None:
        """Move the calling thread into this namespace. Only for throwaway threads."""
        _check(_libc.setns(self.fd, CLONE_NEWNET), f"setns({self.name})")

    def run(self, target: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``target(*args, **kwargs)`` in a thread that is inside this namespace."""

        def inside() -> T:
            self.enter_current_thread()
            return target(*args, **kwargs)

        return run_in_thread(inside)

    def socket(self, family: int, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        """A plain socket.socket that lives in this namespace (0.15 ms, no fork)."""
        return self.run(socket.socket, family, type, proto)

    def _netlink_socket(self, caller: str) -> _socket_type:
        """A NETLINK_ROUTE socket in this namespace; refuses if the thread is elsewhere."""
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)  # NETLINK_ROUTE
        if os.readlink("/proc/thread-self/ns/net") != os.readlink(f"/proc/self/fd/{self.fd}"):
            nl.close()
            raise RuntimeError(f"{caller}() for {self.name} called outside Namespace.run()")
        return nl

    @contextmanager
    def iproute(self) -> Iterator[Any]:
        """A pyroute2 IPRoute bound to this namespace.

        Use it only inside :meth:`run`: pyroute2 0.9 keeps per-thread state, and
        the netlink socket we hand it was created in this namespace, so it can
        never talk to the host namespace by accident.
        """

        with IPRoute(use_socket=self._netlink_socket("iproute"), groups=0) as ipr:
            yield ipr

    def rtnl_batch(self, requests: Sequence[Any], timeout: float = NETLINK_ACK_TIMEOUT_S) -> None:
        """Send pyroute2 rtnetlink requests in one datagram and wait for every ack.

        The fast path for building things: one round trip and no IPRoute (whose
        construction and asyncio loop cost more than the kernel's work; see
        ``scripts/bench-lab``).  Each request is a pyroute2 message (e.g.
        ``ifinfmsg``) with its header type and flags set, NLM_F_ACK included.
        Their sequence numbers are set here (1, 2, ...).  The kernel runs them
        in order; the first failure is raised as the pyroute2 NetlinkError,
        with the kernel's extended-ack text and which request it was.  Use it
        only inside :meth:`run`, like :meth:`iproute`.
        """

        if not requests:
            return
        data = bytearray()
        for seq, request in enumerate(requests, 1):
            if not (request["header"].get("flags") or 0) & NLM_F_ACK:
                raise ValueError(f"request {seq} ({type(request).__name__}) lacks NLM_F_ACK: no ack would come")
            request["header"]["sequence_number"] = seq
            request["header"]["pid"] = 0
            request.encode()
            data += request.data
        with self._netlink_socket("rtnl_batch") as nl:
            nl.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            nl.settimeout(timeout)
            nl.send(data)
            pending = set(range(1, len(requests) + 1))
            marshal = MarshalRtnl()
            while pending:
                try:
                    replies = nl.recv(NETLINK_RECV_BYTES)
                except TimeoutError:
                    raise TimeoutError(
                        f"no netlink ack in {self.name} within {timeout} s for requests {sorted(pending)}"
                    ) from None
                for reply in marshal.parse(replies):
                    seq = reply["header"]["sequence_number"]
                    if reply["header"]["type"] != NLMSG_ERROR or seq not in pending:
                        continue
                    pending.discard(seq)
                    error = reply["header"]["error"]
                    if error is not None:  # NetlinkError; OSError for ENOBUFS
                        code = getattr(error, "code", None) or getattr(error, "errno", None) or 0
                        what = type(requests[seq - 1]).__name__
                        raise NetlinkError(
                            code, f"{error.args[-1]} (request {seq} of {len(requests)}, {what}, in {self.name})"
                        ) from error

    def read_proc_net(self, filename: str) -> str:
        """Text of ``/proc/net/<filename>`` as this namespace sees it (e.g. ``netstat``)."""

        def read() -> str:
            with open(f"/proc/thread-self/net/{filename}") as f:
                return f.read()

        return self.run(read)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a program inside this namespace.

        The program runs under ``setpriv --pdeathsig KILL``: if the netkit
        process dies (even by SIGKILL) the kernel kills it too, so it cannot
        pin the namespace alive.  Note that the death signal follows the
        *thread* that started the program: start it from a thread that lives
        as long as the program should (the main thread, in tests).
        """
        # setpriv sets the death signal only once it runs: if we die before
        # that, nobody would kill the child.  So, after setpriv, the shell
        # checks that its parent is still us and gives up otherwise.
        guard = 'test "$PPID" = "$1" || exit 111; shift; exec "$@"'
        wrapper = [
            "setpriv", "--pdeathsig", "KILL", "--",
            "/bin/sh", "-c", guard, "netkit-guard", str(os.getpid()),
            "nsenter", f"--net=/proc/self/fd/{self.fd}", "--",
        ]
        pass_fds = tuple(kwargs.pop("pass_fds", ())) + (self.fd,)
        return subprocess.Popen([*wrapper, *argv], pass_fds=pass_fds, **kwargs)

    # -- lifetime --------------------------------------------------------------

    def keep(self) -> str:
        """Bind-mount this namespace at /run/netns/<name> so it outlives us; returns the name.

        Then ``ip netns exec <name> ...`` works on it; ``netkit cleanup``
        removes it once this process has exited.
        """
        if self.kept_path:
            return self.name
        os.makedirs(NETNS_RUN_DIR, exist_ok=True)
        path = os.path.join(NETNS_RUN_DIR, self.name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError as exc:
            raise NameCollision(
                f"{path} already exists; run `netkit cleanup` or choose another name"
            ) from exc
        os.close(fd)
        source = f"/proc/{os.getpid()}/fd/{self.fd}".encode()
        try:
            _check(_libc.mount(source, path.encode(), b"none", MS_BIND, None), f"bind-mount {path}")
        except OSError:
            os.unlink(path)
            raise
        self.kept_path = path
        return self.name

    def close(self) -> None:
        """Drop our reference; the kernel frees the namespace when nothing else pins it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def remove_named(name: str) -> None:
    """Unmount and delete /run/netns/<name> (what ``ip netns del`` does)."""
    path = os.path.join(NETNS_RUN_DIR, name)
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def socket_namespace_inode(sock: socket.socket) -> int:
    """The inode of the network namespace ``sock`` belongs to (ioctl SIOCGSKNS).

    How netkit proves that a capture or sock_diag socket really sits in a lab
    namespace before it reads anything through it.
    """
    ns_fd = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    try:
        return os.fstat(ns_fd).st_ino
    finally:
        os.close(ns_fd)
