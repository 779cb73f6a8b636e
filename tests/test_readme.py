"""Every command the README shows works verbatim, and every code block is real.

`scripts/readme-commands` lists the README's commands (```sh blocks) and the
files it asks the reader to save (```python and ```toml blocks starting
``# NAME.ext``). Here, as root, each host command runs exactly as written, from
the repository root, with those files saved there, in README order, and must
exit 0 with the output the README promises. The one
command that cannot run inside the suite is the suite itself (`scripts/test`):
scripts/check-fresh-debian runs every README command, that one included, on a
fresh Debian 12 as root without sudo and as a user with sudo. The Vagrant
block's commands are checked against the Vagrantfile (a VM cannot boot here).
The ```yaml block (the GitLab job) is no command: tests/test_ci_recipes.py
validates it against GitLab's schema and checks what it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import IO

import pytest
from conftest import one_whole_gate_at_a_time, process_group

from netkit.exitcodes import EXIT_INCONCLUSIVE
from netkit.privileges import missing_privileges

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LISTER = ROOT / "scripts" / "readme-commands"
COMMAND_TIMEOUT_S = 240
# A test waits for its command in turn: the suite's whole-gate lock (another test's gate, a few minutes
# under xdist), then the command itself -- Run.wait's bound, which the suite's 120 s default would cut
# short (CI, stop 31: the redis and psql lines failed at 120 s while a whole gate held the lock).
WAITS_ITS_TURN = pytest.mark.timeout(COMMAND_TIMEOUT_S * 2 + 60)

# Commands that cannot run inside the suite, and where they are proven instead.
PROVEN_ELSEWHERE = {
    "scripts/test": "it is this suite; scripts/check-fresh-debian runs it verbatim as root and as a user with sudo",
}
# What a command's output must show, beyond exit status 0 (regex, searched in stdout + stderr).
PROMISED = {
    "scripts/demo": r"verdict: PASS - died 11\.\d{3} s after the last segment received",
    "netkit check-server": r"verdict: MATCH - died 6\.\d{3} s",
    "netkit check-client": r"(?m)^verdict: MATCH - the client noticed the dead server 4\.\d{3} s after the last segment "
                           r"it received, by the kernel's keepalive: 3 unanswered probes",
    "scripts/python -m pytest test_my_keepalive.py": r"\b6 passed\b",
    "scripts/python example.py": r"(?s)ipv6-idle-blackhole-1/1/3-ut2500 pass .*ETIMEDOUT\n"
                                 r"ipv4-idle-link-down-1/1/1 pass .*\nipv4-idle-link-down-1/1/2 pass .*\n"
                                 r"ipv4-idle-link-down-1/1/3 pass ",
    "scripts/python scripts/bench-precision": r"target: \|median\| <= 2 ms: met",
    "scripts/python scripts/bench-lab": r"ip/netkit +[\d.]+x",
    "scripts/python scripts/bench-gate": r"target: wall <= 1.25 x the longest scenario: (met|MISSED)",
    "scripts/python scripts/bench-resources": r"peak memory +\d+ MiB PSS .*; bound 2048 MiB",
    "netkit gate --json": r"totals: pass \d+, fail 0, xfail 0, xpass 0, skip \d+, error 0",
    "netkit gate diff": r"no changes",
    "netkit gate --tap": r"(?m)^# Totals: pass:\d+ fail:0 ",
    "netkit gate --matrix fleet.toml": r"totals: pass 9, fail 0",
    "netkit gate --only ipv4-idle-*-1/1/3 --kcidb": r"totals: pass \d+, fail 0, xfail 0, xpass 0, skip \d+, error 0",
    "netkit gate --list --shard 2/3": r"(?m)^ipv4-idle-",
    "netkit gate --shard": r"totals: pass \d+, fail 0, xfail 0, xpass 0, skip \d+, error 0",
    "netkit gate merge": r"netkit gate merge: 3 document\(s\), \d+ scenarios; the wall is the longest part's(?s:.*)"
                         r"totals: pass \d+, fail 0",
    "netkit doctor": r"netkit can run here\.",
    "netkit demo --idle 1 --intvl 1 --cnt 3 --fault blackhole": r"wire: 3 keepalive probes \(3 unanswered\)",
    "netkit demo --idle 1 --intvl 1 --cnt 3 --json": r'"verdict": "pass"',
    "netkit demo --idle 2 --intvl 1 --cnt 2 --ipv6": r"verdict: PASS",
    "netkit demo --state unacked --fault blackhole --retries2 6 --rto-max-ms 1000":  # 7 retransmissions, or 6 early
        r"backoff capped at the socket's maximum RTO 1 s(?s:.*)verdict: PASS - died [56]\.\d{3} s after the send",
    "netkit demo --state syn-sent --fault blackhole --syn-retries 1 --user-timeout 10000":
        r"wire: 5 SYN retransmissions; no RST .*\n(?:.*\n)*?verdict: PASS - died 7\.\d{3} s after the first SYN",
    "netkit demo --topology routed --middlebox-timeout 2 --idle 3 --intvl 1 --cnt 2":
        r"verdict: PASS - died 5\.\d{3} s after the last segment received",
    "netkit cleanup --dry-run": r"nothing to clean up|would remove|left namespace|left tracefs instance",
}


def readme_entries(*args: str) -> list[dict]:
    done = subprocess.run([str(LISTER), *args, str(README)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def bare(command: str) -> str:
    """The command's words without its trailing comment, to key the tables above (never run: quoting is lost)."""
    return " ".join(shlex.split(command, comments=True))


def promise_for(command: str) -> str | None:
    matches = [key for key in PROMISED if bare(command).startswith(key)]
    return PROMISED[max(matches, key=len)] if matches else None


HOST = [e for e in readme_entries("--where", "host") if e["kind"] == "command"]
VAGRANT = [e for e in readme_entries("--where", "vagrant") if e["kind"] == "command"]
RUNNABLE = [e for e in HOST if bare(e["command"]) not in PROVEN_ELSEWHERE]


def label(entry: dict) -> str:
    return f"line{entry['line']}:{bare(entry['command'])[:60]}"


def test_the_readme_has_the_commands_a_newcomer_needs():
    commands = [bare(e["command"]) for e in HOST]
    assert commands[:2] == ["scripts/demo", "scripts/test"], "the first screen must show the two set-up commands"
    for needed in ("netkit doctor", "scripts/python example.py", "scripts/python -m pytest test_my_keepalive.py"):
        assert needed in commands
    files = {e["name"] for e in readme_entries() if e["kind"] == "file"}
    assert files == {"example.py", "test_my_keepalive.py", "fleet.toml", "known.toml"}


def test_every_host_command_is_run_here_or_proven_elsewhere():
    for entry in HOST:
        command = bare(entry["command"])
        assert command in PROVEN_ELSEWHERE or entry in RUNNABLE, command
    fresh = (ROOT / "scripts" / "check-fresh-debian").read_text()
    assert "readme-commands" in fresh, "check-fresh-debian must run the README's commands (it proves scripts/test)"


def test_no_readme_command_needs_sudo_typed_by_hand():
    """Root on a minimal machine has no sudo: the commands elevate themselves instead."""
    for entry in HOST + VAGRANT:
        assert "sudo" not in shlex.split(bare(entry["command"])), entry


def test_the_vagrant_commands_name_machines_and_paths_the_vagrantfile_defines():
    """`vagrant up/ssh NAME` names a machine of the Vagrantfile; what runs in the VM is a command run here too."""
    vagrantfile = (ROOT / "Vagrantfile").read_text()
    machines = set(re.findall(r'^\s*"([\w.-]+)" => \{ kernel:', vagrantfile, re.M))
    guest_dir = re.search(r'^GUEST_DIR = "([^"]+)"', vagrantfile, re.M).group(1)
    assert machines and VAGRANT
    in_vm = []
    for entry in VAGRANT:
        words = shlex.split(entry["command"], comments=True)
        if words[0] != "vagrant":
            in_vm.append(bare(entry["command"]))
            continue
        if words[1] in ("up", "ssh") and len(words) > 2 and not words[2].startswith("-"):
            assert words[2] in machines, f"README line {entry['line']}: no machine {words[2]!r} in the Vagrantfile"
        if "-c" in words:
            in_vm.append(words[words.index("-c") + 1])
    for command in in_vm:
        if command == "exit":
            continue
        if command.startswith("cd "):
            assert command.startswith(f"cd {guest_dir} && "), f"the repository is at {guest_dir} in the VM: {command}"
            command = command[len(f"cd {guest_dir} && "):]
        assert command in {bare(e["command"]) for e in HOST} | GUEST_ONLY_CHECKED, command


# Commands the README runs only inside the VM; the suite runs them here as well.
GUEST_ONLY_CHECKED = {"netkit demo --idle 1 --intvl 1 --cnt 3"}


def block_of(line: int) -> int:
    """The README line of the fence that opens the block holding ``line``: a block is one script, run in order."""
    lines = README.read_text().splitlines()
    return max(i + 1 for i in range(line - 1) if lines[i].lstrip().startswith("```"))


@pytest.fixture(scope="module")
def readme_runs():
    """Run every runnable README command from the repository root, with the README's files saved there.

    One after the other, in README order, in a background thread while the tests wait for theirs: a
    later line may use what an earlier one wrote, and the gates and benchmarks measure timing, which
    commands competing for the two CPUs would disturb.
    """
    reason = missing_privileges()
    if reason:
        pytest.skip(reason)
    wrapper = shutil.which("netkit")
    expected = f"{ROOT}/.venv/bin/netkit"
    if wrapper is None or expected not in pathlib.Path(wrapper).read_text(errors="replace"):
        pytest.fail(f"`netkit` on PATH ({wrapper}) is not this checkout's: run {ROOT}/scripts/provision.sh", pytrace=False)
    files = [ROOT / e["name"] for e in readme_entries() if e["kind"] == "file"]
    for path in files:
        assert not path.exists(), f"{path} exists already: it would be overwritten"
    subprocess.run([str(LISTER), "--write-files", str(ROOT), str(README)], check=True)
    blocks: dict[int, list[tuple[str, str]]] = {}
    for entry in RUNNABLE:
        blocks.setdefault(block_of(entry["line"]), []).append((bare(entry["command"]), entry["command"]))
    for command in sorted(GUEST_ONLY_CHECKED):
        blocks[-len(blocks) - 1] = [(command, command)]
    runs = {key: Run(command) for block in blocks.values() for key, command in block}
    worker = threading.Thread(target=lambda: [run.run() for run in runs.values()], daemon=True)
    try:
        worker.start()
        yield runs
    finally:
        for run in runs.values():
            run.stop()
        worker.join(timeout=COMMAND_TIMEOUT_S)
        for path in files:
            path.unlink(missing_ok=True)
        shutil.rmtree(ROOT / "__pycache__", ignore_errors=True)


class Run:
    """One README command, run verbatim by bash in its own process group; ``wait()`` gives its exit status and output.

    Past COMMAND_TIMEOUT_S the command is stuck, not slow (every README command takes a minute or
    less), and its output must say where: each netkit process in the group prints its threads'
    stacks (SIGUSR1, ``faulthandler``), then gets SIGINT to tear its lab down, and the group is
    killed only if that did not end it.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self.done = threading.Event()
        self.status, self.output = -1, ""
        self.proc: subprocess.Popen[str] | None = None

    def run(self) -> None:
        with tempfile.TemporaryFile("w+") as log, one_whole_gate_at_a_time():  # no whole gate of another test beside it
            self.proc = subprocess.Popen(["bash", "-eo", "pipefail", "-c", self.command], cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                         start_new_session=True)
            try:
                self.status = self.proc.wait(timeout=COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.status = self._end_stuck(log)
            log.seek(0)
            self.output = log.read()
        self.done.set()

    def _end_stuck(self, log: IO[str]) -> int:
        assert self.proc is not None
        netkits = [pid for pid in process_group(self.proc.pid) if _is_netkit(pid)]
        log.write(f"\n[test_readme] still running after {COMMAND_TIMEOUT_S} s: stacks of netkit pids {netkits}, "
                  "then SIGINT\n")
        log.flush()
        for signum, pause in ((signal.SIGUSR1, 2.0), (signal.SIGINT, 20.0)):
            for pid in netkits:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
            try:
                return self.proc.wait(timeout=pause)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        return self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self) -> tuple[int, str]:
        assert self.done.wait(COMMAND_TIMEOUT_S * 2), f"`{self.command}` did not finish"
        return self.status, self.output


def _is_netkit(pid: int) -> bool:
    """A netkit process (its command line runs netkit), not the shell, sudo or the program under test."""
    try:
        argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"python" in os.path.basename(argv[0]) and any(b"netkit" in arg for arg in argv[1:3])


@pytest.mark.slow
@pytest.mark.parametrize("entry", RUNNABLE, ids=label)
@WAITS_ITS_TURN
def test_readme_command_works_verbatim(readme_runs, entry):
    command = bare(entry["command"])
    status, output = readme_runs[command].wait()
    if status == EXIT_INCONCLUSIVE and " gate" in f" {command}":  # the gate's documented outcome for a busy machine
        pytest.skip(f"README line {entry['line']}: `{command}` was inconclusive (exit 3: a scenario was machine late "
                    f"twice, measured by the timer ledger):\n{output[-1500:]}")
    assert status == 0, f"README line {entry['line']}: `{command}` exited {status}:\n{output[-3000:]}"
    promise = promise_for(command)
    if promise:
        assert re.search(promise, output), f"README line {entry['line']}: `{command}` did not show {promise!r}:\n{output[-3000:]}"


@pytest.mark.slow
@WAITS_ITS_TURN
def test_the_guest_commands_work_here_too(readme_runs):
    for command in sorted(GUEST_ONLY_CHECKED):
        status, output = readme_runs[command].wait()
        assert status == 0 and "verdict: PASS" in output, output[-2000:]


@pytest.mark.slow
@WAITS_ITS_TURN
def test_the_json_sample_has_the_real_keys(readme_runs):
    command = "netkit demo --idle 1 --intvl 1 --cnt 3 --json"
    status, output = readme_runs[command].wait()
    assert status == 0, output
    real = json.loads(output.strip().splitlines()[-1])
    text = re.search(r"```json\n(.*?)```", README.read_text(), re.S).group(1)
    sample = json.loads(text.replace("[...]", '"elided"').replace("{...}", '"elided"'))
    assert list(sample) == list(real), "the README's JSON sample must show the real keys, in order"
    for key, value in sample.items():
        if isinstance(value, dict):
            assert list(value) == list(real[key]), key
        elif value != "elided" and key not in ("kernel", "rule") and not key.endswith("_s"):
            assert value == real[key], f"{key}: README shows {value!r}, the command printed {real[key]!r}"


def kernel_ci_samples() -> tuple[dict, dict]:
    """The README's KCIDB and NIPA samples (the two JSON blocks after the command that writes them), elisions marked."""
    text = README.read_text()
    after = text[text.index("--kcidb-origin my_ci"):]
    blocks = re.findall(r"```json\n(.*?)```", after, re.S)[:2]
    kcidb, nipa = (json.loads(b.replace("[...]", '"elided"').replace("{...}", '"elided"')) for b in blocks)
    return kcidb, nipa


def kcidb_latest():
    """kcidb-io's latest schema (a test dependency; its releases with v5.3 need Python 3.10)."""
    if sys.version_info < (3, 10):
        pytest.skip("kcidb-io needs Python 3.10")
    from kcidb_io.schema import LATEST

    return LATEST


def test_the_kernel_ci_samples_are_what_the_formats_hold():
    LATEST = kcidb_latest()
    kcidb, nipa = kernel_ci_samples()
    assert kcidb["version"] == {"major": LATEST.major, "minor": LATEST.minor}
    LATEST.validate_exactly({**kcidb, "checkouts": [], "builds": [], "tests": [kcidb["tests"][0]]})
    assert list(nipa) == ["executor", "branch", "start", "end", "results"]


@pytest.mark.slow
@WAITS_ITS_TURN
def test_the_kernel_ci_files_the_readme_writes_are_valid_and_shown_as_written(readme_runs):
    LATEST = kcidb_latest()
    status, output = readme_runs[next(key for key in readme_runs if "--kcidb" in key)].wait()
    assert status == 0, output[-3000:]
    kcidb = json.loads(pathlib.Path("/tmp/netkit-kcidb.json").read_text())
    LATEST.validate_exactly(kcidb)
    nipa = json.loads(pathlib.Path("/tmp/netkit-nipa.json").read_text())
    kcidb_sample, nipa_sample = kernel_ci_samples()
    assert list(kcidb_sample) == list(kcidb)
    assert list(kcidb_sample["tests"][0]) == list(kcidb["tests"][0])
    for shown in (kcidb_sample, kcidb):  # the rest of the environment depends on the machine (virtualization...)
        assert {"hz", "cpus", "emulated"} <= set(shown["tests"][0]["environment"]["misc"])
    assert list(nipa_sample) == list(nipa) and nipa_sample["results"][0].keys() == nipa["results"][0].keys()
    assert [r["test"] for r in nipa["results"]] == [t["path"].removeprefix("netkit.").replace("_", "-")
                                                    for t in kcidb["tests"]]

