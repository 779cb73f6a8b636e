"""The scenario pool: worker processes never outlive the run that owns them."""

import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import process_group, wait_for

from netkit.privileges import missing_privileges

pytestmark = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

OWNER = textwrap.dedent("""
    import signal, sys, time
    from netkit import KeepaliveSettings, Scenario, ScenarioPool
    if __name__ == "__main__":
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with ScenarioPool() as pool:
            pool.submit(*[Scenario(KeepaliveSettings(1, 1, 10), family) for family in ("ipv4", "ipv6")])
            print("submitted", flush=True)
            time.sleep(60)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_workers_end_with_their_owner(tmp_path, sig):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert owner.stdout.readline().strip() == "submitted"
        wait_for(lambda: len(process_group(owner.pid)) > 2, timeout=10,  # owner, forkserver, workers
                 what="the pool's workers to start")
        owner.send_signal(sig)
        owner.wait(timeout=20)
        wait_for(lambda: process_group(owner.pid) == [], timeout=5, interval=0.1,
                 what="worker processes to end with their owner")
    finally:
        owner.kill()


UNGUARDED = textwrap.dedent("""
    from netkit import KeepaliveSettings, Scenario, run_many
    print("top level ran", flush=True)
    results = run_many([Scenario(KeepaliveSettings(1, 1, cnt), fault="peer-reboot") for cnt in (1, 2, 3)])
    print("verdicts", [r.verdict for r in results], flush=True)
""")


def test_an_unguarded_script_is_not_run_again_by_the_workers(tmp_path):
    """Workers import netkit only: the caller's top level runs once, not once per worker."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("top level ran") == 1, done.stdout
    assert "verdicts ['pass', 'pass', 'pass']" in done.stdout, done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(2))
def test_a_session_that_leaves_scenarios_running_ends_at_once(attempt, tmp_path):
    """A test submits ~60 scenarios and waits for one; the rest are still running at exit, which must not hang.

    Before the fix, this hung at exit in about half the runs (measured 2 of 4 on the code before it, 0 of 12
    after): close() interrupted idle workers too, and an idle worker interrupted while reading a task left
    the others waiting on the task queue forever. Now only a worker running a scenario takes SIGINT.  (The
    test used to select one test of the fault matrix with ``-k``, when the pool started every collected
    test's scenarios; it now starts only the selected tests', so the many scenarios are submitted here.)
    """
    (tmp_path / "test_many.py").write_text(
        "from netkit import KeepaliveSettings, Scenario\n"
        "from netkit.gate import matrix\n"
        "FIRST = Scenario(KeepaliveSettings(1, 1, 1))\n"
        "MANY = matrix.unique(matrix.FAULTS + matrix.UNACKED + matrix.ZERO_WINDOW)\n"
        "def test_one_result_of_many_started(netkit_pool):\n"
        "    netkit_pool.submit(FIRST, *MANY)  # all started at once; this test waits for the first only\n"
        "    assert netkit_pool.result(FIRST).verdict == 'pass'\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_many.py")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-2000:]
