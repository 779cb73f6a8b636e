"""The distribution, as a user gets it: the wheel and the sdist built, the wheel installed and run away from the checkout.

The build and the install are docs/index.md's "Installing from a wheel"
commands, run verbatim in a copy of the checkout (so that the checkout gets no
egg-info) with a temporary home: ``python -m build`` makes the sdist and the
wheel from that sdist (so the sdist is proven to hold what a build needs), and
the wheel goes into a fresh venv, ``~/netkit-venv``.  Every command then runs
from another directory, with no PYTHONPATH, so nothing can import netkit from
this checkout: ``netkit --version``, ``python -m netkit --version``, ``netkit
doctor``, a short demo (root only) and a tiny project's test that uses the
plugin's ``netkit_connection`` fixture, run by that venv's pytest.

Needs the package index (the build fetches setuptools, pip the dependencies;
pip's cache makes a re-run fast): without it the tests skip and say so.  The
temporary directory is removed at the end, whatever happened.
"""

from __future__ import annotations

import ast
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from netkit.privileges import missing_privileges

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "netkit-tcp"
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")

PLUGIN_TEST = '''
from netkit import KeepaliveSettings


def test_a_connection_from_the_installed_plugin(netkit_connection):
    netkit_connection.client.sendall(b"x")
    assert netkit_connection.server.recv(1) == b"x"
    KeepaliveSettings(1, 1, 3).apply(netkit_connection.server)
'''


def source_version() -> str:
    """``netkit.__version__`` as written in the checkout (the one version source), read without importing."""
    tree = ast.parse((ROOT / "netkit" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise AssertionError("netkit/__init__.py does not set __version__")


def index_unreachable() -> str | None:
    """Why the package index cannot be used from here, or None."""
    url = f"{INDEX}/setuptools/"
    cafile = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE")  # a proxy's CA, as pip is given it
    try:
        with urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context(cafile=cafile)) as answer:
            answer.read(1)
    except OSError as e:
        return f"the package index is unreachable ({url}: {e}); building the wheel needs setuptools from it"
    return None


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    venv: Path  # the venv the wheel is installed in
    work: Path  # an empty directory outside the checkout, the working directory of every command
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def clean_env(venv: Path) -> dict[str, str]:
    """This environment without what would make Python or pytest look at the checkout; the venv first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
           and not k.startswith("PYTEST_XDIST")}
    env["PATH"] = f"{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def wheel_commands() -> list[str]:
    """docs/index.md's "Installing from a wheel" block (``<!-- readme-commands: wheel -->``), as a reader types it."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme-commands"), "--where", "wheel", "--shell"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    commands = done.stdout.splitlines()
    assert commands, "docs/index.md shows no wheel block (<!-- readme-commands: wheel -->)"
    return commands


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """The docs' wheel commands, verbatim, in a copy of the checkout with a temporary home (``~/netkit-venv``)."""
    reason = index_unreachable()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="netkit-wheel-") as tmp:
        top = Path(tmp)
        src, home, work = top / "src", top / "home", top / "work"
        home.mkdir()
        work.mkdir()
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", ".nox", "*.egg-info", "__pycache__",
                                                                 "build", "dist", "site", "*.pcap"))
        env = clean_env(home / "netkit-venv") | {"HOME": str(home)}
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the reader's, before the venv
        for command in wheel_commands():
            done = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=src, env=env, capture_output=True,
                                  text=True, timeout=300, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        (wheel,) = (src / "dist").glob("*.whl")
        (sdist,) = (src / "dist").glob("*.tar.gz")
        venv = home / "netkit-venv"
        yield Installed(wheel, sdist, venv, work, clean_env(venv))


def wheel_metadata(wheel: Path) -> tuple[set[str], Message, str]:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        metadata = HeaderParser().parsestr(z.read(f"{info}/METADATA").decode())
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    return names, metadata, entry_points


@pytest.mark.timeout(600)  # the fixture builds and installs (about 15 s with pip's cache)
def test_the_sdist_holds_what_a_build_needs(installed):
    with tarfile.open(installed.sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    missing = {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO", "netkit/__init__.py", "netkit/py.typed",
               "netkit/kernel.config"} - names
    assert not missing, f"the sdist lacks {sorted(missing)}"
    assert installed.sdist.name == f"netkit_tcp-{source_version()}.tar.gz"


@pytest.mark.timeout(600)
def test_the_wheel_holds_the_package_data_entry_points_and_metadata(installed):
    names, metadata, entry_points = wheel_metadata(installed.wheel)
    assert {"netkit/py.typed", "netkit/kernel.config", "netkit/__main__.py"} <= names
    schemas = {f"netkit/schemas/{p.name}" for p in (ROOT / "netkit" / "schemas").glob("*.json")}
    assert schemas <= names, f"schemas missing from the wheel: {sorted(schemas - names)}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    assert metadata["Name"] == DISTRIBUTION
    assert metadata["Version"] == source_version()
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"].startswith(">=")
    core = {r.name for r in map(Requirement, metadata.get_all("Requires-Dist")) if r.marker is None}
    assert core == {"pyroute2", "pytest", "pytest-timeout"}, core
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    lines = [line.replace(" ", "") for line in entry_points.splitlines()]
    assert lines[lines.index("[console_scripts]") + 1:].count("netkit=netkit.cli:main") == 1, entry_points
    assert "netkit=netkit.plugin" in lines[lines.index("[pytest11]") + 1:], entry_points


@pytest.mark.timeout(600)
def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    done = installed.run(installed.bin("python"), "-c", "import netkit, importlib.metadata as m; "
                         "print(netkit.__file__); print(m.version('netkit-tcp'))")
    assert done.returncode == 0, done.stderr
    where, version = done.stdout.split()
    assert Path(where).is_relative_to(installed.venv), where
    assert version == source_version()


@pytest.mark.timeout(600)
def test_version_from_the_command_and_python_m(installed):
    for argv in ([installed.bin("netkit"), "--version"], [installed.bin("python"), "-m", "netkit", "--version"]):
        done = installed.run(*argv)
        assert (done.returncode, done.stdout.strip()) == (0, f"netkit {source_version()}"), (argv, done.stderr)


@pytest.mark.timeout(600)
def test_doctor(installed):
    done = installed.run(installed.bin("netkit"), "doctor")
    if missing_privileges() is None:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "netkit can run here" in done.stdout
    else:  # it must still run, and say why netkit cannot: neither a pass nor a failed proof
        assert done.returncode not in (0, 1), done.stdout + done.stderr
        assert done.stdout.strip() or done.stderr.strip()


@pytest.mark.timeout(600)
@pytest.mark.skipif(missing_privileges() is not None, reason=f"the demo needs root: {missing_privileges()}")
def test_a_short_demo(installed):
    done = installed.run(installed.bin("netkit"), "demo", "--idle", "1", "--intvl", "1", "--cnt", "1", "--fault",
                         "blackhole", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout, done.stdout


@pytest.mark.timeout(600)
def test_a_project_test_with_the_installed_plugin(installed):
    (installed.work / "test_with_netkit.py").write_text(textwrap.dedent(PLUGIN_TEST))
    try:
        done = installed.run(installed.bin("pytest"), "-p", "no:cacheprovider", "-rs", "test_with_netkit.py",
                             timeout=120)
    finally:
        (installed.work / "test_with_netkit.py").unlink()
        shutil.rmtree(installed.work / "__pycache__", ignore_errors=True)
    if missing_privileges() is None:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 passed" in done.stdout, done.stdout
    else:  # the plugin skips a lab test and says why
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 skipped" in done.stdout, done.stdout
