"""Shared test helpers."""

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from netkit.cleanup import kept_namespaces
from netkit.lab.namespaces import owner_pid
from netkit.lab.proc import process_alive
from netkit.lab.tracefs import TracefsUnavailable, tracefs_root
from netkit.privileges import missing_privileges

# Modules whose module-scoped fixture does the expensive part once -- the whole gate (test_gate, test_host_untouched),
# every check-server and check-client run (test_check_server, test_check_client), the README's and docs' commands in order,
# from files written at the root (test_readme) -- and whose tests must therefore share one worker under pytest-xdist.
MODULES_IN_ONE_WORKER = ("tests/test_check_client.py", "tests/test_check_server.py", "tests/test_gate.py",
                         "tests/test_host_untouched.py", "tests/test_readme.py", "tests/test_gallery.py",
                         "tests/test_wheel.py")


def pytest_addoption(parser):
    parser.addoption("--gallery", action="store_true",
                     help="also run `netkit gallery` for real (its programs: scripts/provision-gallery; ~3 minutes); "
                          "scripts/check-gallery does both")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist's default ``--dist load``: as ``load``, but each of MODULES_IN_ONE_WORKER goes to one worker.

    Split over workers, each worker would run the module's fixture again: the
    whole gate several times at once, or -- for the README -- two workers
    writing the same files.  (``xdist_group`` markers with ``--dist loadgroup``
    would say the same, but with pytest 9 and xdist 3.8 the group never reaches
    the test ids, so grouped tests were spread: checked with a three-test file.)
    Every other test is its own scope, which is what ``load`` does.
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ExpensiveModulesInOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            return module if module in MODULES_IN_ONE_WORKER else nodeid

    return ExpensiveModulesInOneWorker(config, log)


@pytest.fixture
def assert_no_leftovers():
    """Call it after a run ended: fails if that run left a named nk namespace behind.

    Only namespaces that appeared during the test *and* whose owner process
    has ended count, so other netkit processes running meanwhile (a parallel
    benchmark, xdist workers) cannot make the test flaky.
    """
    before = set(kept_namespaces())

    def check():
        new = set(kept_namespaces()) - before
        orphaned = sorted(n for n in new if owner_pid(n) is None or not process_alive(owner_pid(n)))
        assert not orphaned, f"left behind by a process that has ended: {orphaned}"

    return check


@pytest.fixture
def without_privileges():
    """How to run a command here without netkit's privileges, and what netkit must then say.

    As root, CAP_NET_ADMIN and CAP_SYS_ADMIN are dropped with setpriv (root stays
    uid 0: netkit must say it lacks the capabilities, e.g. in a restricted
    container). As a normal user there is nothing to drop: netkit must say to
    run it as root. Either way the message names both capabilities.
    """
    if os.geteuid() == 0:
        prefix = ["setpriv", "--bounding-set=-net_admin,-sys_admin", "--inh-caps=-net_admin,-sys_admin"]
        return Unprivileged(prefix, "without CAP_SYS_ADMIN and CAP_NET_ADMIN (a restricted container?)")
    if missing_privileges() is None:
        pytest.skip("this user holds CAP_NET_ADMIN and CAP_SYS_ADMIN without being root: cannot drop them here")
    return Unprivileged([], "needs CAP_SYS_ADMIN and CAP_NET_ADMIN")


@dataclass(frozen=True)
class Unprivileged:
    prefix: list  # put before the command
    says: str  # what netkit's message must contain
def wait_for(condition, timeout=5.0, interval=0.01, what="the condition"):
    """Poll ``condition()`` until it returns something truthy (returned); fail the test after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(interval)


def process_group(pgid):
    """Pids in process group ``pgid`` (from /proc: a minimal Debian has no pgrep)."""
    import os

    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, pgrp, ...
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(pid))
    return members


WHOLE_GATE_LOCK = "/tmp/netkit-tests-whole-gate.lock"


def gate(*args: str, **kwargs: object) -> "subprocess.CompletedProcess[str]":
    """``netkit gate ARGS`` run as a user would, with this interpreter (no stdin; output captured as text)."""
    return subprocess.run([sys.executable, "-m", "netkit.cli", "gate", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]


def browser_tools():
    """Chromium and chromedriver (tests/browser.py), or the test ends: failed under ``scripts/test``, which has just
    provisioned them (``NETKIT_REQUIRE_BROWSER=1``), else skipped with how to install them."""
    from browser import find_tools

    found = find_tools()
    if isinstance(found, str):
        if os.environ.get("NETKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NETKIT_REQUIRE_BROWSER=1 (scripts/test) and {found}")
        pytest.skip(found)
    return found


@contextmanager
def one_whole_gate_at_a_time() -> Iterator[None]:
    """Hold the suite's machine-wide lock (flock) while a whole gate or a README command runs: the others wait.

    The full gate and the host check each run the whole matrix, 48 labs at
    once on two CPUs, and the README's commands include two more whole gates
    and the benchmarks.  Under pytest-xdist they ran side by side, and before
    the timer ledger a whole gate beside another made the kernel's timers
    late enough to fail (keepalive probes 1.036-1.037 s apart where the wheel
    allows 1.036, a RST 5 ms past its window).  With the ledger, two whole
    gates at once pass (3 pairs: 696 runs, no retry), so the lock now keeps
    the benchmarks' figures (wall times, ratios) from measuring another
    test's gate.  The README's and the docs' commands (test_readme.py) take
    it one by one, so a whole gate of another test waits at most for one of
    them, and none runs beside it.  The lock goes with the
    file, so a killed holder releases it.
    """
    with open(WHOLE_GATE_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def netkit_runs_at_once(command: str, runs: dict[str, list[str]], timeout: float = 90) -> dict:
    """{name: CompletedProcess (plus .pid)} of ``netkit COMMAND ARGS`` for every run, CPUs + 1 of them at a time.

    CPUs: those this process may use, as the scenario pool counts them.
    Not all at once: ten audits starting together (Python, a lab, the
    program) are a burst of several CPU-seconds, which made the timers of a
    gate running beside them in the suite late.  A run still going at the
    timeout gets SIGINT, which makes netkit tear its lab down, before the
    fixture fails.
    """
    waiting, running, done = list(runs.items()), {}, {}
    started: dict = {}
    try:
        while waiting or running:
            while waiting and len(running) < len(os.sched_getaffinity(0)) + 1:
                name, args = waiting.pop(0)
                running[name] = subprocess.Popen([sys.executable, "-m", "netkit.cli", command, *args],
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                started[name] = time.monotonic()
            name = next(iter(running))
            proc = running.pop(name)
            out, err = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - started[name])))
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            done[name].pid = proc.pid  # the netkit process: netkit names kept namespaces after it
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=30)
    return done


def tracing_here() -> bool:
    """Whether netkit can trace the kernel's timers here (tracefs mounted, or mountable)."""
    try:
        tracefs_root()
    except TracefsUnavailable:
        return False
    return True


def judged_on_the_kernels_clock(result: dict, intvl_jiffies: int) -> None:
    """check-server's or check-client's JSON: with tracefs, the program's socket has a ledger, whose keepalive re-arms
    are the rule's and whose CLOSE is the death judged, inside sock_diag's bracket."""
    if not tracing_here():
        assert result["evidence"] == "observer" and result["evidence_note"]
        return
    assert result["evidence"] == "trace", result["evidence_note"]
    ledger = result["ledger"]
    assert ledger["death"]["function"] == "tcp_keepalive_timer" and ledger["death"]["error"] == 110
    assert result["kernel_death_s"] == round(ledger["death"]["t_s"], 6) and result["rule_failures"] == []
    last_seen, gone = result["dead_between_s"]  # sock_diag's bracket (whole ms), on the same axis, holds the CLOSE
    assert last_seen - 0.0005 <= result["kernel_death_s"] <= gone + 0.0005
    probe_rearms = [a["delay"] for a in ledger["armings"] if a["by_run"] and a["delay"] == intvl_jiffies]
    assert len(probe_rearms) >= result["probes"]  # every unanswered probe re-armed for intvl * HZ
