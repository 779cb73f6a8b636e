"""Where the gallery's programs are, whether this machine has them, and their versions.

The programs are not netkit's dependencies: ``scripts/provision-gallery``
installs them (Debian packages, and the ``gallery`` extra's PyPI packages
into netkit's own environment), an opt-in step docs/gallery-command.md names.  An exhibit
whose program is missing is skipped with the requirement that says what to
install; the gallery never installs anything itself.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import EnvironmentUnusable
from .exhibits import Exhibit

PROVISION = "scripts/provision-gallery"
GO_BINARY = "gallery-go"  # built next to its source, ignored by git
VERSION_TIMEOUT_S = 10
BUILD_TIMEOUT_S = 300


def examples_dir() -> Path:
    """``examples/gallery`` of the checkout netkit runs from (the gallery's programs are not in the wheel)."""
    found = Path(__file__).resolve().parents[2] / "examples" / "gallery"
    if not found.is_dir():
        raise EnvironmentUnusable(f"no {found}: the gallery's programs live in netkit's repository; run `netkit "
                                  "gallery` from a checkout (git clone, then scripts/provision.sh)")
    return found


def _python_module(name: str, python: str) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec(name) is not None
    if not os.access(python, os.X_OK):
        return False
    return subprocess.run([python, "-c", f"import {name}"], capture_output=True, timeout=VERSION_TIMEOUT_S,
                          check=False).returncode == 0


def _user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _postgres_server() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/postgres"))


@functools.cache
def missing(requirement: str) -> bool:
    """Whether this machine lacks the requirement (an executable, a Python module, a user).

    Asked once per requirement and run: exhibits share them, and the
    interpreter check starts a Python each time.
    """
    kind, _, what = requirement.partition(":")
    if kind == "python":
        return not _python_module(what, sys.executable)
    if requirement == "python3-psycopg2":
        return not _python_module("psycopg2", "/usr/bin/python3")
    if requirement == "postgres":
        return not _postgres_server()
    if requirement == "postgres-user":
        return not _user("postgres")
    return shutil.which(requirement) is None


def missing_for(exhibit: Exhibit) -> list[str]:
    return [r for r in exhibit.needs if missing(r)]


def skip_reason(exhibit: Exhibit) -> str | None:
    absent = missing_for(exhibit)
    if not absent:
        return None
    return f"needs {', '.join(absent)}: {PROVISION} installs the gallery's programs"


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    return (done.stdout + done.stderr).strip()


def _first(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    return found.group(1) if found else (text.splitlines() or ["?"])[0]


def _py(python: str, expression: str) -> str:
    return _run([python, "-c", f"print({expression})"])


def _postgres_version() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[4]))
    return _first(r"PostgreSQL\) (\S+)", _run([str(found[-1]), "--version"])) if found else "?"


VERSIONS: dict[str, Callable[[], str]] = {  # how to ask each program its version (asked only when it runs)
    "go": lambda: _first(r"go version go(\S+)", _run(["go", "version"])),
    "node": lambda: f"{_run(['node', '--version']).lstrip('v')} (libuv {_run(['node', '-p', 'process.versions.uv'])})",
    "grpcio": lambda: _py(sys.executable, "__import__('grpc').__version__"),
    "redis-py": lambda: _py(sys.executable, "__import__('redis').__version__"),
    "psycopg": lambda: _py(sys.executable, "__import__('psycopg').__version__ + ' (libpq ' + "
                                           "str(__import__('psycopg').pq.version()) + ')'"),
    "psycopg2": lambda: _py("/usr/bin/python3", "__import__('psycopg2').__version__.split()[0] + ' (libpq ' + "
                                                "str(__import__('psycopg2').extensions.libpq_version()) + ')'"),
    "pgbouncer": lambda: _first(r"PgBouncer (\S+)", _run(["pgbouncer", "--version"])),
    "haproxy": lambda: _first(r"version (\S+)", _run(["haproxy", "-v"])),
    "nginx": lambda: _first(r"nginx/(\S+)", _run(["nginx", "-v"])),
    "redis-server": lambda: _first(r"v=(\S+)", _run(["redis-server", "--version"])),
    "postgres": _postgres_version,
}


def version_of(exhibit: Exhibit) -> str:
    return VERSIONS[exhibit.version]()


def go_client(examples: Path) -> Path:
    """The Go example, built for this machine once (and again when its source is newer)."""
    source = examples / "go"
    binary = source / GO_BINARY
    if binary.exists() and binary.stat().st_mtime >= max(p.stat().st_mtime for p in source.glob("*.go")):
        return binary
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    env.setdefault("GOCACHE", str(Path.home() / ".cache" / "go-build"))
    done = subprocess.run(["go", "build", "-o", GO_BINARY, "."], cwd=source, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise EnvironmentUnusable(f"`go build` of {source} failed (exit {done.returncode}): "
                                  f"{(done.stderr or done.stdout).strip()}")
    return binary


def placeholders(examples: Path, needs_go: bool) -> dict[str, str]:
    """The gallery's own placeholders (check-client fills in {host} and {port})."""
    values = {"{examples}": str(examples), "{python}": sys.executable}
    values["{go_client}"] = str(go_client(examples)) if needs_go else "{go_client}"
    return values


def command_for(exhibit: Exhibit, values: dict[str, str]) -> list[str]:
    argv = []
    for arg in exhibit.command:
        for key, value in values.items():
            arg = arg.replace(key, value)
        argv.append(arg)
    return argv


__all__ = ["PROVISION", "command_for", "examples_dir", "missing", "placeholders", "skip_reason", "version_of"]
