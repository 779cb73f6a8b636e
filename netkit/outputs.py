"""Files netkit writes at the end of a run (reports, packet captures), checked before the run starts.

A path that cannot be written must cost nothing: refused after minutes of
scenarios, it would lose their results.  Each check returns why a path is
unusable (None: it is fine), for the caller to raise with the option's name.
"""

from __future__ import annotations

import os


def file_problem(path: str, *, create_folders: bool = False) -> str | None:
    """Why a file cannot be written at ``path`` (None: it can); nothing is left behind by asking.

    Its folder must exist, unless ``create_folders`` (the writer makes it; then
    see :func:`folder_problem`).  An existing file is opened for appending and
    left as it was; a new one is created and removed again, which also catches
    what permission bits do not tell (a read-only mount, /proc, root's
    ``os.access``).
    """
    if not path.strip():
        return "an empty path: give a file's path"
    full = os.path.abspath(path)
    if os.path.isdir(full):
        return "it is a directory: give a file's path"
    folder = os.path.dirname(full)
    if not os.path.isdir(folder):
        if create_folders:
            return folder_problem(folder)
        return f"the folder {folder} does not exist: create it or choose another path"
    try:
        if os.path.exists(full):
            os.close(os.open(full, os.O_WRONLY | os.O_APPEND))
        else:
            os.close(os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.unlink(full)
    except OSError as exc:
        return f"cannot write it ({exc.strerror}): choose another path"
    return None


def folder_problem(path: str) -> str | None:
    """Why files cannot be written into folder ``path``, made if missing (None: they can)."""
    if not path.strip():
        return "an empty path: give a directory"
    full = os.path.abspath(path)
    existing = full
    while not os.path.exists(existing):  # the folders that would be made
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this user: choose another directory"
    return None
