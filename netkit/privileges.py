"""May this process build labs? And if not, what exactly should the user type instead?

netkit creates network namespaces (CAP_SYS_ADMIN) and links in them
(CAP_NET_ADMIN). Without them every entry point -- the CLI, the library, the
pytest fixtures -- stops before touching anything, with one message that names
the command the user actually ran, with absolute paths, so it can be pasted
from any directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from .errors import EnvironmentUnusable

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CREATE_LABS = "to create network namespaces and links"


def effective_capabilities() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def this_command() -> list[str]:
    """The command line that started this process, as the user can type it again from any directory.

    Paths become absolute. ``python -m pytest`` and ``python -m netkit.cli``
    stay modules; console scripts (``.venv/bin/netkit``, ``pytest``) are their
    own command; a script keeps its interpreter (``.venv/bin/python example.py``).
    """
    original = getattr(sys, "orig_argv", [])  # Python 3.10+
    if len(original) > 2 and original[1] == "-m":
        return [sys.executable, *original[1:]]
    argv = list(sys.argv) or ["python"]
    program = os.path.abspath(argv[0]) if os.path.exists(argv[0]) else argv[0]
    if os.path.basename(program) in ("netkit", "pytest", "py.test"):
        return [program, *argv[1:]]
    return [sys.executable, program, *argv[1:]]


def how_to_run_as_root() -> str:
    """What to type to run this same command with the privileges netkit needs."""
    command = shlex.join(this_command())
    if shutil.which("sudo"):
        return f"run it as root: `sudo {command}`"
    return f"run it as root (sudo is not installed: log in as root, or `su -c {shlex.quote(command)}`)"


def missing_privileges(purpose: str = CREATE_LABS) -> str | None:
    """None when we may create (or remove) namespaces and links, else what is missing and what to do."""
    caps = effective_capabilities()
    missing = [name for bit, name in ((CAP_SYS_ADMIN, "CAP_SYS_ADMIN"), (CAP_NET_ADMIN, "CAP_NET_ADMIN")) if not caps >> bit & 1]
    if not missing:
        return None
    if os.geteuid() == 0:
        return (f"netkit runs as root but without {' and '.join(missing)} (a restricted container?), which it needs "
                f"{purpose}: run it on the host or in a privileged container, e.g. systemd-nspawn --private-network")
    return f"netkit needs {' and '.join(missing)} {purpose}: {how_to_run_as_root()}"


def require_privileges(purpose: str = CREATE_LABS) -> None:
    """Raise EnvironmentUnusable (the CLI's exit 4, cannot run here; a test's skip) saying what to do, unless privileged."""
    reason = missing_privileges(purpose)
    if reason:
        raise EnvironmentUnusable(reason)
