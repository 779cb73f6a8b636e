"""The set-up scripts and the `netkit` command they install behave as the README says."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
WRAPPER = pathlib.Path("/usr/local/bin/netkit")
MARKER = "# netkit-wrapper: installed by scripts/provision.sh"
A_MODEL_TEST = "test_granularity_at_hz250_matches_measured_steps"


def test_scripts_test_takes_paths_from_the_callers_directory():
    """`cd tests && ../scripts/test test_model.py` means tests/test_model.py, as pytest would take it."""
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        pytest.skip("scripts/test must run as root (it re-runs itself through sudo), and sudo is not installed")
    done = subprocess.run(["bash", "../scripts/test", "--collect-only", "-q", f"test_model.py::{A_MODEL_TEST}"],
                          cwd=ROOT / "tests", capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"tests/test_model.py::{A_MODEL_TEST}" in done.stdout


@pytest.fixture
def wrapper():
    if not WRAPPER.exists() or MARKER not in WRAPPER.read_text(errors="replace"):
        pytest.skip(f"{WRAPPER} is not netkit's wrapper: run {ROOT}/scripts/provision.sh")
    return WRAPPER.read_text()


def test_the_installed_command_runs_this_checkouts_netkit(wrapper):
    assert f"netkit={ROOT}/.venv/bin/netkit\n" in wrapper
    done = subprocess.run([str(WRAPPER), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("netkit "), done.stderr


def test_the_installed_command_says_what_to_do_when_its_checkout_is_gone(wrapper, tmp_path):
    moved = tmp_path / "netkit"
    moved.write_text(wrapper.replace(f"{ROOT}/.venv/bin/netkit", f"{tmp_path}/gone/.venv/bin/netkit"))
    moved.chmod(0o755)
    done = subprocess.run([str(moved), "doctor"], capture_output=True, text=True)
    assert done.returncode == 2
    assert f"{tmp_path}/gone/.venv/bin/netkit is gone" in done.stderr and "scripts/provision.sh" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a user who has no sudo")
def test_scripts_without_root_and_without_sudo_exit_4_saying_so(tmp_path):
    """A minimal machine has no sudo: a normal user is told to run the script as root (exit 4, cannot run here)."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}  # a PATH without sudo
    for bindir in ("/usr/bin", "/bin"):
        if os.path.exists(f"{bindir}/sudo"):
            pytest.skip("sudo is installed in /usr/bin or /bin: cannot hide it from the script")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash",
                           str(ROOT / "scripts" / "demo")], capture_output=True, text=True, env=env)
    assert done.returncode == 4, done.stderr
    assert "must run as root" in done.stderr and "sudo is not installed" in done.stderr


@pytest.mark.parametrize("call, status, says", [
    ("netkit_die me 'unknown argument: --x'", 2, "me: error: unknown argument: --x"),  # bad input
    ("netkit_cannot_run me 'no apt-get'", 4, "me: error: no apt-get"),  # this machine
    ("netkit_quiet me 'apt-get install' sh -c 'echo E: Unable to locate package nk-none; exit 100'", 4,
     "me: error: apt-get install failed (exit 100)"),  # the machine could not be made ready: cannot run here
    ("NETKIT_VERBOSE=1 netkit_quiet me 'apt-get install' false", 4, "me: error: apt-get install failed (exit 1)"),
    ("netkit_quiet me 'true' true; echo fine", 0, ""),
])
def test_the_scripts_exit_2_for_bad_input_and_4_when_they_cannot_run_here(call, status, says):
    """scripts/lib.sh, as docs/cli.md's table says: 2 bad input (netkit_die), 4 cannot run here (kselftest's skip)."""
    done = subprocess.run(["bash", "-c", f'. "$0"; {call}', str(ROOT / "scripts" / "lib.sh")], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"})
    assert done.returncode == status, done.stdout + done.stderr
    assert says in done.stderr
    if status == 4 and "VERBOSE" not in call and "quiet" in call:
        assert "Unable to locate package nk-none" in done.stderr  # the log's tail, shown only on failure


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a user who has no sudo")
def test_as_a_user_without_sudo_and_with_roots_home_the_tests_skip_saying_why(tmp_path):
    """Issue 28: a plain user, no sudo on the machine, HOME root's (su without -): skips with reasons, no failure.

    The tests that need scripts/test (root, through sudo) or read the kernel cache (under HOME) run as uid 65534
    with a PATH that holds only what they call, so sudo is hidden even where it is installed.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    runs = [*nobody, "/bin/sh", "-c", '"$0" -c "import netkit"', sys.executable]  # as the tests' subprocesses will
    if subprocess.run(runs, capture_output=True, cwd=ROOT).returncode:
        pytest.skip(f"uid 65534 cannot run {sys.executable} with this checkout (under a directory only root enters?)")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)  # root's, under root's tmp_path: uid 65534 cannot read it, as /root after `su` without `-`
    tests = ["tests/test_kernels.py", "tests/test_scripts.py::test_scripts_test_takes_paths_from_the_callers_directory"]
    with tempfile.TemporaryDirectory(prefix="netkit-test-bin.") as bindir:  # in TMPDIR: uid 65534 must reach it
        os.chmod(bindir, 0o755)
        for tool in ("bash", "dirname", "id", "basename"):  # what scripts/test runs before it finds no sudo
            os.symlink(shutil.which(tool) or pytest.fail(f"{tool} is not installed"), os.path.join(bindir, tool))
        done = subprocess.run([*nobody, sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests],
                              cwd=ROOT, env={"PATH": bindir, "HOME": str(home), "LANG": "C.UTF-8"},
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert any("scripts/test must run as root" in line and "sudo is not installed" in line for line in skipped), skipped
    assert any(f"kernel cache {home}/.cache/netkit/kernels: cannot read it (permission denied)" in line
               and "NETKIT_KERNEL_CACHE" in line for line in skipped), skipped
