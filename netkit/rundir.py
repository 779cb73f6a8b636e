"""One temporary directory per netkit process, named by its PID, so that a killed process's files can be found.

Everything netkit writes while it runs and deletes when it ends -- the
gate's journals, multiprocessing's own directory for the pool's forkserver
socket -- goes into ``$TMPDIR/netkit-run-<pid>-<random>``, removed at exit.
A process killed with SIGKILL removes nothing; ``netkit cleanup`` (and the
next pool) then removes the directories whose PID no longer runs, and only
those: the name says which process owned it.  Files netkit keeps on purpose
(a failed scenario's capture) live elsewhere, under their own names.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile

from .lab.proc import process_alive

PREFIX = "netkit-run-"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
_made: dict[int, str] = {}  # pid -> its directory (a forked child makes its own)


def process_dir() -> str:
    """This process's directory (created on first use, removed at interpreter exit)."""
    path = _made.get(os.getpid())
    if path is None or not os.path.isdir(path):
        path = _made[os.getpid()] = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
        atexit.register(shutil.rmtree, path, True)
    return path


def stale_dirs(directory: str | None = None) -> list[str]:
    """Run directories in ``directory`` (default: the temporary directory) whose owner process is gone."""
    directory = directory or tempfile.gettempdir()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    stale = []
    for name in sorted(names):
        match = _NAME.match(name)
        path = os.path.join(directory, name)
        if match and os.path.isdir(path) and not os.path.islink(path) and not process_alive(int(match.group(1))):
            stale.append(path)
    return stale


def remove_stale(directory: str | None = None) -> list[str]:
    """Remove :func:`stale_dirs`; returns what was removed."""
    removed = []
    for path in stale_dirs(directory):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
    return removed
