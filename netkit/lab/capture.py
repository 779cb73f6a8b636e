"""Live capture of the lab's traffic inside a namespace (the analysis is :mod:`netkit.evidence`).

The capture is an ``AF_PACKET``/``SOCK_RAW`` socket created *inside* the
tested side's namespace (:meth:`Namespace.socket`) and bound to the tested
veth end by ifindex, with ``ETH_P_ALL``: it sees every frame that end sends
and receives, and nothing else -- never the host's traffic (the socket's
namespace is checked with ``SIOCGSKNS`` before it is used).  Each frame
carries the kernel's own timestamp (``SO_TIMESTAMPNS``, CLOCK_REALTIME, taken
when the frame passed the tap) and its direction (``sll_pkttype``:
``PACKET_OUTGOING`` for what the tested side sent, ``PACKET_HOST`` for what
it received).  A thread of the process running the scenario reads the socket
until :meth:`Capture.stop`; no tcpdump is needed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
import threading
import time

from ..evidence.frames import ETH_P_ALL, Frame
from ..evidence.pcap import SNAPLEN, pcap_bytes
from .namespaces import Namespace, socket_namespace_inode

SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # SCM_TIMESTAMPNS has the same value
SO_RCVBUFFORCE = 33
CAPTURE_RCVBUF = 4 << 20  # a zero-window fill is a burst of frames; never drop them
BUFFER_BYTES = 1 << 18  # a GSO super-packet on veth can be 64 KB

_libc = ctypes.CDLL(None, use_errno=True)


class _SockaddrLL(ctypes.Structure):
    _fields_ = [("sll_family", ctypes.c_ushort), ("sll_protocol", ctypes.c_ushort), ("sll_ifindex", ctypes.c_int),
                ("sll_hatype", ctypes.c_ushort), ("sll_pkttype", ctypes.c_ubyte), ("sll_halen", ctypes.c_ubyte),
                ("sll_addr", ctypes.c_ubyte * 8)]


class Capture:
    """Frames seen on one veth end, read by a thread of this process until :meth:`stop`.

    >>> capture = Capture(lab.server.namespace, lab.server.ifindex).start()
    >>> ...; capture.stop(); capture.frames
    """

    def __init__(self, namespace: Namespace, ifindex: int, label: str = "") -> None:
        self.namespace = namespace
        self.ifindex = ifindex
        self.label = label or f"ifindex {ifindex} in {namespace.name}"
        self.frames: list[Frame] = []
        self.drops = 0
        self.error: str | None = None
        self.interface_gone = False
        self._sock: socket.socket | None = None
        self._wake = (-1, -1)  # a pipe: writing to it ends the reading thread
        self._thread: threading.Thread | None = None

    def start(self) -> Capture:
        """Open the packet socket inside the namespace, bind it, start reading. Returns self."""
        sock = self.namespace.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing until bound
        try:
            self._check_namespace(sock)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, CAPTURE_RCVBUF)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_RCVBUF)
            address = _SockaddrLL(socket.AF_PACKET, socket.htons(ETH_P_ALL), self.ifindex)
            if _libc.bind(sock.fileno(), ctypes.byref(address), ctypes.sizeof(address)) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"bind packet socket to ifindex {self.ifindex} in {self.namespace.name}: "
                              f"{os.strerror(err)}")
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._read, name=f"netkit-capture-{self.ifindex}", daemon=True)
        self._thread.start()
        return self

    def _check_namespace(self, sock: socket.socket) -> None:
        """Refuse to capture anywhere but in the lab: the socket's namespace must be ours."""
        if socket_namespace_inode(sock) != self.namespace.inode:
            raise RuntimeError(f"packet socket is not in {self.namespace.name}: refusing to capture")

    def _read(self) -> None:
        assert self._sock is not None
        poller = select.poll()
        poller.register(self._sock, select.POLLIN | select.POLLERR)
        poller.register(self._wake[0], select.POLLIN)
        while True:
            stopping = any(fd == self._wake[0] for fd, _ in poller.poll())
            if not self._drain() or stopping:
                return

    def _drain(self) -> bool:
        """Read every queued frame; False when the socket is unusable."""
        assert self._sock is not None
        buffer = bytearray(BUFFER_BYTES)
        ancillary = socket.CMSG_SPACE(16)
        while True:
            try:
                nbytes, ancdata, _, address = self._sock.recvmsg_into(
                    [buffer], ancillary, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
            except BlockingIOError:
                return True
            except OSError as exc:
                if exc.errno in (errno.ENETDOWN, errno.ENODEV):  # the veth went away (peer-gone)
                    self.interface_gone = True
                    continue
                self.error = f"reading the capture: {exc}"
                return False
            ts_ns = None
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack_from("=qq", data)
                    ts_ns = sec * 1_000_000_000 + nsec
            if ts_ns is None:
                ts_ns = time.time_ns()
            kept = min(nbytes, len(buffer), SNAPLEN)
            self.frames.append(Frame(ts_ns, address[2], bytes(buffer[:kept]), nbytes))

    def stop(self) -> list[Frame]:
        """Read what is still queued, stop the thread, close the socket. Idempotent."""
        if self._thread is not None:
            os.write(self._wake[1], b"x")
            self._thread.join()
            self._thread = None
        if self._sock is not None:
            try:
                raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                self.drops += struct.unpack("=II", raw)[1]
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._wake[0] >= 0:
            for fd in self._wake:
                os.close(fd)
            self._wake = (-1, -1)
        return self.frames

    def pcap(self) -> bytes:
        return pcap_bytes(self.frames)
