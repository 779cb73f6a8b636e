"""Temporary files of a killed netkit process: named by its PID, removed by `netkit cleanup` and the next pool."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from netkit import rundir
from netkit.privileges import missing_privileges


def _dead_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_only_run_directories_of_gone_processes_are_stale(tmp_path):
    dead = tmp_path / f"netkit-run-{_dead_pid()}-abc"
    alive = tmp_path / f"netkit-run-{os.getpid()}-def"
    (dead / "multiprocessing-x").mkdir(parents=True)
    alive.mkdir()
    for other in ("netkit-run-x-1", "pymp-123", "netkit-ipv4-idle-x.pcap"):
        (tmp_path / other).mkdir() if "pcap" not in other else (tmp_path / other).write_text("")
    (tmp_path / f"netkit-run-{_dead_pid()}-file").write_text("not a directory")
    assert rundir.stale_dirs(str(tmp_path)) == [str(dead)]
    assert rundir.remove_stale(str(tmp_path)) == [str(dead)]
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, "netkit-run-x-1", "pymp-123", "netkit-ipv4-idle-x.pcap",
                                                  next(n for n in os.listdir(tmp_path) if n.endswith("-file"))])


def test_a_process_gets_one_directory_removed_at_exit(tmp_path):
    code = ("import os; from netkit import rundir; a = rundir.process_dir(); b = rundir.process_dir(); "
            "assert a == b and os.path.basename(a).startswith(f'netkit-run-{os.getpid()}-'); print(a)")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(tmp_path)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(tmp_path)) and os.listdir(tmp_path) == []


@pytest.fixture
def short_tmp():
    """A TMPDIR short enough for the forkserver's socket path (AF_UNIX: 108 bytes); pytest's tmp_path is not."""
    path = tempfile.mkdtemp(prefix="nkt-", dir="/tmp")
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))
def test_a_gate_killed_with_sigkill_leaves_only_a_run_directory_that_cleanup_removes(short_tmp):
    tmp_path = short_tmp
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    gate = subprocess.Popen([sys.executable, "-m", "netkit.cli", "gate", "--only", "ipv4-idle-link-down-1/1/3"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(os.scandir(tmp_path)) and gate.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # the pool and its forkserver are up, the scenario runs
    assert gate.poll() is None, gate.stderr.read().decode() if gate.stderr else ""
    gate.send_signal(signal.SIGKILL)
    gate.communicate()
    left = os.listdir(tmp_path)
    assert left and all(n.startswith(f"netkit-run-{gate.pid}-") for n in left), left
    done = subprocess.run([sys.executable, "-m", "netkit.cli", "cleanup"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and f"removed temporary directory {tmp_path}/netkit-run-{gate.pid}-" in done.stdout
    assert os.listdir(tmp_path) == []
