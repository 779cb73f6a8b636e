"""Every command the README and the docs show works verbatim, and every code block is real.

`scripts/readme-commands` lists the commands (```sh blocks) and the files the
reader is asked to save (```python and ```toml blocks starting ``# NAME.ext``)
of README.md and then of the docs pages, in the order of mkdocs.yml's nav (the
reading order: a file one page saves is there for the commands of later
pages). Here, as root, each host command runs exactly as written, from the
repository root, with those files saved there, in that order, and must exit 0
with the output its page promises. The one
command that cannot run inside the suite is the suite itself (`scripts/test`):
scripts/check-lab runs every command of the README and the docs on a fresh
Debian 12 as root without sudo and on a fresh Debian 13 as a user with sudo
(scripts/check-fresh-debian; the suite in that pass), the two releases the
README's platform line names (asserted below). The Vagrant
block's commands are checked against the Vagrantfile (a VM cannot boot here).
The other fences are output samples: ```text, the ```json samples read below,
and the ```yaml block (the GitLab job), which tests/test_ci_recipes.py
validates against GitLab's schema and checks what it runs.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
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
README_MAX_LINES = 200  # issue 25: a first screen, and where to go next; the rest is in docs/
COMMAND_TIMEOUT_S = 240
# A test waits for its command in turn: the suite's whole-gate lock (another test's gate, a few minutes
# under xdist), then the command itself -- Run.wait's bound, which the suite's 120 s default would cut
# short (CI, stop 31: the redis and psql lines failed at 120 s while a whole gate held the lock).
WAITS_ITS_TURN = pytest.mark.timeout(COMMAND_TIMEOUT_S * 2 + 60)

# Commands that cannot run inside the suite, and where they are proven instead.
PROVEN_ELSEWHERE = {
    "scripts/test": "it is this suite; scripts/check-lab runs it verbatim as a user with sudo on a fresh Debian 13"
                    " (.ci/run's first step runs it as root on a fresh clone, on Debian 12)",
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
    "scripts/python scripts/bench-plugin-startup": r"target: <= 50 ms \(difference of the wall-time medians\): (met|MISSED)",
    "netkit gate --json": r"totals: pass \d+, fail 0, xfail 0, xpass 0, skip \d+, error 0",
    "netkit gate diff": r"no changes",
    "netkit gate --tap": r"(?m)^# Totals: pass:\d+ fail:0 ",
    "netkit gate --matrix fleet.toml": r"totals: pass 10, fail 0",
    "scripts/render-html-report": r"/netkit-report\.png \(\d+ bytes, 390 px wide\)",  # in $HOME: root and a user both run it
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
    "scripts/python -m mkdocs build --strict": r"Documentation built in [\d.]+ seconds",
    "scripts/python validate.py": r"(?m)^/tmp/netkit-gate\.json: valid netkit\.gate/3\n/tmp/netkit-merged\.json: valid "
                                  r"netkit\.gate/3$",
    "netkit demo --idle 1 --intvl 1 --cnt 1 --json | scripts/python validate.py -":
        r"(?m)^-: valid netkit\.scenario-result/3$",
}


def readme_entries(*args: str) -> list[dict]:
    """The entries of README.md and the docs pages, in reading order (scripts/readme-commands' default)."""
    done = subprocess.run([str(LISTER), *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def at(entry: dict) -> str:
    """Where an entry is shown: FILE:LINE."""
    return f"{entry['file']}:{entry['line']}"


def bare(command: str) -> str:
    """The command's words without its trailing comment, to key the tables above (never run: quoting is lost)."""
    return " ".join(shlex.split(command, comments=True))


def promise_for(command: str) -> str | None:
    matches = [key for key in PROMISED if bare(command).startswith(key)]
    return PROMISED[max(matches, key=len)] if matches else None


def load_lister():
    """scripts/readme-commands as a module (a script without .py), for its fence reader and its reading order."""
    loader = importlib.machinery.SourceFileLoader("readme_commands", str(LISTER))
    spec = importlib.util.spec_from_loader("readme_commands", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


LISTED = load_lister()
PAGES = [str(path.relative_to(ROOT)) for path in LISTED.default_files()]  # README.md, then mkdocs.yml's nav
HOST = [e for e in readme_entries("--where", "host") if e["kind"] == "command"]
VAGRANT = [e for e in readme_entries("--where", "vagrant") if e["kind"] == "command"]
RUNNABLE = [e for e in HOST if bare(e["command"]) not in PROVEN_ELSEWHERE]


def label(entry: dict) -> str:
    return f"{at(entry)}:{bare(entry['command'])[:60]}"


def test_the_readme_has_the_commands_a_newcomer_needs():
    commands = [bare(e["command"]) for e in HOST]
    assert commands[:2] == ["scripts/demo", "scripts/test"], "the first screen must show the two set-up commands"
    assert {e["file"] for e in HOST[:2]} == {"README.md"}, "the README's first screen, not a docs page"
    for needed in ("netkit doctor", "scripts/python example.py", "scripts/python -m pytest test_my_keepalive.py"):
        assert needed in commands
    files = {e["name"] for e in readme_entries() if e["kind"] == "file"}
    assert files == {"example.py", "test_my_keepalive.py", "fleet.toml", "known.toml", "validate.py"}


def test_the_readme_is_a_first_screen_and_where_to_go_next():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md: {len(lines)} lines (at most {README_MAX_LINES}); move a section to docs/"
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", README.read_text()))
    missing = sorted({page.removeprefix("docs/") for page in PAGES[1:]} - linked - {"index.md"})
    assert not missing, f"the README's 'Where to go next' links no {missing}"


# Debian's release names, as debootstrap takes them, and their numbers.
DEBIAN_RELEASES = {"bookworm": "12", "trixie": "13"}


def proven_releases() -> set[str]:
    """The Debian releases scripts/check-lab runs the fresh-machine proof on (``check_fresh SUITE``), by number."""
    suites = re.findall(r"\bcheck_fresh ([a-z]+)\b", (ROOT / "scripts" / "check-lab").read_text())
    assert suites, "scripts/check-lab runs no check_fresh SUITE"
    return {DEBIAN_RELEASES[suite] for suite in suites}


def test_the_readme_names_exactly_the_releases_the_fresh_machine_proof_runs_on():
    line = next(line for line in README.read_text().splitlines() if line.startswith("On a fresh "))
    claimed = re.fullmatch(r"On a fresh Debian (\d+)(?: or (\d+))? machine with .*", line)
    assert claimed, f"README.md's platform line names something other than Debian releases: {line!r}"
    assert {n for n in claimed.groups() if n} == proven_releases() == {"12", "13"}
    for path in (README, ROOT / "docs" / "index.md", ROOT / "scripts" / "provision.sh"):
        assert "Ubuntu" not in path.read_text(), f"{path.name} names Ubuntu, which nothing here proves"


# Fences that are no command, and the test that holds each kind to the truth.
SAMPLES = {
    "text": "an output sample or a usage synopsis, shown as printed",
    "json": "read by test_the_json_sample_has_the_real_keys and the kernel-CI sample tests below",
    "yaml": "the GitLab job, validated and checked by tests/test_ci_recipes.py",
}


def test_every_code_block_runs_or_is_a_sample_a_test_reads():
    """A block is a command (sh), a file to save (python, toml: `# NAME.ext`) or a sample of SAMPLES' kinds."""
    found: dict[str, list[str]] = {}
    for name in PAGES:
        for language, line, body, _ in LISTED.blocks((ROOT / name).read_text().splitlines()):
            where = f"{name}:{line}"
            found.setdefault(language, []).append(where)
            if language in LISTED.FILE_EXTENSIONS:
                assert body and LISTED.FILE_NAME.match(body[0][1]), f"{where}: a {language} block names no file to save"
            else:
                assert language in LISTED.SHELL_LANGUAGES or language in SAMPLES, \
                    f"{where}: a ```{language} block nothing runs or reads"
    assert len(found.get("json", [])) == 3, found.get("json")  # the demo's, KCIDB's and NIPA's samples
    assert len(found.get("yaml", [])) == 1, found.get("yaml")  # the GitLab job
    demo_json_sample()
    kernel_ci_samples()


def lister_json(tmp_path: pathlib.Path, *args: str) -> list[dict]:
    done = subprocess.run([str(LISTER), *args], capture_output=True, text=True, check=True, cwd=tmp_path)
    return json.loads(done.stdout) if done.stdout.strip() else []


def test_the_lister_reads_several_files_in_order(tmp_path):
    (tmp_path / "a.md").write_text("```sh\necho a   # one\n```\n\n```python\n# one.py\nprint(1)\n```\n")
    (tmp_path / "b.md").write_text("text\n\n```sh\ncat one.py\n```\n\n```toml\n# two.toml\nx = 1\n```\n\n```sh\necho b\n```\n")
    entries = lister_json(tmp_path, "a.md", "b.md")
    assert [(e["kind"], e["file"], e["line"]) for e in entries] == [
        ("command", "a.md", 2), ("file", "a.md", 5), ("command", "b.md", 4), ("file", "b.md", 7), ("command", "b.md", 13)]
    assert [e.get("name") for e in lister_json(tmp_path, "--before", "b.md:7", "a.md", "b.md")] == [None, "one.py", None]
    assert [e.get("name") for e in lister_json(tmp_path, "--before", "2", "a.md", "b.md")] == []
    shell = subprocess.run([str(LISTER), "--shell", "-n", "a.md", "b.md"], capture_output=True, text=True, check=True,
                           cwd=tmp_path).stdout
    assert shell.splitlines() == ["a.md:2\techo a   # one", "b.md:4\tcat one.py", "b.md:13\techo b"]
    (tmp_path / "out").mkdir()
    subprocess.run([str(LISTER), "--before", "b.md:12", "--write-files", "out", "a.md", "b.md"], check=True, cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.py", "two.toml"]


def test_the_lister_refuses_a_file_saved_twice_across_pages(tmp_path):
    for name in ("a.md", "b.md"):
        (tmp_path / name).write_text("```python\n# same.py\n```\n")
    done = subprocess.run([str(LISTER), "a.md", "b.md"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "b.md: line 1: a second file same.py (the first is at a.md line 1)" in done.stderr
    done = subprocess.run([str(LISTER), "--before", "c.md:3", "a.md"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "c.md is not one of the files read" in done.stderr


def test_the_default_reading_order_is_the_readme_then_the_nav():
    assert PAGES[0] == "README.md" and len(PAGES) > 5 and all(p.startswith("docs/") for p in PAGES[1:])
    assert {e["file"] for e in readme_entries()} <= set(PAGES)


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
    """`vagrant up/ssh NAME` names a machine of the Vagrantfile; what runs in the VM is a command run here too.

    In the VM are the commands typed after a bare `vagrant ssh` (up to `exit`) and those given to `vagrant ssh -c`;
    the others run on the host: vagrant itself, or one of this repository's scripts.
    """
    vagrantfile = (ROOT / "Vagrantfile").read_text()
    machines = set(re.findall(r'^\s*"([\w.-]+)" => \{ kernel:', vagrantfile, re.M))
    guest_dir = re.search(r'^GUEST_DIR = "([^"]+)"', vagrantfile, re.M).group(1)
    assert machines and VAGRANT
    in_vm, inside = [], False
    for entry in VAGRANT:
        words = shlex.split(entry["command"], comments=True)
        if inside:
            inside = words != ["exit"]
            if inside:
                in_vm.append(bare(entry["command"]))
            continue
        if words == ["vagrant", "ssh"]:
            inside = True
            continue
        if words[0] != "vagrant":
            assert words[0].startswith("scripts/") and (ROOT / words[0]).is_file(), f"{at(entry)}: {words[0]}"
            continue
        if words[1] in ("up", "ssh") and len(words) > 2 and not words[2].startswith("-"):
            assert words[2] in machines, f"{at(entry)}: no machine {words[2]!r} in the Vagrantfile"
        if "-c" in words:
            in_vm.append(words[words.index("-c") + 1])
    assert in_vm
    for command in in_vm:
        if command.startswith("cd "):
            assert command.startswith(f"cd {guest_dir} && "), f"the repository is at {guest_dir} in the VM: {command}"
            command = command[len(f"cd {guest_dir} && "):]
        assert command in {bare(e["command"]) for e in HOST} | GUEST_ONLY_CHECKED, command
    proof = (ROOT / "scripts" / "check-vagrant-up").read_text()
    assert "readme-commands\" --where vagrant" in proof, "check-vagrant-up must run docs/lab.md's Vagrant commands"


# Commands the README runs only inside the VM; the suite runs them here as well.
GUEST_ONLY_CHECKED = {"netkit demo --idle 1 --intvl 1 --cnt 3"}


def block_of(entry: dict) -> tuple[str, int]:
    """The file and line of the fence that opens the block holding an entry: a block is one script, run in order."""
    lines = (ROOT / entry["file"]).read_text().splitlines()
    return entry["file"], max(i + 1 for i in range(entry["line"] - 1) if lines[i].lstrip().startswith("```"))


class ReadmeRunner:
    """Every runnable command of the README and the docs, run from the repository root with their files saved there.

    One after the other, in reading order, in a background thread: a later line may use what an earlier
    one wrote, and the gates and benchmarks measure timing, which commands competing with each other
    for the two CPUs would disturb.  Each command holds the suite's whole-gate lock, so no whole gate of
    another test runs beside it either.

    It starts with this module's first test, and the tests wait for their commands: about five
    minutes.  (Started when collection ends, beside the rest of the suite, the suite took 8 minutes
    instead of 11, but the README's commands then ran beside the session pool's burst of ~150
    scenarios, and two checks failed for the machine's load, not the kernel's -- a SYN-RECV cell's
    0.5 s wait for the listener's request, a retracted window's Tcp.RetransSegs read after the first
    retransmission: CI dry run, stop 38.  They are to be made to say "machine late" first.)
    ``close()`` stops what still runs and removes the saved files, whatever happened.
    """

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self._files: list[pathlib.Path] = []
        self._worker: threading.Thread | None = None
        self._closing = threading.Event()  # set by close(): the thread starts no further command

    def start(self) -> None:
        """Start the commands in their thread; skip (no privileges) or fail (not this checkout's netkit) instead."""
        reason = missing_privileges()
        if reason:
            pytest.skip(reason)
        wrapper = shutil.which("netkit")
        expected = f"{ROOT}/.venv/bin/netkit"
        if wrapper is None or expected not in pathlib.Path(wrapper).read_text(errors="replace"):
            pytest.fail(f"`netkit` on PATH ({wrapper}) is not this checkout's: run {ROOT}/scripts/provision.sh",
                        pytrace=False)
        files = [ROOT / e["name"] for e in readme_entries() if e["kind"] == "file"]
        existing = [str(path) for path in files if path.exists()]
        if existing:
            pytest.fail(f"{', '.join(existing)} exist(s) already: the docs' files would overwrite them", pytrace=False)
        subprocess.run([str(LISTER), "--write-files", str(ROOT)], check=True)
        self._files = files
        blocks: dict[tuple[str, int], list[tuple[str, str]]] = {}
        for entry in RUNNABLE:
            blocks.setdefault(block_of(entry), []).append((bare(entry["command"]), entry["command"]))
        for command in sorted(GUEST_ONLY_CHECKED):
            blocks[("", -len(blocks) - 1)] = [(command, command)]
        self.runs = {key: Run(command) for block in blocks.values() for key, command in block}
        self._worker = threading.Thread(target=self._run_all, daemon=True)
        self._worker.start()

    def _run_all(self) -> None:
        for run in self.runs.values():
            if self._closing.is_set():
                run.skip("the session ended before this command's turn")
                continue
            run.run()

    def close(self) -> None:
        """Stop every command still running, wait for the thread, remove the saved files (idempotent)."""
        self._closing.set()
        for run in self.runs.values():
            run.stop()
        if self._worker is not None:
            self._worker.join(timeout=COMMAND_TIMEOUT_S)
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files = []
        shutil.rmtree(ROOT / "__pycache__", ignore_errors=True)


@pytest.fixture(scope="module")
def readme_runs():
    """The commands' runs, started now, each awaited by its test; stopped and cleaned up at the module's end."""
    runner = ReadmeRunner()
    try:
        runner.start()
        yield runner.runs
    finally:
        runner.close()


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

    def skip(self, why: str) -> None:
        """Not run at all: ``wait()`` gives -1 and why."""
        self.output = why
        self.done.set()

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
        pytest.skip(f"{at(entry)}: `{command}` was inconclusive (exit 3: a scenario was machine late "
                    f"twice, measured by the timer ledger):\n{output[-1500:]}")
    assert status == 0, f"{at(entry)}: `{command}` exited {status}:\n{output[-3000:]}"
    promise = promise_for(command)
    if promise:
        assert re.search(promise, output), f"{at(entry)}: `{command}` did not show {promise!r}:\n{output[-3000:]}"


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
    sample = demo_json_sample()
    assert list(sample) == list(real), "the docs' JSON sample must show the real keys, in order"
    for key, value in sample.items():
        if isinstance(value, dict):
            assert list(value) == list(real[key]), key
        elif value != "elided" and key not in ("kernel", "rule") and not key.endswith("_s"):
            assert value == real[key], f"{key}: the docs show {value!r}, the command printed {real[key]!r}"


def json_blocks_after(needle: str) -> tuple[str, list[str]]:
    """The page that shows ``needle`` (a command's text) and the ```json blocks that follow it there."""
    for name in PAGES:
        text = (ROOT / name).read_text()
        if needle in text:
            return name, re.findall(r"```json\n(.*?)```", text[text.index(needle):], re.S)
    raise AssertionError(f"no page of the README or the docs shows {needle!r}")


def elided(block: str) -> dict:
    return json.loads(block.replace("[...]", '"elided"').replace("{...}", '"elided"'))


def demo_json_sample() -> dict:
    """The docs' sample of `netkit demo --json` (the ```json block after the command), elisions marked."""
    return elided(json_blocks_after("netkit demo --idle 1 --intvl 1 --cnt 3 --json")[1][0])


def kernel_ci_samples() -> tuple[dict, dict]:
    """The docs' KCIDB and NIPA samples (the two JSON blocks after the command that writes them), elisions marked."""
    kcidb, nipa = (elided(block) for block in json_blocks_after("--kcidb-origin my_ci")[1][:2])
    return kcidb, nipa


def kcidb_latest():
    """kcidb-io's latest schema (a test dependency)."""
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
def test_the_kernel_ci_files_the_docs_write_are_valid_and_shown_as_written(readme_runs):
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

