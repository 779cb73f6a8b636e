"""Shared test helpers."""

import pytest

from netkit.cleanup import kept_namespaces, process_alive
from netkit.lab.namespaces import owner_pid


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
