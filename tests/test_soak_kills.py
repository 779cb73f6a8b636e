"""Issue 22, reduced: SIGKILL of a gate's and a demo's whole process group leaves nothing once `netkit cleanup` ran.

scripts/soak-kills is the proof (10 kills of the whole matrix's gate and 10
of a demo, docs/hygiene.md); this runs it small in every full suite run: two
kills of a six-scenario gate and two of a demo, each while a bystander demo
runs.  The whole process group dies at once -- workers and forkserver too --
so no process of the killed run can remove its tracefs instances: cleanup
must, and must leave the bystander's (its owner runs), which its own exit
then removes.  The script compares the top-level tracing files with the
soak's start, file by file, and looks for namespaces, host interfaces,
processes and files; its JSON says whether anything remained.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from netkit.lab import tracefs
from netkit.privileges import missing_privileges

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "soak-kills"
# moments in [1, 4] s: past Python's imports, within the gate's labs (it lasts ~5 s on two CPUs) and the demo's run;
# one of each (the suite's time; scripts/soak-kills runs the 10 + 10)
REDUCED = ["--signal", "KILL", "--group", "--bystander", "--earliest", "1", "--latest", "4", "--seed", "19",
           "--target", "gate", "--target", "demo", "--times", "1", "--gate-only", "ipv4-idle-*-1/1/3", "--json"]


def load_script():
    loader = importlib.machinery.SourceFileLoader("soak_kills", str(SCRIPT))
    spec = importlib.util.spec_from_loader("soak_kills", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


soak = load_script()


def test_a_changed_tracing_file_is_named_and_fails():
    before = {"tracing_on": "1\n", "options/hash-ptr": "1\n", soak.OTHER_INSTANCES: ""}
    after = {**before, "options/hash-ptr": "0\n"}
    assert soak.tracing_changes(before, after) == ["top-level tracing file options/hash-ptr changed: '1\\n' -> '0\\n'"]
    notes: list[str] = []
    assert soak.settled_tracing(before, after, notes) == after and notes == []  # a file is never waited for


def test_another_process_instance_that_goes_is_noted_and_one_that_stays_fails(monkeypatch):
    before = {"tracing_on": "1\n", soak.OTHER_INSTANCES: ""}
    seen = {**before, soak.OTHER_INSTANCES: "nktest-c0ffee01"}
    looks = iter([seen, before])
    monkeypatch.setattr(soak, "tracing_state", lambda: next(looks))
    notes: list[str] = []
    assert soak.settled_tracing(before, seen, notes) == before
    assert notes and "nktest-c0ffee01" in notes[0]
    monkeypatch.setattr(soak, "tracing_state", lambda: seen)
    monkeypatch.setattr(soak, "FOREIGN_SETTLE_S", 0.3)
    notes = []
    assert soak.tracing_changes(before, soak.settled_tracing(before, seen, notes)) == [
        "top-level tracing state instances (not netkit's) changed: '' -> 'nktest-c0ffee01'"]
    assert notes == []


def test_only_a_whole_capture_of_a_failed_scenario_counts_as_kept(tmp_path):
    whole = tmp_path / "netkit-ipv4-idle-blackhole-1_1_3-x1y2z3.pcap"
    whole.write_bytes(soak.PCAP_MAGIC_NS.to_bytes(4, "little") + bytes(20))
    empty = tmp_path / "netkit-ipv4-idle-blackhole-1_1_3-a1b2c3.pcap"  # mkstemp'd, killed before the write
    empty.write_bytes(b"")
    other = tmp_path / "journal.pcap"
    other.write_bytes(whole.read_bytes())
    assert soak.kept_capture(str(whole))
    assert not soak.kept_capture(str(empty)) and not soak.kept_capture(str(other))


@pytest.fixture
def tracefs_usable():
    reason = missing_privileges()
    if reason:
        pytest.skip(reason)
    try:
        tracefs.tracefs_root()
    except tracefs.TracefsUnavailable as exc:
        pytest.skip(f"no tracefs instances to leave behind here: {exc}")


@pytest.fixture
def session_scenarios_ended(tracefs_usable, netkit_pool):
    """The soak loads the machine on purpose; the session's own scenarios must not share it with it."""
    netkit_pool.wait_idle()


@pytest.mark.slow
def test_sigkill_of_a_whole_gate_and_demo_leaves_nothing_after_cleanup(session_scenarios_ended):
    done = subprocess.run([sys.executable, str(SCRIPT), *REDUCED], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=150)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout)
    assert summary["clean"] is True and summary["totals"]["left_after_cleanup"] == 0, done.stderr[-4000:]
    tries = summary["tries"]
    assert [(t["target"], t["signal"], t["group"]) for t in tries] == [("gate", "SIGKILL", True), ("demo", "SIGKILL", True)]
    killed = [t for t in tries if not t["ended_by_itself"]]
    assert killed and all(t["exit"] == -9 for t in killed)
    assert any(t["instances_at_kill"] for t in killed if t["target"] == "gate"), \
        "no gate was killed while it had a tracefs instance: the soak proved nothing about them"
    for t in tries:
        assert t["after_cleanup"] == [] and t["cleanup_exit"] == 0
        by = t["bystander"]
        assert by["instances"] and by["exit"] == 130, by  # it had its instance, and ended by our SIGINT
        assert not set(by["instances"]) & set(t["cleanup_removed_instances"]), "cleanup took a running run's instance"
        assert not set(t["instances_at_kill"]) & set(tracefs.netkit_instances()), "a killed run's instance remains"
    assert os.path.basename(summary["command"][0]) == "soak-kills"
