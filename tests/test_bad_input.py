"""Every user-facing entry point fed bad input ("Trusted blindly"): one table per entry point.

Each row is the input and what must happen:

* ONE clear message that names the input (the row's fragments), and no traceback of netkit's;
* the documented status (docs/cli.md's exit table): 2 for bad usage or a file netkit cannot read,
  4 for "cannot run here" and for pytest's usage error; the library raises;
* nothing left behind: no new ``nk`` namespace under /run/netns, no ``nk`` interface in the host, no
  file in the TMPDIR the run was given, no process carrying the row's marker in its environment, no
  child of the test process in its session.

Rows that must build a lab before they can refuse (check-server starting a program) skip without
privileges; every other row runs anywhere, in well under a second.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import Unprivileged

from netkit import EnvironmentUnusable, KeepaliveSettings, Scenario, ScenarioPool, SettingError, run_many, run_scenario
from netkit.errors import InputError, UnknownChoice
from netkit.lab.namespaces import NETNS_RUN_DIR, PREFIX, owner_pid
from netkit.lab.proc import descendants, pids, process_alive
from netkit.privileges import missing_privileges

ROOT_MISSING = missing_privileges()
ONLY = ("--only", "ipv4-idle-peer-reboot-1/1/3")  # if a gate row slipped through, one 1 s scenario would run
MARKER_ENV = "NETKIT_BAD_INPUT_ROW"
# The message: netkit's own ("netkit gate: ..."), argparse's ("netkit demo: error: ..."), pytest's ("ERROR: ...").
MESSAGE_LINE = re.compile(r"^(netkit[\w -]*: |ERROR: (?!usage:)|[\w. -]+: error: )")
SERVER = sys.executable  # a program the lab can run: this interpreter, by absolute path
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------------------------
# The bad files, written into each row's directory ({in} in a row's arguments)

GOOD_DOC = {**json.loads((Path(__file__).parent / "data" / "gate-document.json").read_text()), "diff": None}


def _doc(**changes: object) -> str:
    return json.dumps({**GOOD_DOC, **changes})


FILES: dict[str, str | bytes] = {
    "afile": "not a directory\n",
    "binary": b"\xff\xfe\x00\x80 not text",
    "good.json": json.dumps(GOOD_DOC),
    "truncated.json": json.dumps(GOOD_DOC)[:300],
    "eslint.json": '{"name": "eslint-report", "results": []}\n',
    "result.json": '{"schema": "netkit.scenario-result/1", "verdict": "pass"}\n',
    "kernel-string.json": _doc(kernel="6.1"),
    "no-outcome.json": _doc(scenarios=[{"id": "ipv4-idle-link-down-1/1/3"}]),
    "runs-string.json": _doc(scenarios=[{**GOOD_DOC["scenarios"][0], "runs": "3 runs"}]),
    "scenarios-null.json": _doc(scenarios=None),
    "part1of2.json": _doc(options={**GOOD_DOC["options"], "shard": {"index": 1, "count": 2}}),
    "other-kernel.json": _doc(kernel={**GOOD_DOC["kernel"], "release": "6.1.0-37-amd64"}, scenarios=[]),
    "fault-typo.toml": '[[scenario]]\nkeepalive = [1, 1, 3]\nfault = "blakhole"\n',
    "state-typo.toml": '[[scenario]]\nkeepalive = [1, 1, 3]\nstate = "sleepy"\n',
    "family-typo.toml": '[[scenario]]\nkeepalive = [1, 1, 3]\nfamily = "ipv5"\n',
    "idle-zero.toml": "[[scenario]]\nkeepalive = [0, 1, 3]\n",
    "cnt-absurd.toml": "[[scenario]]\nkeepalive = [1, 1, 1000000000]\n",
    "keepalive-pair.toml": "[[scenario]]\nkeepalive = [1, 1]\n",
    "keepalive-float.toml": "[[scenario]]\nkeepalive = [1.5, 1, 3]\n",
    "user-timeout-negative.toml": "[[scenario]]\nkeepalive = [1, 1, 3]\nuser_timeout_ms = -1\n",
    "retries2-bool.toml": '[[scenario]]\nkeepalive = [1, 1, 3]\nstate = "unacked"\nretries2 = true\n',
    "unknown-key.toml": '[[scenario]]\nkeepalive = [1, 1, 3]\ncolour = "red"\n',
    "pyproject.toml": "[tool.black]\nline-length = 88\n",
    "scenario-not-table.toml": "scenario = [1, 2]\n",
    "empty-family.toml": "[[scenario]]\nkeepalive = [1, 1, 3]\nfamily = []\n",
    "nested-fault.toml": '[[scenario]]\nkeepalive = [1, 1, 3]\nfault = ["blackhole", ["link-down"]]\n',
    "empty.toml": "",
    "truncated.toml": "[[scenario]]\nkeepalive = [1, 1",
    "known-unknown-key.toml": '[[known]]\nscenario = "*"\noutcome = "skip"\nreason = "r"\nticket = 5\n',
    "known-outcome-pass.toml": '[[known]]\nscenario = "*"\noutcome = "pass"\nreason = "r"\n',
    "known-no-reason.toml": '[[known]]\nscenario = "*"\noutcome = "xfail"\n',
    "known-kernel-int.toml": '[[known]]\nscenario = "*"\nkernel = 6\noutcome = "skip"\nreason = "r"\n',
    "known-not-a-list.toml": "known = 5\n",
}


def write_files(folder: Path) -> Path:
    folder.mkdir()
    for name, content in FILES.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (folder / "locked").mkdir(mode=0)  # a directory its owner cannot read: a HOME that is root's after `su`
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Nothing left behind


def nk_namespaces() -> set[str]:
    try:
        return {n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(PREFIX)}
    except FileNotFoundError:
        return set()


def nk_interfaces() -> set[str]:
    return {n for n in os.listdir("/sys/class/net") if n.startswith(PREFIX)}


def marked_processes(marker: str) -> list[str]:
    """Processes whose environment carries ``marker`` (so started by the row, however far they wandered)."""
    wanted = f"{MARKER_ENV}={marker}".encode()
    found = []
    for pid in pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if wanted in f.read().split(b"\0"):
                    with open(f"/proc/{pid}/cmdline", "rb") as c:
                        command = c.read().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{pid}: {command}")
        except OSError:
            continue
    return found


def own_session_descendants() -> list[int]:
    """This test process's descendants in its own session.

    Not those in a session of their own: the README's and the docs' commands, which tests/test_readme.py
    runs from this process (each in its own session) while the suite goes on.  A row's process that
    started a session of its own is still found, by the marker in its environment (``marked_processes``).
    """
    mine = os.getsid(0)
    found = []
    for pid in descendants(os.getpid()):
        try:
            if os.getsid(pid) == mine:
                found.append(pid)
        except ProcessLookupError:
            continue
    return found


def settled(found: Callable[[], list[T]], timeout: float = 5.0) -> list[T]:
    """``found()`` once it is empty, or what it still finds after ``timeout`` s (processes take a moment to end)."""
    deadline = time.monotonic() + timeout
    while (left := found()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


class Untouched:
    """Before a row: what exists. After it: nothing new may remain (see the module docstring)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        self.marker = uuid.uuid4().hex
        self.namespaces = nk_namespaces()
        self.interfaces = nk_interfaces()
        self.children = set(own_session_descendants())

    def env(self, **extra: str) -> dict[str, str]:
        """The row's environment: no inherited netkit/pytest settings, its own TMPDIR, kernel cache and marker."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NETKIT_", "PYTEST_", "KSFT_"))}
        env.update(TMPDIR=str(self.tmpdir), NETKIT_KERNEL_CACHE=str(self.tmpdir.parent / "kernels"))
        env[MARKER_ENV] = self.marker
        env.update(extra)
        return env

    def check(self) -> None:
        running = settled(lambda: marked_processes(self.marker))
        assert not running, f"processes the row started still run: {running}"
        children = settled(lambda: sorted(set(own_session_descendants()) - self.children))
        assert not children, f"children of this test process still run: {children}"
        orphaned = sorted(n for n in nk_namespaces() - self.namespaces
                          if owner_pid(n) is None or not process_alive(owner_pid(n) or 0))
        assert not orphaned, f"namespaces left behind: {orphaned}"
        assert not nk_interfaces() - self.interfaces, f"host interfaces left behind: {nk_interfaces() - self.interfaces}"
        left = sorted(str(p.relative_to(self.tmpdir)) for p in self.tmpdir.rglob("*"))
        assert not left, f"temporary files left behind in TMPDIR: {left}"


@pytest.fixture
def untouched(tmp_path: Path) -> Untouched:
    return Untouched(tmp_path)


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    return write_files(tmp_path / "in")


# ---------------------------------------------------------------------------------------------------------------
# The command line


@dataclass(frozen=True)
class Row:
    args: tuple[str, ...]  # after `netkit`; "{in}" is the folder of FILES
    exit: int
    says: tuple[str, ...]  # each must be in the output (the message names the input and what to do)
    stream: str = "stderr"  # where the one message goes
    env: dict[str, str] = field(default_factory=dict)
    locked_out: bool = False  # file permissions bind it, as a user: root runs it without CAP_DAC_*


def row(id: str, args: str | list[str], exit: int, *says: str, root: bool = False, stream: str = "stderr",
        env: dict[str, str] | None = None, locked_out: bool = False) -> object:
    """One row: ``args`` as a shell-like string (split on spaces) or a list; ``root``: it builds a lab first;
    ``locked_out``: it must be refused ``{in}/locked`` (mode 000), so root drops the capabilities that read it."""
    argv = tuple(args.split() if isinstance(args, str) else args)
    marks = [pytest.mark.skipif(ROOT_MISSING is not None, reason=f"builds a lab: {ROOT_MISSING}")] if root else []
    return pytest.param(Row(argv, exit, says, stream, env or {}, locked_out), id=id, marks=marks)


def expect_one_message(done: subprocess.CompletedProcess[str], r: Row, folder: Path) -> None:
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    assert done.returncode == r.exit, output
    text = getattr(done, r.stream)
    messages = [line for line in text.splitlines() if MESSAGE_LINE.match(line)]
    assert len(messages) == 1, f"expected one message on {r.stream}, got {messages}:\n{output}"
    for fragment in r.says:
        assert fragment.replace("{in}", str(folder)) in output, f"{fragment!r} not in:\n{output}"


def netkit(r: Row, untouched: Untouched, folder: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    if r.locked_out and os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search",
                  "--inh-caps=-dac_override,-dac_read_search", *prefix)
    argv = [a.replace("{in}", str(folder)) for a in r.args]
    env = untouched.env(**{k: v.replace("{in}", str(folder)) for k, v in r.env.items()})
    return subprocess.run([*prefix, sys.executable, "-m", "netkit.cli", *argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=60)


DEMO = [
    row("demo-cnt-zero", "demo --cnt 0", 2, "cnt (TCP_KEEPCNT) 0", "1..127", "--cnt"),
    row("demo-cnt-negative", "demo --cnt -1", 2, "cnt (TCP_KEEPCNT) -1", "1..127", "--cnt"),
    row("demo-cnt-not-a-number", "demo --cnt three", 2, "--cnt", "'three'"),
    row("demo-idle-zero", "demo --idle 0", 2, "idle (TCP_KEEPIDLE) 0", "1..32767", "--idle"),
    row("demo-idle-absurd", "demo --idle 1000000000", 2, "idle (TCP_KEEPIDLE) 1000000000", "1..32767", "--idle"),
    row("demo-intvl-32768", "demo --intvl 32768", 2, "intvl (TCP_KEEPINTVL) 32768", "1..32767", "--intvl"),
    row("demo-intvl-fraction", "demo --intvl 1.5", 2, "--intvl", "'1.5'"),
    row("demo-user-timeout-negative", "demo --user-timeout -5", 2, "TCP_USER_TIMEOUT) -5", "0..2147483647",
        "--user-timeout"),
    row("demo-user-timeout-absurd", "demo --user-timeout 99999999999", 2, "99999999999", "0..2147483647",
        "--user-timeout"),
    row("demo-user-timeout-with-unit", "demo --user-timeout 3s", 2, "--user-timeout", "'3s'"),
    row("demo-retries2-zero", "demo --state unacked --retries2 0", 2, "retries2 (net.ipv4.tcp_retries2) 0", "1..15",
        "--retries2"),
    row("demo-retries2-idle", "demo --retries2 3", 2, "retries2 (net.ipv4.tcp_retries2) 3", "unacked", "--retries2"),
    row("demo-unknown-fault", "demo --fault blakhole", 2, "--fault", "'blakhole'", "blackhole"),
    row("demo-unknown-state", "demo --state sleepy", 2, "--state", "'sleepy'", "zero-window"),
    row("demo-unknown-side", "demo --side middle", 2, "--side", "'middle'", "client"),
    row("demo-unknown-keepalive-via", "demo --keepalive-via magic", 2, "--keepalive-via", "'magic'", "sysctl"),
    row("demo-not-modelled", "demo --state unacked", 2, "needs tcp_retries2 set low", root=True),
    row("demo-syn-recv-not-modelled", "demo --state syn-recv --fault link-down", 2,
        "a half-open handshake needs a client that vanishes", root=True),
    row("demo-syn-retries-zero", "demo --state syn-sent --syn-retries 0", 2, "syn_retries 0", "1..6", "--syn-retries"),
    row("demo-syn-retries-idle", "demo --syn-retries 2", 2, "syn_retries 2", "handshake states", "--syn-retries"),
    row("demo-syn-recv-user-timeout", "demo --state syn-recv --user-timeout 1000", 2,
        "user_timeout_ms (TCP_USER_TIMEOUT) 1000", "syn-recv", "--user-timeout"),
    row("demo-pcap-is-a-directory", "demo --pcap {in}", 2, "pcap '{in}'", "is a directory"),
    row("demo-pcap-under-a-file", "demo --pcap {in}/afile/x.pcap", 2, "{in}/afile/x.pcap", "{in}/afile is not a directory"),
    row("demo-unknown-option", "demo --idel 3", 2, "--idel"),
    row("demo-route-rto-min-not-whole-ms", "demo --state unacked --retries2 3 --rto-min-us 50500 --rto-min-via route",
        2, "rto_min_us 50500", "whole milliseconds", "--rto-min-us"),
    row("demo-rto-min-via-without-the-minimum", "demo --state unacked --retries2 3 --rto-min-via route", 2,
        "rto_min_via 'route'", "give rto_min_us too", "--rto-min-via"),
]

DEMO_ROUTED = [  # the routed topology (netkit.lab.routed): every refusal comes before a lab is built
    row("demo-routed-no-timeout", "demo --topology routed --idle 3", 2, "middlebox_timeout_s None", "1..432000",
        "--middlebox-timeout"),
    row("demo-routed-timeout-zero", "demo --topology routed --idle 3 --middlebox-timeout 0", 2,
        "middlebox_timeout_s 0", "1..432000"),
    row("demo-routed-timeout-not-a-number", "demo --topology routed --middlebox-timeout 2m", 2, "--middlebox-timeout",
        "'2m'"),
    row("demo-timeout-without-routed", "demo --middlebox-timeout 2", 2, "middlebox_timeout_s 2", "routed topology only"),
    row("demo-masquerade-without-routed", "demo --masquerade", 2, "masquerade True", "routed topology only"),
    row("demo-routed-idle-equals-timeout", "demo --topology routed --idle 2 --middlebox-timeout 2", 2,
        "idle 2 s equals the middlebox timeout", "--idle/--intvl"),
    row("demo-routed-intvl-above-timeout", "demo --topology routed --idle 1 --intvl 3 --middlebox-timeout 2", 2,
        "intvl 3 s is not", "idle above"),
    row("demo-routed-other-fault", "demo --topology routed --idle 3 --middlebox-timeout 2 --fault blackhole", 2,
        "fault 'blackhole'", "middlebox-forgets"),
    row("demo-middlebox-forgets-direct", "demo --fault middlebox-forgets", 2, "fault 'middlebox-forgets'",
        "topology='routed'"),
    row("demo-routed-unacked", "demo --topology routed --idle 3 --middlebox-timeout 2 --state unacked", 2,
        "state 'unacked'", "idle"),
    row("demo-routed-user-timeout", "demo --topology routed --idle 3 --middlebox-timeout 2 --user-timeout 3000", 2,
        "TCP_USER_TIMEOUT) 3000", "keepalive alone"),
    row("demo-unknown-middlebox", "demo --topology routed --middlebox forget", 2, "--middlebox", "'forget'", "reject"),
    row("demo-unknown-topology", "demo --topology star", 2, "--topology", "'star'", "routed"),
]

CHECK_SERVER = [
    row("check-server-no-command", "check-server --port 6379", 2, "COMMAND", "after `--`"),
    row("check-server-port-missing", "check-server -- sleep 1", 2, "--port"),
    row("check-server-port-zero", "check-server --port 0 -- sleep 1", 2, "port 0", "1..65535"),
    row("check-server-port-not-a-number", "check-server --port redis -- sleep 1", 2, "--port", "'redis'"),
    row("check-server-expect-zero", "check-server --port 80 --expect-s 0 -- sleep 1", 2, "--expect-s 0.0", "> 0"),
    row("check-server-expect-infinite", "check-server --port 80 --expect-s inf -- sleep 1", 2, "--expect-s inf", "> 0"),
    row("check-server-expect-nan", "check-server --port 80 --expect-s nan -- sleep 1", 2, "--expect-s nan", "> 0"),
    row("check-server-expect-not-a-number", "check-server --port 80 --expect-s soon -- sleep 1", 2, "--expect-s",
        "'soon'"),
    row("check-server-listen-timeout-negative", "check-server --port 80 --listen-timeout -1 -- sleep 1", 2,
        "--listen-timeout -1.0", "> 0"),
    row("check-server-timeout-zero", "check-server --port 80 --timeout 0 -- sleep 1", 2, "--timeout 0.0", "> 0"),
    row("check-server-program-missing", "check-server --port 80 -- no-such-server-nk", 2, "'no-such-server-nk'",
        "not found"),  # said before any lab is built: no root needed to hear it
    row("check-server-program-not-executable", "check-server --port 80 -- {in}/afile", 2, "'{in}/afile'", "not found"),
    row("check-server-program-exits-at-once", ["check-server", "--port", "80", "--", "/bin/true"], 2,
        "`/bin/true` exited with status 0 before listening on port 80", "foreground", root=True),
    row("check-server-program-fails", ["check-server", "--port", "80", "--", "/bin/false"], 2,
        "`/bin/false` exited with status 1 before listening on port 80", root=True),
    row("check-server-never-listens", "check-server --port 7777 --listen-timeout 0.3 -- sleep 30", 2,
        "did not listen on 198.18.0.1:7777 within 0.3 s", "nothing listens on that port", root=True),
    row("check-server-listens-on-loopback-only",
        ["check-server", "--port", "7777", "--listen-timeout", "0.5", "--", SERVER, "-c",
         "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 7777)); s.listen(); time.sleep(30)"], 2,
        "it listens on 127.0.0.1:7777 only: bind it to 198.18.0.1 or to any address", root=True),
    row("check-server-ipv6-but-listens-on-ipv4",
        ["check-server", "--ipv6", "--port", "7777", "--listen-timeout", "0.5", "--", SERVER, "-c",
         "import socket, time; s = socket.socket(); s.bind(('198.18.0.1', 7777)); s.listen(); time.sleep(30)"], 2,
        "did not listen on [2001:2::1]:7777", "bind it to 2001:2::1", root=True),
    row("check-server-port-in-use",
        ["check-server", "--port", "7777", "--", SERVER, "-c",
         "import socket, sys\na = socket.socket(); a.bind(('0.0.0.0', 7777)); b = socket.socket()\n"
         "try:\n    b.bind(('0.0.0.0', 7777))\nexcept OSError as e:\n    sys.exit(f'cannot bind: {e.strerror}')"], 2,
        "exited with status 1 before listening on port 7777", "cannot bind: Address already in use", root=True),
    row("check-server-program-exits-after-listening",  # either side of netkit's look at the listener: the same cause
        ["check-server", "--port", "7777", "--", SERVER, "-c",
         "import os, socket; s = socket.socket(); s.bind(('0.0.0.0', 7777)); s.listen(); print('bye'); os._exit(3)"], 2,
        "exited with status 3", "bye", root=True),
    row("check-server-program-daemonizes", ["check-server", "--port", "80", "--", "sh", "-c", "sleep 37 & exit 0"], 2,
        "exited with status 0 before listening", "no daemonizing", root=True),
]

CHECK_CLIENT = [
    row("check-client-no-command", "check-client", 2, "COMMAND", "after `--`"),
    row("check-client-only-dashes", "check-client --", 2, "COMMAND", "{host} and {port}"),
    row("check-client-max-wait-zero", "check-client --max-wait 0 -- true", 2, "--max-wait 0.0", "> 0"),
    row("check-client-max-wait-nan", "check-client --max-wait nan -- true", 2, "--max-wait nan", "> 0"),
    row("check-client-expect-infinite", "check-client --expect-s inf -- true", 2, "--expect-s inf", "> 0"),
    row("check-client-connect-timeout-negative", "check-client --connect-timeout -1 -- true", 2,
        "--connect-timeout -1.0", "> 0"),
    row("check-client-port-too-big", "check-client --port 70000 -- true", 2, "--port 70000", "1..65535"),
    row("check-client-unknown-fault", "check-client --fault meteor -- true", 2, "--fault", "'meteor'", "link-down"),
    row("check-client-program-missing", "check-client -- no-such-client-nk", 2, "'no-such-client-nk'", "not found"),
    row("check-client-exits-at-once", "check-client -- /bin/true", 2,
        "`/bin/true` exited with status 0 before it connected to the silent server at 198.18.0.1:", root=True),
    row("check-client-never-connects", "check-client --connect-timeout 0.5 -- sleep 30", 2,
        "`sleep 30` did not connect to the silent server at 198.18.0.1:", "within 0.5 s",
        "it made no TCP connection in the lab", "put {host} and {port}", root=True),
    row("check-client-connects-elsewhere",
        ["check-client", "--connect-timeout", "1", "--", "bash", "-c", "exec 3<>/dev/tcp/198.18.0.7/{port}; sleep 30"], 2,
        "did not connect to the silent server", "it tried 198.18.0.7:", "(SYN_SENT) instead", root=True),
    row("check-client-refused-elsewhere", ["check-client", "--", "bash", "-c", "exec 3<>/dev/tcp/{host}/9"], 2,
        "exited with status 1 before it connected to the silent server", "Connection refused", root=True),
    row("check-client-closes-at-once", ["check-client", "--", "bash", "-c", "exec 3<>/dev/tcp/{host}/{port}; exit 0"],
        2, "the client closed its connection", "before netkit could break the path", "stays connected", root=True),
]

GATE = [
    row("gate-repeat-zero", "gate --repeat 0", 2, "--repeat 0", "1..1000"),
    row("gate-repeat-absurd", "gate --repeat 1000000000", 2, "--repeat 1000000000", "1..1000"),
    row("gate-repeat-not-a-number", "gate --repeat twice", 2, "--repeat", "'twice'"),
    row("gate-jobs-zero", ["gate", "--jobs", "0", *ONLY], 2, "--jobs 0", "1 or more"),
    row("gate-only-matches-nothing", "gate --only ipv4-idle-blakhole-*", 2, "--only 'ipv4-idle-blakhole-*'",
        "netkit gate --list"),
    row("gate-matrix-missing", "gate --list --matrix {in}/fleet.toml", 2, "{in}/fleet.toml", "No such file"),
    row("gate-matrix-is-a-directory", "gate --list --matrix {in}", 2, "{in}", "Is a directory"),
    row("gate-matrix-truncated", "gate --list --matrix {in}/truncated.toml", 2, "{in}/truncated.toml", "not valid TOML"),
    row("gate-matrix-not-text", "gate --list --matrix {in}/binary", 2, "{in}/binary", "not valid TOML"),
    row("gate-matrix-empty", "gate --list --matrix {in}/empty.toml", 2, "{in}/empty.toml", "no [[scenario]] table"),
    row("gate-matrix-another-tools-json", "gate --list --matrix {in}/eslint.json", 2, "{in}/eslint.json",
        "not valid TOML"),
    row("gate-matrix-another-tools-toml", "gate --list --matrix {in}/pyproject.toml", 2, "{in}/pyproject.toml:1",
        "unknown top-level key 'tool'"),
    row("gate-matrix-unknown-key", "gate --list --matrix {in}/unknown-key.toml", 2, "{in}/unknown-key.toml:3",
        "key 'colour'", "allowed:"),
    row("gate-matrix-unknown-fault", "gate --list --matrix {in}/fault-typo.toml", 2, "{in}/fault-typo.toml:3",
        "key 'fault'", "unknown fault 'blakhole'", "link-down"),
    row("gate-matrix-unknown-state", "gate --list --matrix {in}/state-typo.toml", 2, "{in}/state-typo.toml:3",
        "key 'state'", "'sleepy'", "zero-window"),
    row("gate-matrix-unknown-family", "gate --list --matrix {in}/family-typo.toml", 2, "{in}/family-typo.toml:3",
        "key 'family'", "'ipv5'"),
    row("gate-matrix-idle-zero", "gate --list --matrix {in}/idle-zero.toml", 2, "{in}/idle-zero.toml:2",
        "key 'keepalive'", "idle (TCP_KEEPIDLE) 0", "1..32767"),
    row("gate-matrix-cnt-absurd", "gate --list --matrix {in}/cnt-absurd.toml", 2, "{in}/cnt-absurd.toml:2",
        "cnt (TCP_KEEPCNT) 1000000000", "1..127"),
    row("gate-matrix-keepalive-pair", "gate --list --matrix {in}/keepalive-pair.toml", 2, "{in}/keepalive-pair.toml:2",
        "[1, 1] is not [idle, intvl, cnt]"),
    row("gate-matrix-keepalive-float", "gate --list --matrix {in}/keepalive-float.toml", 2,
        "{in}/keepalive-float.toml:2", "idle (TCP_KEEPIDLE) 1.5"),
    row("gate-matrix-user-timeout-negative", "gate --list --matrix {in}/user-timeout-negative.toml", 2,
        "{in}/user-timeout-negative.toml:3", "key 'user_timeout_ms'", "-1"),
    row("gate-matrix-retries2-bool", "gate --list --matrix {in}/retries2-bool.toml", 2, "{in}/retries2-bool.toml:4",
        "key 'retries2'", "True"),
    row("gate-matrix-scenario-not-a-table", "gate --list --matrix {in}/scenario-not-table.toml", 2,
        "{in}/scenario-not-table.toml:1", "1 is not a table"),
    row("gate-matrix-empty-list", "gate --list --matrix {in}/empty-family.toml", 2, "{in}/empty-family.toml:3",
        "key 'family'", "an empty list"),
    row("gate-matrix-nested-list", "gate --list --matrix {in}/nested-fault.toml", 2, "{in}/nested-fault.toml:3",
        "unknown fault ['link-down']"),
    row("gate-baseline-missing", ["gate", "--baseline", "{in}/old.json", *ONLY], 2, "{in}/old.json", "No such file"),
    row("gate-baseline-truncated", ["gate", "--baseline", "{in}/truncated.json", *ONLY], 2, "{in}/truncated.json",
        "not JSON (truncated?)"),
    row("gate-baseline-not-text", ["gate", "--baseline", "{in}/binary", *ONLY], 2, "{in}/binary", "not UTF-8"),
    row("gate-baseline-another-tools-json", ["gate", "--baseline", "{in}/eslint.json", *ONLY], 2, "{in}/eslint.json",
        "not a netkit gate document"),
    row("gate-baseline-a-demo-result", ["gate", "--baseline", "{in}/result.json", *ONLY], 2, "{in}/result.json",
        "schema 'netkit.scenario-result/1'", "'netkit-gate/1'"),
    row("gate-known-missing", ["gate", "--known", "{in}/known.toml", *ONLY], 2, "{in}/known.toml", "No such file"),
    row("gate-list-checks-known-too", "gate --list --known {in}/known.toml", 2, "{in}/known.toml", "No such file"),
    row("gate-list-checks-baseline-too", "gate --list --baseline {in}/truncated.json", 2, "{in}/truncated.json"),
    row("gate-list-checks-jobs-too", "gate --list --jobs 0", 2, "--jobs 0", "1 or more"),
    row("gate-known-not-text", ["gate", "--known", "{in}/binary", *ONLY], 2, "{in}/binary", "not UTF-8"),
    row("gate-known-unknown-key", ["gate", "--known", "{in}/known-unknown-key.toml", *ONLY], 2,
        "{in}/known-unknown-key.toml:5", "unknown key 'ticket'"),
    row("gate-known-outcome-pass", ["gate", "--known", "{in}/known-outcome-pass.toml", *ONLY], 2,
        "{in}/known-outcome-pass.toml:3", "outcome 'pass'", '"xfail" or "skip"'),
    row("gate-known-no-reason", ["gate", "--known", "{in}/known-no-reason.toml", *ONLY], 2,
        "{in}/known-no-reason.toml:1", "'reason' is required"),
    row("gate-known-kernel-not-a-string", ["gate", "--known", "{in}/known-kernel-int.toml", *ONLY], 2,
        "{in}/known-kernel-int.toml:3", "'kernel' = 6"),
    row("gate-known-not-a-list", ["gate", "--known", "{in}/known-not-a-list.toml", *ONLY], 2,
        "{in}/known-not-a-list.toml:1", "'known' = 5"),
    row("gate-known-is-a-matrix", ["gate", "--known", "{in}/fault-typo.toml", *ONLY], 2, "{in}/fault-typo.toml:1",
        "unknown top-level key 'scenario'"),
    row("gate-json-folder-missing", ["gate", "--json", "{in}/out/gate.json", *ONLY], 2, "{in}/out/gate.json",
        "does not exist"),
    row("gate-junit-is-a-directory", ["gate", "--junit", "{in}", *ONLY], 2, "{in}", "is a directory"),
    row("gate-html-cannot-be-written", ["gate", "--html", "/proc/netkit-gate.html", *ONLY], 2,
        "/proc/netkit-gate.html", "cannot write it"),
    row("gate-pcap-dir-is-a-file", ["gate", "--pcap-dir", "{in}/afile", *ONLY], 2, "--pcap-dir {in}/afile",
        "is not a directory"),
    row("gate-unknown-kernel-spec", ["gate", "--kernel", "debain:6.1", *ONLY], 2, "'debain:6.1'", "debian:SERIES"),
    row("gate-kcidb-without-origin", ["gate", "--kcidb", "{in}/kcidb.json", *ONLY], 2, "--kcidb needs --kcidb-origin"),
    row("gate-kcidb-origin-not-kcidbs", ["gate", "--kcidb", "{in}/kcidb.json", "--kcidb-origin", "My CI", *ONLY], 2,
        "--kcidb-origin 'My CI'", "lower-case letters, digits and _"),
    row("gate-kcidb-build-id-without-its-origin", ["gate", "--kcidb", "{in}/kcidb.json", "--kcidb-origin", "lab",
                                               "--kcidb-build-id", "b123", *ONLY], 2,
        "--kcidb-build-id 'b123'", "a colon, then the CI's own id"),
    row("gate-kcidb-checkout-id-not-an-origin", ["gate", "--kcidb", "{in}/kcidb.json", "--kcidb-origin", "lab",
                                       "--kcidb-checkout-id", "Lab:x", *ONLY], 2, "--kcidb-checkout-id 'Lab:x'"),
    row("gate-kcidb-origin-without-kcidb", "gate --list --kcidb-origin lab", 2, "--kcidb-origin without --kcidb FILE"),
    row("gate-kcidb-is-a-directory", ["gate", "--kcidb", "{in}", "--kcidb-origin", "lab", *ONLY], 2, "{in}",
        "is a directory"),
    row("gate-nipa-without-branch", ["gate", "--nipa", "{in}/nipa.json", *ONLY], 2, "--nipa needs the netdev branch",
        "--nipa-branch NAME", env={"BRANCH": ""}),
    row("gate-nipa-branch-too-long", ["gate", "--nipa", "{in}/nipa.json", "--nipa-branch", "b" * 81, *ONLY], 2,
        "--nipa-branch: at most 80 characters", "not 81"),
    row("gate-nipa-executor-empty", ["gate", "--nipa", "{in}/nipa.json", "--nipa-branch", "net-next",
                                     "--nipa-executor", " ", *ONLY], 2, "--nipa-executor: give a name"),
    row("gate-nipa-link-without-nipa", "gate --list --nipa-link https://example.org/run/1", 2,
        "--nipa-link without --nipa FILE"),
    row("gate-nipa-folder-missing", ["gate", "--nipa", "{in}/out/nipa.json", "--nipa-branch", "net-next", *ONLY], 2,
        "{in}/out/nipa.json", "does not exist"),
    row("gate-tap-with-two-kernels", ["gate", "--tap", "--kernel", "host", "--kernel", "debian:6.1", *ONLY], 2,
        "--tap with several --kernel"),
]

GATE_DIFF = [
    row("diff-one-document", "gate diff {in}/good.json", 2, "give two gate documents", "not 1"),
    row("diff-no-document", "gate diff", 2, "DOC.json"),
    row("diff-missing", "gate diff {in}/good.json {in}/new.json", 2, "{in}/new.json", "No such file"),
    row("diff-truncated", "gate diff {in}/good.json {in}/truncated.json", 2, "{in}/truncated.json", "truncated"),
    row("diff-not-text", "gate diff {in}/good.json {in}/binary", 2, "{in}/binary", "not UTF-8"),
    row("diff-another-tools-json", "gate diff {in}/eslint.json {in}/good.json", 2, "{in}/eslint.json",
        "not a netkit gate document"),
    row("diff-a-demo-result", "gate diff {in}/good.json {in}/result.json", 2, "{in}/result.json",
        "schema 'netkit.scenario-result/1'"),
    row("diff-kernel-not-an-object", "gate diff {in}/good.json {in}/kernel-string.json", 2, "{in}/kernel-string.json",
        "\"kernel\" is '6.1'"),
    row("diff-scenario-without-outcome", "gate diff {in}/good.json {in}/no-outcome.json", 2, "{in}/no-outcome.json",
        "outcome None"),
    row("diff-runs-not-a-list", "gate diff {in}/good.json {in}/runs-string.json", 2, "{in}/runs-string.json",
        "\"runs\" is not a list"),
    row("diff-scenarios-null", "gate diff {in}/good.json {in}/scenarios-null.json", 2, "{in}/scenarios-null.json",
        "\"scenarios\" is None"),
    row("diff-side-by-side-with-a-bad-one", "gate diff {in}/good.json {in}/good.json {in}/kernel-string.json", 2,
        "{in}/kernel-string.json"),
    row("diff-html-folder-missing", "gate diff {in}/good.json {in}/good.json --html {in}/out/k.html", 2,
        "{in}/out/k.html", "does not exist"),
]

KERNELS_AND_THE_REST = [
    row("kernels-get-unknown-spec", "kernels get debain:6.1", 2, "'debain:6.1'", "debian:SERIES"),
    row("kernels-get-empty-spec", ["kernels", "get", ""], 2, "empty kernel spec", "debian:SERIES"),
    row("kernels-get-one-bad-spec-of-two", "kernels get debian:6.1 6.1", 2, "'6.1'", "debian:SERIES"),
    row("kernels-remove-unknown", "kernels remove 6.1.0-99-amd64", 2, "'6.1.0-99-amd64'", "netkit kernels list"),
    row("kernels-remove-a-path", "kernels remove ../../etc", 2, "'../../etc'", "netkit kernels list"),
    row("kernels-list-cache-is-a-file", "kernels list", 2, "{in}/afile", "not a directory", "NETKIT_KERNEL_CACHE",
        env={"NETKIT_KERNEL_CACHE": "{in}/afile"}),
    row("kernels-list-home-unreadable", "kernels list", 2, "kernel cache {in}/locked/.cache/netkit/kernels",
        "cannot read it (permission denied)", "set NETKIT_KERNEL_CACHE", env={"NETKIT_KERNEL_CACHE": "", "HOME": "{in}/locked"},
        locked_out=True),
    row("cleanup-unknown-option", "cleanup --force", 2, "--force"),
    row("doctor-unknown-option", "doctor --fix", 2, "--fix"),
    row("doctor-json-with-a-value", "doctor --json=yes", 2, "--json", "'yes'"),
    row("unknown-command", "frobnicate", 2, "'frobnicate'", "check-server"),
]


GATE_SHARD_AND_MERGE = [
    row("gate-shard-zero", ["gate", "--shard", "0/3", *ONLY], 2, "--shard 0/3", "1 <= K <= N"),
    row("gate-shard-past-the-count", "gate --list --shard 4/3", 2, "--shard 4/3", "1 <= K <= N"),
    row("gate-shard-not-k-of-n", "gate --list --shard half", 2, "--shard half", "give K/N"),
    row("merge-no-document", "gate merge", 2, "DOC.json"),
    row("merge-missing", "gate merge {in}/part1of2.json {in}/part2of2.json", 2, "{in}/part2of2.json", "No such file"),
    row("merge-another-tools-json", "gate merge {in}/eslint.json", 2, "{in}/eslint.json", "not a netkit gate document"),
    row("merge-truncated", "gate merge {in}/truncated.json", 2, "{in}/truncated.json", "truncated"),
    row("merge-a-part-missing", "gate merge {in}/part1of2.json", 2, "part 2 of 2 missing"),
    row("merge-a-part-twice", "gate merge {in}/part1of2.json {in}/part1of2.json", 2, "both part 1/2"),
    row("merge-a-scenario-twice", "gate merge {in}/good.json {in}/good.json", 2, "is in both {in}/good.json"),
    row("merge-two-kernels", "gate merge {in}/good.json {in}/other-kernel.json", 2, "kernel release",
        "'6.1.0-37-amd64'"),
    row("merge-json-folder-missing", "gate merge {in}/good.json --json {in}/out/m.json", 2, "{in}/out/m.json",
        "does not exist"),
]


@pytest.mark.parametrize("r", DEMO + DEMO_ROUTED + CHECK_SERVER + CHECK_CLIENT + GATE + GATE_DIFF + GATE_SHARD_AND_MERGE
                         + KERNELS_AND_THE_REST)
def test_the_command_refuses_bad_input(r: Row, untouched: Untouched, bad_files: Path) -> None:
    done = netkit(r, untouched, bad_files)
    expect_one_message(done, r, bad_files)
    untouched.check()


# ---------------------------------------------------------------------------------------------------------------
# Without privileges: the message says what to do; nothing is created


UNPRIVILEGED = [
    # every command: 4, cannot run here (kselftest's skip), the same for all
    row("demo", "demo --cnt 1", 4, "CAP_SYS_ADMIN", "run it"),
    row("check-server", "check-server --port 80 -- sleep 30", 4, "CAP_SYS_ADMIN", "run it"),
    row("check-client", "check-client -- sleep 30", 4, "CAP_SYS_ADMIN", "run it"),
    row("gate", ["gate", *ONLY], 4, "nothing can run here", "CAP_SYS_ADMIN", "run it"),
    row("gate-tap", ["gate", "--tap", *ONLY], 4, "1..0 # SKIP", "CAP_SYS_ADMIN"),
    row("cleanup", "cleanup", 4, "CAP_SYS_ADMIN", "run it"),
    row("doctor", "doctor", 4, "MISSING", "CAP_SYS_ADMIN", "netkit cannot run here", stream="stdout"),
]


@pytest.mark.parametrize("r", UNPRIVILEGED)
def test_without_privileges_the_command_says_what_to_do(r: Row, untouched: Untouched, bad_files: Path,
                                                         without_privileges: Unprivileged) -> None:
    done = netkit(r, untouched, bad_files, prefix=tuple(without_privileges.prefix))
    expect_one_message(done, r, bad_files)
    assert without_privileges.says in done.stdout + done.stderr
    untouched.check()


LIBRARY_UNPRIVILEGED = {
    "run_scenario": "run_scenario(Scenario(KeepaliveSettings(1, 1, 1)))",
    "run_many": "run_many([Scenario(KeepaliveSettings(1, 1, 1))] * 3)",
    "ScenarioPool": "ScenarioPool()",
    "Lab": "Lab().__enter__()",
}


@pytest.mark.parametrize("call", LIBRARY_UNPRIVILEGED.values(), ids=LIBRARY_UNPRIVILEGED.keys())
def test_without_privileges_the_library_raises_before_it_creates_anything(call: str, untouched: Untouched,
                                                                         without_privileges: Unprivileged) -> None:
    script = ("import sys\nfrom netkit import *\n"
              f"try:\n    {call}\nexcept EnvironmentUnusable as exc:\n    print(exc)\n    sys.exit(2)\n")
    done = subprocess.run([*without_privileges.prefix, sys.executable, "-c", script], capture_output=True, text=True,
                          env=untouched.env(), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert without_privileges.says in done.stdout and "run it" in done.stdout
    untouched.check()


# ---------------------------------------------------------------------------------------------------------------
# The pytest plugin's options, environment and ini values: a usage error (exit 4) naming the value and its source


@dataclass(frozen=True)
class PytestRow:
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    ini: str = ""
    says: tuple[str, ...] = ()
    exit: int = 4
    stream: str = "stderr"


def prow(id: str, *says: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None, ini: str = "",
         exit: int = 4, stream: str = "stderr") -> object:
    return pytest.param(PytestRow(args, env or {}, ini, says, exit, stream), id=id)


PYTEST = [
    prow("env-keep-failed-maybe", "Invalid value 'maybe' from NETKIT_KEEP_FAILED", env={"NETKIT_KEEP_FAILED": "maybe"}),
    prow("env-require-privileges-2", "Invalid value '2' from NETKIT_REQUIRE_PRIVILEGES",
         env={"NETKIT_REQUIRE_PRIVILEGES": "2"}),
    prow("env-pcap-dir-is-a-file", "Invalid pcap directory '{in}/afile' from NETKIT_PCAP_DIR", "not a directory",
         env={"NETKIT_PCAP_DIR": "{in}/afile"}),
    prow("env-pcap-dir-blank", "Invalid pcap directory '   ' from NETKIT_PCAP_DIR", env={"NETKIT_PCAP_DIR": "   "}),
    prow("option-pcap-dir-is-a-file", "Invalid pcap directory '{in}/afile' from --netkit-pcap-dir",
         args=("--netkit-pcap-dir", "{in}/afile")),
    prow("option-pcap-dir-under-a-file", "'{in}/afile/pcaps' from --netkit-pcap-dir", "{in}/afile is not a directory",
         args=("--netkit-pcap-dir", "{in}/afile/pcaps")),
    prow("option-keep-failed-with-a-value", "--netkit-keep-failed", "'yes'", args=("--netkit-keep-failed=yes",)),
    prow("ini-keep-failed-maybe", "netkit_keep_failed", "'maybe'", ini="netkit_keep_failed = maybe"),
    prow("ini-require-privileges-2", "netkit_require_privileges", "'2'", ini="netkit_require_privileges = 2"),
    prow("ini-pcap-dir-is-a-file", "Invalid pcap directory '{in}/afile' from the ini option netkit_pcap_dir",
         ini="netkit_pcap_dir = {in}/afile"),
]

TINY_TEST = "def test_nothing():\n    pass\n\n\ndef test_a_lab(netkit_lab):\n    pass\n"


def run_pytest(r: PytestRow, untouched: Untouched, folder: Path,
               prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    project = folder.parent / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n" + r.ini.replace("{in}", str(folder)) + "\n")
    (project / "test_tiny.py").write_text(TINY_TEST)
    env = untouched.env(**{k: v.replace("{in}", str(folder)) for k, v in r.env.items()})
    args = [a.replace("{in}", str(folder)) for a in r.args]
    return subprocess.run([*prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_tiny.py"],
                          capture_output=True, text=True, cwd=project, env=env, timeout=60)


@pytest.mark.parametrize("r", PYTEST)
def test_the_pytest_plugin_refuses_bad_settings(r: PytestRow, untouched: Untouched, bad_files: Path) -> None:
    done = run_pytest(r, untouched, bad_files)
    expect_one_message(done, Row((), r.exit, r.says, r.stream), bad_files)
    untouched.check()


def test_the_pytest_plugin_without_privileges_but_required_is_an_error(untouched: Untouched, bad_files: Path,
                                                                       without_privileges: Unprivileged) -> None:
    r = PytestRow(args=("--netkit-require-privileges",), exit=1)
    done = run_pytest(r, untouched, bad_files, prefix=tuple(without_privileges.prefix))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout, done.stdout  # the lab fixture fails; the plain test still runs
    assert without_privileges.says in done.stdout
    assert "--netkit-require-privileges makes this an error instead of a skip" in done.stdout
    untouched.check()


# ---------------------------------------------------------------------------------------------------------------
# The library: the exception names the value and what to give instead, before anything is created


def api(id: str, call: Callable[[Path], object], error: type[BaseException], *says: str) -> object:
    """``call(folder)``, with ``folder`` the directory of FILES, must raise ``error`` whose message has ``says``."""
    return pytest.param(call, error, says, id=id)


K = KeepaliveSettings(1, 1, 1)

LIBRARY = [
    api("keepalive-idle-zero", lambda d: KeepaliveSettings(idle=0), SettingError, "idle (TCP_KEEPIDLE) 0", "1..32767"),
    api("keepalive-idle-negative", lambda d: KeepaliveSettings(idle=-1), SettingError, "idle (TCP_KEEPIDLE) -1"),
    api("keepalive-idle-absurd", lambda d: KeepaliveSettings(idle=10**9), SettingError, "1000000000", "1..32767"),
    api("keepalive-intvl-float", lambda d: KeepaliveSettings(intvl=1.5), SettingError, "intvl (TCP_KEEPINTVL) 1.5",
        "whole numbers"),
    api("keepalive-cnt-128", lambda d: KeepaliveSettings(cnt=128), SettingError, "cnt (TCP_KEEPCNT) 128", "1..127"),
    api("keepalive-cnt-string", lambda d: KeepaliveSettings(cnt="3"), SettingError, "cnt (TCP_KEEPCNT) '3'"),
    api("keepalive-cnt-none", lambda d: KeepaliveSettings(cnt=None), SettingError, "cnt (TCP_KEEPCNT) None"),
    api("keepalive-idle-bool", lambda d: KeepaliveSettings(idle=True), SettingError, "idle (TCP_KEEPIDLE) True"),
    api("keepalive-user-timeout-negative", lambda d: KeepaliveSettings(user_timeout_ms=-1), SettingError,
        "user_timeout_ms (TCP_USER_TIMEOUT) -1", "0..2147483647"),
    api("keepalive-user-timeout-2-31", lambda d: KeepaliveSettings(user_timeout_ms=2**31), SettingError,
        "2147483648", "0..2147483647"),
    api("keepalive-user-timeout-bool", lambda d: KeepaliveSettings(user_timeout_ms=False), SettingError,
        "user_timeout_ms (TCP_USER_TIMEOUT) False"),
    api("keepalive-user-timeout-seconds", lambda d: KeepaliveSettings(user_timeout_ms=2.5), SettingError,
        "user_timeout_ms (TCP_USER_TIMEOUT) 2.5"),
    api("scenario-unknown-fault", lambda d: Scenario(K, fault="blakhole"), UnknownChoice, "unknown fault 'blakhole'",
        "link-down"),
    api("scenario-fault-list", lambda d: Scenario(K, fault=["blackhole"]), UnknownChoice, "unknown fault ['blackhole']"),
    api("scenario-unknown-state", lambda d: Scenario(K, state="sleepy"), SettingError, "state 'sleepy'", "zero-window"),
    api("scenario-state-list", lambda d: Scenario(K, state=["idle"]), SettingError, "state ['idle']"),
    api("scenario-unknown-family", lambda d: Scenario(K, family="ipv5"), UnknownChoice, "'ipv5'", "'ipv4' or 'ipv6'"),
    api("scenario-family-upper-case", lambda d: Scenario(K, family="IPv4"), UnknownChoice, "'IPv4'", "'ipv4' or 'ipv6'"),
    api("scenario-unknown-side", lambda d: Scenario(K, side="middle"), SettingError, "side 'middle'", "client"),
    api("scenario-unknown-keepalive-via", lambda d: Scenario(K, keepalive_via="magic"), SettingError,
        "keepalive_via 'magic'", "sysctl"),
    api("scenario-keepalive-tuple", lambda d: Scenario((1, 1, 3)), SettingError, "keepalive (1, 1, 3)",
        "KeepaliveSettings(1, 1, 3)"),
    api("scenario-keepalive-none", lambda d: Scenario(None), SettingError, "keepalive None", "KeepaliveSettings"),
    api("scenario-retries2-16", lambda d: Scenario(K, state="unacked", retries2=16), SettingError,
        "retries2 (net.ipv4.tcp_retries2) 16", "1..15"),
    api("scenario-retries2-bool", lambda d: Scenario(K, state="unacked", retries2=True), SettingError,
        "retries2 (net.ipv4.tcp_retries2) True"),
    api("scenario-retries2-idle", lambda d: Scenario(K, retries2=3), SettingError, "retries2 (net.ipv4.tcp_retries2) 3",
        "unacked"),
    api("scenario-connections-zero", lambda d: Scenario(K, connections=0), SettingError, "connections 0", "1..1000"),
    api("scenario-syn-sent-without-retries", lambda d: Scenario(K, state="syn-sent"), SettingError,
        "syn_retries None", "1..6", "127 s"),
    api("scenario-syn-retries-7", lambda d: Scenario(K, state="syn-sent", syn_retries=7), SettingError,
        "syn_retries 7", "1..6"),
    api("scenario-syn-retries-bool", lambda d: Scenario(K, state="syn-recv", syn_retries=True), SettingError,
        "syn_retries True"),
    api("scenario-syn-retries-idle", lambda d: Scenario(K, syn_retries=2), SettingError, "syn_retries 2",
        "handshake states"),
    api("scenario-syn-sent-retries2", lambda d: Scenario(K, state="syn-sent", syn_retries=2, retries2=3), SettingError,
        "retries2 (net.ipv4.tcp_retries2) 3"),
    api("scenario-syn-recv-user-timeout",
        lambda d: Scenario(KeepaliveSettings(user_timeout_ms=500), state="syn-recv", syn_retries=1), SettingError,
        "user_timeout_ms (TCP_USER_TIMEOUT) 500", "reqsk_timer_handler"),
    api("scenario-connections-data", lambda d: Scenario(K, state="unacked", connections=2), SettingError,
        "connections 2", "idle"),
    api("run-scenario-an-id", lambda d: run_scenario("ipv4-idle-link-down-1/1/3"), TypeError,
        "'ipv4-idle-link-down-1/1/3' is not a netkit.Scenario", "Scenario(KeepaliveSettings(1, 1, 3))"),
    api("run-scenario-settings", lambda d: run_scenario(K), TypeError, "run_scenario()", "is not a netkit.Scenario"),
    api("run-scenario-pcap-is-a-directory", lambda d: run_scenario(Scenario(K), pcap=str(d)), InputError,
        "pcap '{in}'", "is a directory"),
    api("run-scenario-pcap-dir-is-a-file", lambda d: run_scenario(Scenario(K), pcap_dir=str(d / "afile")), InputError,
        "pcap_dir '{in}/afile'", "is not a directory"),
    api("run-many-one-scenario", lambda d: run_many(Scenario(K)), TypeError, "is not a list of netkit.Scenario",
        "run_many([Scenario("),
    api("run-many-an-id", lambda d: run_many("ipv4-idle-link-down-1/1/3"), TypeError,
        "'ipv4-idle-link-down-1/1/3' is not a list"),
    api("run-many-none", lambda d: run_many(None), TypeError, "None is not a list of netkit.Scenario"),
    api("run-many-a-none-in-the-list", lambda d: run_many([Scenario(K), None]), TypeError, "element 1",
        "None is not a netkit.Scenario"),
    api("run-many-pcap-dir-is-a-file", lambda d: run_many([Scenario(K)], pcap_dir=str(d / "afile")), InputError,
        "pcap_dir '{in}/afile'", "is not a directory"),
    api("scenario-pool-pcap-dir-is-a-file", lambda d: ScenarioPool(pcap_dir=str(d / "afile")), InputError,
        "pcap_dir '{in}/afile'"),
]


def routed(**kwargs: object) -> Scenario:
    fields: dict[str, object] = {"fault": "middlebox-forgets", "topology": "routed", "middlebox_timeout_s": 2, **kwargs}
    return Scenario(KeepaliveSettings(3, 1, 2), **fields)  # type: ignore[arg-type]


LIBRARY_ROUTED = [
    api("scenario-routed-timeout-bool", lambda d: routed(middlebox_timeout_s=True), SettingError,
        "middlebox_timeout_s True", "1..432000"),
    api("scenario-routed-timeout-float", lambda d: routed(middlebox_timeout_s=2.5), SettingError,
        "middlebox_timeout_s 2.5", "whole seconds"),
    api("scenario-routed-timeout-too-long", lambda d: routed(middlebox_timeout_s=432001), SettingError,
        "middlebox_timeout_s 432001", "5 days"),
    api("scenario-routed-unknown-middlebox", lambda d: routed(middlebox="forget"), SettingError, "middlebox 'forget'",
        "reject"),
    api("scenario-routed-masquerade-string", lambda d: routed(masquerade="yes"), SettingError, "masquerade 'yes'",
        "True or False"),
    api("scenario-routed-unknown-topology", lambda d: routed(topology="star"), SettingError, "topology 'star'",
        "routed"),
    api("scenario-routed-two-connections", lambda d: routed(connections=2), SettingError, "connections 2", "use 1"),
    api("scenario-reject-without-routed", lambda d: Scenario(K, middlebox="reject"), SettingError,
        "middlebox 'reject'", "routed topology only"),
]


@pytest.mark.parametrize("call, error, says", LIBRARY + LIBRARY_ROUTED)
def test_the_library_refuses_bad_arguments(call: Callable[[Path], object], error: type[BaseException], says: tuple[str, ...],
                                           untouched: Untouched, bad_files: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(untouched.tmpdir))
    with pytest.raises(error) as caught:
        call(bad_files)
    assert not isinstance(caught.value, EnvironmentUnusable), "refused for lack of privileges, not for the input"
    for fragment in says:
        assert fragment.replace("{in}", str(bad_files)) in str(caught.value)
    untouched.check()
