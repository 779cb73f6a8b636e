"""tracefs hygiene: netkit's instances removed by `netkit cleanup` once their owner is gone, and nothing else touched.

The kernel has one tracefs, shared by every process and every container that
mounts it; netkit's runs each record into a private instance named
``nk-<pid>-<pidns>-<hex>`` (netkit.lab.tracefs). These tests create real
instances -- with a dead owner, a live one, an owner in another pid namespace,
and a name that is not netkit's -- and check that cleanup removes exactly the
dead owner's, that a process killed with SIGKILL leaves its instance for
cleanup to remove, and that the top-level tracing state stays byte for byte
what it was. Every instance a test creates is removed at its end.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap

import pytest
from hostsnapshot import TESTS_OWN_INSTANCE, differences, tracing_state

from netkit import doctor
from netkit.cleanup import cleanup
from netkit.lab import timers, tracefs
from netkit.lab.tracefeed import FeedReader, TraceFeed
from netkit.lab.tracefs import TracefsUnavailable, TraceInstance

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="tracefs instances need root")


def netkit(*args):
    return subprocess.run([sys.executable, "-m", "netkit.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def root():
    """tracefs's mount point (mounted if it was not: that changes no tracing state); skip where it cannot be had."""
    if os.geteuid() != 0:
        pytest.skip("tracefs instances need root")
    try:
        return tracefs.tracefs_root()
    except TracefsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def made(root):
    """mkdir instances by name (as a run would); every one is removed at the end, whatever the test did."""
    names: list[str] = []

    def make(name: str) -> str:
        os.mkdir(os.path.join(root, "instances", name))
        names.append(name)
        return name

    yield make
    for name in names:
        tracefs.remove_instance(os.path.join(root, "instances", name))


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()  # its pid now belongs to no process
    return done.pid


def instances(root: str) -> set[str]:
    return set(os.listdir(os.path.join(root, "instances")))


def left_since(root: str, others: set[str]) -> set[str]:
    """Instances made since ``others`` was read, less those of other netkit processes still running meanwhile.

    The session's own scenario pool (and any other netkit run on the machine) makes and keeps its
    workers' instances while these tests run: theirs are not this test's to judge.
    """
    def anothers(name: str) -> bool:
        found = tracefs.owner(name)
        return found is not None and found[0] != os.getpid() and not tracefs.owner_gone(*found)

    return {n for n in instances(root) - others if not anothers(n)}


def tag() -> str:
    return secrets.token_hex(4)


@needs_root
def test_cleanup_removes_only_the_instance_whose_netkit_process_is_gone(root, made):
    ns = tracefs.pid_namespace()
    dead = made(f"nk-{dead_pid()}-{ns}-{tag()}")
    alive = made(f"nk-{os.getpid()}-{ns}-{tag()}")
    foreign = made(f"{TESTS_OWN_INSTANCE}{tag()}")
    state = tracing_state()
    done = netkit("cleanup")
    assert done.returncode == 0, done.stderr
    left = instances(root)
    assert dead not in left
    assert alive in left and foreign in left
    assert f"removed tracefs instance {dead} (its netkit process is gone)" in done.stdout
    assert f"left tracefs instance {alive}: its netkit process still runs" in done.stdout
    assert f"left tracefs instance {foreign}: not a netkit name" in done.stdout
    assert differences({"tracing": state}, {"tracing": tracing_state()}) == []


@needs_root
def test_cleanup_dry_run_names_the_stale_instance_and_removes_nothing(root, made):
    dead = made(f"nk-{dead_pid()}-{tracefs.pid_namespace()}-{tag()}")
    report = cleanup(dry_run=True)
    assert dead in report.trace_instances
    assert dead in instances(root)
    done = netkit("cleanup", "--dry-run", "--json")
    assert dead in json.loads(done.stdout)["trace_instances"]
    assert dead in instances(root)


@needs_root
def test_an_owner_in_another_pid_namespace_is_looked_up_there(root, made):
    """Seen from the initial pid namespace, a container's run is alive while its pid runs there, and only then."""
    if tracefs.pid_namespace() != tracefs.INIT_PID_NAMESPACE:
        pytest.skip("only the initial pid namespace sees the processes of another")
    child = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "sleep", "60"])
    try:
        inner = None
        for _ in range(200):  # unshare forks sleep as pid 1 of the new namespace
            kids = subprocess.run(["pgrep", "-P", str(child.pid)], capture_output=True, text=True).stdout.split()
            if kids and tracefs.pid_namespace(int(kids[0])) not in (None, tracefs.pid_namespace()):
                inner = tracefs.pid_namespace(int(kids[0]))
                break
            os.sched_yield()
            subprocess.run(["sleep", "0.01"])
        assert inner is not None, "the child pid namespace never appeared"
        running = made(f"nk-1-{inner}-{tag()}")  # sleep is pid 1 there
        gone = made(f"nk-2-{inner}-{tag()}")  # no pid 2 in it
        found = tracefs.census(root)
        assert running in found.alive and gone in found.stale
    finally:
        child.kill()
        child.wait()


def test_from_a_container_an_owner_in_another_pid_namespace_is_never_declared_gone(monkeypatch):
    """A container sees only its own processes: another namespace's owner may well run, so it is left alone."""
    monkeypatch.setattr(tracefs, "pid_namespace", lambda pid="self": 4026532999 if pid == "self" else None)
    assert tracefs.owner_gone(dead_pid(), 4026531836) is False
    assert tracefs.owner_gone(dead_pid(), 4026532999) is True  # its own namespace: asked directly


@pytest.mark.parametrize("name, owner", [
    ("nk-1234-4026531836-c0ffee01", (1234, 4026531836)),
    ("nk-1234-c0ffee01", None),  # no pid namespace: not a name netkit makes
    ("nktest-c0ffee01", None),
    ("nk-12a-4026531836-c0ffee01", None),
])
def test_only_netkit_names_have_an_owner(name, owner):
    assert tracefs.owner(name) == owner


@needs_root
def test_an_instance_left_by_sigkill_is_removed_by_cleanup_and_nothing_else_changes(root):
    """A process that made an instance through netkit's API is killed with SIGKILL: the instance stays; cleanup removes it."""
    before, others = tracing_state(), instances(root)
    program = textwrap.dedent("""
        import sys, time
        from netkit.lab.tracefs import TraceInstance
        instance = TraceInstance.create({"timer/timer_start": "function.function == tcp_keepalive_timer"})
        print(instance.name, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    name = ""
    try:
        name = proc.stdout.readline().strip()
        assert tracefs.owner(name) == (proc.pid, tracefs.pid_namespace()), name
        assert name in instances(root)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert name in instances(root), "SIGKILL gives no chance to clean up, yet the instance is gone"
        done = netkit("cleanup")
        assert done.returncode == 0, done.stderr
        assert f"removed tracefs instance {name}" in done.stdout
        assert name not in instances(root)
        assert left_since(root, others) == set()
        assert differences({"tracing": before}, {"tracing": tracing_state()}) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if name:
            tracefs.remove_instance(os.path.join(root, "instances", name))


@needs_root
def test_a_netkit_instance_changes_no_top_level_tracing_state_and_is_removed_at_exit(root):
    before, others = tracing_state(), instances(root)
    with TraceInstance.create({e: "" for e in tracefs.EVENTS}) as instance:
        assert instance.name in instances(root)
        with open(os.path.join(instance.path, "trace_clock")) as f:
            assert "[mono]" in f.read()
        assert differences({"tracing": before}, {"tracing": tracing_state()}) == []  # a netkit instance is not listed
    assert left_since(root, others) == set()
    assert tracing_state() == before


@needs_root
def test_the_snapshot_sees_an_instance_that_is_not_netkits(root, made):
    before = tracing_state()
    name = made(f"nkseen-{tag()}")  # not netkit's format, nor the cleanup tests' own
    changed = differences({"tracing": before}, {"tracing": tracing_state()})
    assert len(changed) == 1 and name in changed[0], changed


def fake_tracefs(tmp_path, events=tracefs.EVENTS):
    (tmp_path / "instances").mkdir()
    for event in events:
        (tmp_path / "events" / event).mkdir(parents=True)
    return str(tmp_path)


def test_a_missing_event_is_said_by_name_and_nothing_is_created(tmp_path):
    root = fake_tracefs(tmp_path, events=tracefs.EVENTS[:2])
    with pytest.raises(TracefsUnavailable, match="no sock/inet_sk_error_report event"):
        TraceInstance.create({"timer/timer_start": "", "sock/inet_sk_error_report": ""}, root=root)
    assert os.listdir(os.path.join(root, "instances")) == []
    assert tracefs.missing_events(root) == list(tracefs.EVENTS[2:])


def test_a_refused_mount_says_why_and_what_a_container_needs(monkeypatch):
    monkeypatch.setattr(tracefs, "_mounted", lambda: None)
    monkeypatch.setattr(tracefs.os, "geteuid", lambda: 0)
    refused = subprocess.CompletedProcess([], 32, "", "mount: /sys/kernel/tracing: permission denied.")
    monkeypatch.setattr(tracefs.subprocess, "run", lambda *a, **k: refused)
    with pytest.raises(TracefsUnavailable, match="mounting it at /sys/kernel/tracing was refused: mount: .*"
                                                 "permission denied.*CAP_SYS_ADMIN"):
        TraceInstance.create({})


def test_without_root_tracefs_is_unavailable_and_says_so(monkeypatch):
    monkeypatch.setattr(tracefs, "_mounted", lambda: None)
    monkeypatch.setattr(tracefs.os, "geteuid", lambda: 1000)
    with pytest.raises(TracefsUnavailable, match="only root can mount it"):
        tracefs.tracefs_root()


@needs_root
def test_a_tracefs_hidden_under_a_later_mount_is_not_taken_for_a_usable_one(tmp_path):
    """As under systemd-nspawn --bind=/sys/kernel/tracing: listed in mountinfo, but sysfs is mounted over its parent."""
    program = textwrap.dedent(f"""
        import os, subprocess
        from netkit.lab import tracefs
        for line in reversed(open("/proc/self/mountinfo").readlines()):  # this private mount namespace's only
            if " - tracefs " in line:
                subprocess.run(["umount", line.split()[4]], check=True)
        parent = {str(tmp_path)!r}
        os.makedirs(parent + "/t", exist_ok=True)
        subprocess.run(["mount", "-t", "tracefs", "nodev", parent + "/t"], check=True)
        visible = tracefs._mounted()
        subprocess.run(["mount", "-t", "tmpfs", "hide", parent], check=True)
        listed = [line.split()[4] for line in open("/proc/self/mountinfo") if " - tracefs " in line]
        print(listed == [parent + "/t"], visible == parent + "/t", tracefs._mounted())
    """)
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", program],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "None"]


@needs_root
def test_doctor_reports_tracefs_and_each_event(root):
    checks = {c.name: c for c in doctor.run_checks()}
    assert checks["tracefs"].present, checks["tracefs"].detail
    assert root in checks["tracefs"].detail and "instance" in checks["tracefs"].detail
    for event in tracefs.EVENTS:
        assert event.replace("/", ":") in checks["tracefs events"].detail
    assert not checks["tracefs"].essential and not checks["tracefs events"].essential


def test_doctor_without_tracefs_says_what_netkit_does_instead(monkeypatch):
    def refused(mount=True):
        raise TracefsUnavailable("tracefs is not mounted and mounting it at /sys/kernel/tracing was refused: EPERM")

    monkeypatch.setattr(tracefs, "tracefs_root", refused)
    for probe in (doctor._probe_tracefs, doctor._probe_trace_events):
        ok, detail = doctor._try(probe)
        assert not ok and "was refused: EPERM" in detail
    assert doctor.NO_TRACE == "runs are judged from the observer and the wire; evidence: observer"


# Debian's 6.1: timer:timer_start exists, without the wheel's rounding but with its index (its format, shortened).
TIMER_START_6_1 = """name: timer_start
format:
\tfield:void * timer;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * function;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned long expires;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned long now;\toffset:32;\tsize:8;\tsigned:0;
\tfield:unsigned int flags;\toffset:40;\tsize:4;\tsigned:0;

print fmt: "timer=%p function=%ps expires=%lu [timeout=%ld] cpu=%u idx=%u flags=%s", REC->timer, REC->function, \
REC->expires, (long)REC->expires - REC->now, REC->flags & 0x0003FFFF, REC->flags >> 22, __print_flags(...)
"""


def test_a_timer_start_with_neither_bucket_nor_wheel_index_is_said_by_doctor_and_refused_before_an_instance(
        tmp_path, monkeypatch):
    root = fake_tracefs(tmp_path)
    timer_start = tmp_path / "events" / "timer" / "timer_start" / "format"
    timer_start.write_text(TIMER_START_6_1)  # Debian's 6.1: no bucket_expiry, but the wheel index is printed
    assert tracefs.missing_fields(root) == []
    timer_start.write_text(TIMER_START_6_1.replace(" idx=%u", ""))
    assert tracefs.missing_fields(root) == ["timer:timer_start has no bucket_expiry field"]
    with pytest.raises(TracefsUnavailable, match="timer:timer_start has no bucket_expiry field"):
        TraceInstance.create({"timer/timer_start": ""}, root=root)
    assert os.listdir(os.path.join(root, "instances")) == []
    monkeypatch.setattr(tracefs, "tracefs_root", lambda mount=True: root)
    ok, detail = doctor._try(doctor._probe_trace_events)
    assert not ok and "timer:timer_start has no bucket_expiry field" in detail
    timer_start.write_text(TIMER_START_6_1.replace(" idx=%u", "").replace(
        "\tfield:unsigned long now", "\tfield:unsigned long bucket_expiry;\toffset:32;\tsize:8;\tsigned:0;\n"
                                     "\tfield:unsigned long now"))
    assert tracefs.missing_fields(root) == []


def test_a_feed_that_cannot_be_made_for_a_pool_is_said_by_each_workers_run(monkeypatch):
    """Debian's 6.1 (no bucket_expiry): the pool's owner cannot make the feed; each worker's run says why."""
    def lacking(cls, filters, root=None):
        raise TracefsUnavailable("this kernel's timer:timer_start has no bucket_expiry field (the ledger reads it)")

    monkeypatch.setattr(TraceInstance, "create", classmethod(lacking))
    monkeypatch.setattr(TraceFeed, "_owned", {})  # not the session's own feed, made by an earlier test
    monkeypatch.delenv(timers.SWITCH, raising=False)
    handed = timers.workers_feed()
    assert handed == "this kernel's timer:timer_start has no bucket_expiry field (the ledger reads it)"
    monkeypatch.setattr(FeedReader, "_attached", None)
    FeedReader.attach(handed)  # what _worker_init does with it
    trace = timers.TimerTrace.start(250)
    assert trace.feed is None and trace.note == handed
