"""A program under test, started in a lab namespace and stopped again: only what we started, by pid."""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from typing import IO

from ..errors import ProgramProblem, SettingError
from ..lab.diag import accepts, listeners
from ..lab.namespaces import Namespace
from ..lab.proc import descendants, holders
from ..tcpsocket import TcpSocketDiag
from ..waiting import WaitTimeout, wait_until

STOP_GRACE_S = 5.0  # SIGTERM, then this long, then SIGKILL
LISTEN_POLL_S = 0.02
OUTPUT_TAIL_CHARS = 2000


def endpoint(address: str, port: int) -> str:
    """``198.18.0.1:6379``, ``[2001:2::1]:6379``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def require_seconds(*named: tuple[str, float | None]) -> None:
    """SettingError (exit 2) for any (option, value) whose value is set but not a time in seconds > 0 (nan refused)."""
    for name, seconds in named:
        if seconds is not None and not 0 < seconds < math.inf:
            raise SettingError(name, seconds, "a time in seconds > 0")


def require_executable(argv: list[str]) -> None:
    """ProgramProblem (exit 2) unless ``argv[0]`` can be run: checked before a lab is built for it."""
    if shutil.which(argv[0]) is None:
        raise ProgramProblem(f"program {argv[0]!r} not found (not executable, or not on PATH)")


class Program:
    """A program running in a lab namespace (under pdeathsig, in its own session, output in a temp file)."""

    def __init__(self, argv: list[str], namespace: Namespace) -> None:
        require_executable(argv)
        self.argv = list(argv)
        self.namespace = namespace
        self.log: IO[bytes] = tempfile.TemporaryFile()
        self.proc = namespace.popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.exit_status: int | None = None
        self.output_tail = ""
        self.exited_at: float | None = None  # monotonic time of the exit, once :meth:`sleep` saw it
        self._pidfd = os.pidfd_open(self.proc.pid)  # readable once the process has exited

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    def tail(self) -> str:
        """The end of what the program printed so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-OUTPUT_TAIL_CHARS:].strip()

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``; wake at once when the program exits, and keep that moment in ``exited_at``."""
        if self.exited_at is not None or self._pidfd < 0:
            time.sleep(max(0.0, seconds))
        elif select.select([self._pidfd], [], [], max(0.0, seconds))[0]:
            self.exited_at = time.monotonic()

    def require_running(self, when: str) -> None:
        """Raise ProgramProblem (exit 2) if the program has exited, with its output."""
        if self.proc.poll() is not None:
            raise ProgramProblem(f"`{self.command}` exited with status {self.proc.returncode} {when}; "
                                 f"its output:\n{self.tail() or '(none)'}")

    def wait_listening(self, namespace: Namespace, address: str, port: int, timeout: float) -> list[TcpSocketDiag]:
        """The program's listening sockets that accept connections to ``address:port`` (sock_diag)."""
        seen: list[TcpSocketDiag] = []

        def usable() -> list[TcpSocketDiag]:
            self.require_running(f"before listening on port {port}")
            seen[:] = listeners(namespace, port)
            return [s for s in seen if accepts(s, address)]

        def why() -> str:
            where = ", ".join(endpoint(*s.local) for s in seen)
            hint = (f"it listens on {where} only: bind it to {address} or to any address" if seen
                    else "nothing listens on that port in the lab's server namespace")
            return (f"`{self.command}` did not listen on {endpoint(address, port)} within {timeout:g} s ({hint}); "
                    f"its output so far:\n{self.tail() or '(none)'}")

        try:
            return wait_until(usable, timeout, LISTEN_POLL_S, on_timeout=why)
        except ProgramProblem as exc:
            daemonized = "before listening" in str(exc) and self.proc.returncode == 0  # a crash is no daemon
            raise ProgramProblem(f"{exc}\n(it must run in the foreground: no daemonizing)"
                                 if daemonized else str(exc)) from None
        except WaitTimeout as exc:
            raise ProgramProblem(str(exc)) from None

    def stop(self) -> int | None:
        """SIGTERM the program (and what it forked), SIGKILL whatever is left after STOP_GRACE_S.

        Only processes we started are signalled, by pid: the program itself and
        its descendants, listed before the signal while the tree is still intact,
        and whatever else runs in the lab's namespace -- a daemon the program
        forked before it exited has no parent left to find it by, and would keep
        the namespace alive.
        """
        ours = os.getpid()
        forked = descendants(self.proc.pid)
        forked += [p for p in holders(self.namespace.inode) if p != ours and p != self.proc.pid and p not in forked]
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _signal(forked, signal.SIGTERM)
        try:
            wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in forked), STOP_GRACE_S, 0.02)
        except WaitTimeout:
            pass  # what is left gets SIGKILL
        _signal([p for p in forked if os.path.exists(f"/proc/{p}")], signal.SIGKILL)
        self.exit_status = self.proc.returncode
        self.output_tail = self.tail()
        self.log.close()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        return self.exit_status
