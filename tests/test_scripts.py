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


def lib_sh(script: str, tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    """SCRIPT run in bash with scripts/lib.sh sourced, from TMP_PATH."""
    return subprocess.run(["bash", "-c", f'. "$0"; {script}', str(ROOT / "scripts" / "lib.sh")], cwd=tmp_path,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"})


def test_the_check_scripts_steps_are_timed_and_a_failed_one_is_in_the_summary(tmp_path):
    """lib.sh's netkit_step: every step runs and gets a line; a failure sets netkit_failed; details follow their step."""
    done = lib_sh("""
        started=$(netkit_now)
        fails() { echo inside; return 3; }
        detailed() { netkit_step_details+=("     one detail"); }
        netkit_step "a step that passes" true
        netkit_step "a step that fails" fails || echo "returned $?"
        netkit_step "a step with details" detailed
        netkit_print_summary "title" "$started"
        echo "failed=$netkit_failed"
    """, tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "=== a step that fails\ninside\nreturned 3" in out
    lines = out[out.index("=== summary (title)"):].splitlines()
    assert lines[1].startswith("ok   a step that passes") and lines[1].endswith(" s")
    assert lines[2].startswith("FAIL a step that fails") and lines[2].endswith("(exit 3)")
    assert lines[3].startswith("ok   a step with details") and lines[4] == "     one detail"
    assert lines[5].startswith("total ") and out.rstrip().endswith("failed=1")


def test_a_killed_runs_work_directory_is_swept_unless_kept_or_still_running(tmp_path):
    """lib.sh's netkit_sweep_stale: only directories whose run.pid names no live run of the script go."""
    gone, kept, running, unmarked = (tmp_path / f"netkit-x.{name}" for name in ("gone", "kept", "running", "unmarked"))
    for work in (gone, kept, running, unmarked):
        work.mkdir()
    (gone / "run.pid").write_text("999999999\n")  # above pid_max: no such process
    (kept / "run.pid").write_text("999999999\n")
    (kept / "kept").touch()
    live = subprocess.Popen(["sleep", "30"])  # stands for the script, found by name in its command line
    try:
        (running / "run.pid").write_text(f"{live.pid}\n")
        done = lib_sh(f"netkit_sweep_stale me sleep {tmp_path}/netkit-x.*", tmp_path)
    finally:
        live.kill()
        live.wait()
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"me: removing {gone}, left by an earlier run that was killed\n"
    assert not gone.exists() and kept.exists() and running.exists() and unmarked.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the scripts re-run themselves through sudo when not root")
@pytest.mark.parametrize("argv, status, says", [
    (["check-vagrant-up", "--help"], 0, "Usage: scripts/check-vagrant-up [OPTIONS]"),
    (["check-vagrant-up", "--bogus"], 2, "unknown argument: --bogus"),
    (["check-vagrant-up", "--accel", "hvf"], 2, "--accel takes tcg or kvm, not hvf"),
    (["check-vagrant-up", "--only"], 2, "--only needs a pattern"),
    (["build-vagrant-box", "--help"], 0, "Usage: scripts/build-vagrant-box [--out FILE] [--mirror URL]"),
    (["build-vagrant-box", "--out"], 2, "--out needs a file"),
])
def test_the_vagrant_scripts_read_their_options_before_touching_anything(argv, status, says):
    """Help and bad options are answered at once: nothing installed, built or started (it would take minutes)."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / argv[0]), *argv[1:]], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)
    assert done.returncode == status, done.stdout + done.stderr
    assert says in (done.stdout if status == 0 else done.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="the script re-runs itself through sudo when not root")
def test_the_box_cache_is_named_by_its_recipe():
    """A changed build-vagrant-box means a new box: check-vagrant-up's cache key is the script's own hash."""
    import hashlib

    recipe = hashlib.sha256((ROOT / "scripts" / "build-vagrant-box").read_bytes()).hexdigest()[:12]
    done = subprocess.run(["bash", str(ROOT / "scripts" / "build-vagrant-box"), "--print-default-out"],
                          capture_output=True, text=True, check=True, timeout=30)
    assert done.stdout.strip() == f"/var/tmp/netkit-vagrant-box/netkit-bookworm-{recipe}.box"
