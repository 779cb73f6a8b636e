"""Several netkit runs at the same moment: no collisions, no cross-talk, nothing left behind.

Each result must belong to its own lab: a capture or a TcpExt counter shared
with another run would show extra probes (the wire's unanswered probes, the
kernel's tcpi_probes and the namespace's TCPKeepAlive must agree), and two
results naming one lab would mean one lab served two runs.  The whole suite
under pytest-xdist ``-n 8`` and the suite beside a gate are longer:
``scripts/soak-concurrency`` runs them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import one_whole_gate_at_a_time

from netkit.privileges import missing_privileges

needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))
GATE = [sys.executable, "-m", "netkit.cli", "gate", *(arg for fault in ("link-down", "blackhole", "one-way", "peer-*")
                                                       for arg in ("--only", f"ipv*-idle-{fault}-1/1/3"))]
# (each run gives --pcap-dir its tmp_path: a run that failed under this load and was retried leaves its capture there)
# the idle 1/1/3 cells of the two-namespace lab (10 each): the wire and the counters agree; two gates of the whole
# idle matrix at once overloaded two CPUs (a probe 1.040 s after the last, where the wheel allows 1.036)
TIMEOUT_S = 100


def each_run(doc: dict) -> list[dict]:
    return [run for entry in doc["scenarios"] for run in entry["runs"]]


def lab_of(run: dict) -> str:
    """The lab's namespace, as the capture names it (``nk-<owner pid>-<lab id>-server``)."""
    return run["wire"]["interface"].split(" in ")[-1]


def assert_own_lab(runs: list[dict]) -> None:
    labs = [lab_of(run) for run in runs]
    assert len(set(labs)) == len(labs), "two results name one lab"
    for run in runs:
        if run["state"] == "idle" and run["wire"]["visible"] and run["expected_error"] == "ETIMEDOUT":
            seen = (run["wire"]["unanswered_probes"], run["probes"], run["counters"]["TCPKeepAlive"])
            assert len(set(seen)) == 1, f"{run['id']}: wire, tcpi_probes and TCPKeepAlive disagree: {seen}"


@pytest.fixture(autouse=True)
def _session_scenarios_ended(request):
    """These runs load the machine on purpose; the session's own scenarios must not share it with them."""
    if missing_privileges() is None:
        request.getfixturevalue("netkit_pool").wait_idle()


@needs_root
@pytest.mark.slow
def test_two_gates_started_together_both_pass_each_with_its_own_labs(tmp_path, assert_no_leftovers):
    with one_whole_gate_at_a_time():  # the two gates together, without a README command or a whole gate beside them
        procs = [subprocess.Popen([*GATE, "--json", str(tmp_path / f"{n}.json"), "--pcap-dir", str(tmp_path)],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True) for n in (1, 2)]
        outputs = [proc.communicate(timeout=TIMEOUT_S)[0] for proc in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    docs = [json.loads((tmp_path / f"{n}.json").read_text()) for n in (1, 2)]
    runs = each_run(docs[0]) + each_run(docs[1])
    assert len(runs) == 2 * 10  # each gate ran all ten cells
    assert_own_lab(runs)
    assert_no_leftovers()


@needs_root
@pytest.mark.slow
def test_a_gate_beside_a_pytest_run_of_scenarios_both_pass(tmp_path, assert_no_leftovers):
    with one_whole_gate_at_a_time():  # the gate and that run together, without a README command beside them
        suite = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "ipv4",
                                  "--netkit-pcap-dir", str(tmp_path), "tests/test_keepalive_death.py"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        gate = subprocess.Popen([*GATE, "--json", str(tmp_path / "gate.json"), "--pcap-dir", str(tmp_path)],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        gate_output = gate.communicate(timeout=TIMEOUT_S)[0]
        suite_output = suite.communicate(timeout=TIMEOUT_S)[0]
    assert gate.returncode == 0, gate_output[-3000:]
    assert suite.returncode == 0 and " passed" in suite_output, suite_output[-3000:]
    assert_own_lab(each_run(json.loads((tmp_path / "gate.json").read_text())))
    assert_no_leftovers()
