"""`netkit inspect` against real processes, each in a netkit lab namespace (no traffic in the host's):
redis-server with `tcp-keepalive 7` and a connected client, socat with explicit keepalive options and
socat without, a process in a namespace whose keepalive sysctls differ from the host's, the degradation
without CAP_SYS_PTRACE, and bad input.  Every process is ours, stopped by pid; the labs are closed.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_schemas import assert_valid

from netkit.check.program import Program
from netkit.inspect.borrow import refused_here
from netkit.inspect.facts import SYSCTLS
from netkit.keepalive import KeepaliveSettings
from netkit.kernel import kernel_info
from netkit.lab.diag import tcp_sockets
from netkit.lab.features import has_tcp_option
from netkit.lab.lab import Lab
from netkit.model import DataPath, FaultRule, unacked_death
from netkit.model.rto import TCP_RTO_MAX_MS
from netkit.privileges import missing_privileges

pytestmark = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

REDIS = shutil.which("redis-server")
SOCAT = shutil.which("socat")
REDIS_MISSING = "redis-server is not installed: apt-get install redis-server (scripts/provision.sh installs it)"
SOCAT_MISSING = "socat is not installed: apt-get install socat (scripts/provision.sh installs it)"
TARGET = str(Path(__file__).with_name("inspect_target.py"))
REDIS_PORT, SINK_PORT = 6379, 7000
# the namespace of the "container" case: keepalive 30/5/4 and tcp_retries2 5 there, the host keeps its own
CONTAINER_SYSCTLS = {"keepalive_time": 30, "keepalive_intvl": 5, "keepalive_probes": 4, "retries2": 5}
NO_PTRACE = ["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"]
BORROW_REFUSED = refused_here() if missing_privileges() is None else None
needs_borrowing = pytest.mark.skipif(BORROW_REFUSED is not None, reason=f"{BORROW_REFUSED} (the degradation tests "
                                     "cover what inspect says then)")
# ... and another real uid: /proc/PID/fd stays readable (PTRACE_MODE_READ_FSCREDS: fsuid 0, no capability the
# target lacks) but pidfd_getfd is refused (PTRACE_MODE_ATTACH_REALCREDS: real uid 65534 is not the target's) --
# what Yama's ptrace_scope 1 (Ubuntu's default) does to a user inspecting a process it did not start
NO_PTRACE_OTHER_RUID = ["setpriv", "--ruid", "65534", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"]
KEEPALIVE_OPTIONS = ",keepalive,keepidle=11,keepintvl=3,keepcnt=4"


def inspect(*args, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "netkit.cli", "inspect", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def wait_for(condition, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)
    return found


class Targets:
    """The labs and the programs in them; stopped and closed whatever happens."""

    def __init__(self):
        self.labs = []
        self.programs = {}
        self.sockets = []

    def lab(self):
        lab = Lab().__enter__()
        self.labs.append(lab)
        return lab

    def start(self, name, argv, namespace):
        program = Program(argv, namespace)
        self.programs[name] = program
        return program

    def close(self):
        for program in self.programs.values():
            program.stop()
        for sock in self.sockets:
            sock.close()
        for lab in reversed(self.labs):
            lab.close()


def _established(namespace, program, remote_port):
    """The program's connection to ``remote_port`` is up (sock_diag in its namespace)."""
    program.require_running("before its connection was up")
    return [s for s in tcp_sockets(namespace) if s.state == "ESTABLISHED" and s.remote[1] == remote_port]


@pytest.fixture(scope="module")
def targets():
    t = Targets()
    try:
        plain = t.lab()  # namespaces at the kernel's defaults
        if REDIS:
            redis = t.start("redis", [REDIS, "--bind", "198.18.0.1", "--port", str(REDIS_PORT), "--protected-mode", "no",
                                      "--tcp-keepalive", "7", "--save", "", "--appendonly", "no", "--daemonize", "no",
                                      "--logfile", ""], plain.server.namespace)
            redis.wait_listening(plain.server.namespace, "198.18.0.1", REDIS_PORT, 10)
            client = plain.client.socket("ipv4")  # the connected client: ours, in the lab's client namespace
            t.sockets.append(client)
            client.connect(("198.18.0.1", REDIS_PORT))
            client.sendall(b"PING\r\n")
            assert client.recv(100) == b"+PONG\r\n"
        if SOCAT:
            sink = plain.server.socket("ipv4")  # silent server for the socat clients
            t.sockets.append(sink)
            sink.bind(("198.18.0.1", SINK_PORT))
            sink.listen(8)
            for name, options, prefix in (("socat", KEEPALIVE_OPTIONS, []), ("socat-plain", "", []),
                                          ("socat-no-ptrace", KEEPALIVE_OPTIONS, NO_PTRACE)):
                program = t.start(name, [*prefix, SOCAT, "-u", f"TCP:198.18.0.1:{SINK_PORT}{options}", "STDOUT"],
                                  plain.client.namespace)
                wait_for(lambda p=program: _established(plain.client.namespace, p, SINK_PORT), f"{name} connected")
        container = t.lab()
        for field, value in CONTAINER_SYSCTLS.items():
            container.server.sysctl(SYSCTLS[field], value)  # in that namespace only
        target = t.start("container", [sys.executable, TARGET, "--user-timeout", "20000"], container.server.namespace)
        wait_for(lambda: target.require_running("before its pair connected") or
                 len([s for s in tcp_sockets(container.server.namespace) if s.state == "ESTABLISHED"]) == 2,
                 "the target's pair connected")
        if has_tcp_option(TCP_RTO_MAX_MS):  # in a lab of its own: the other labs' tests count their sockets
            own = t.lab().server.namespace
            rto_max = t.start("rto-max", [sys.executable, TARGET, "--rto-max-ms", "5000"], own)
            wait_for(lambda: rto_max.require_running("before its pair connected") or
                     len([s for s in tcp_sockets(own) if s.state == "ESTABLISHED"]) == 2,
                     "the rto-max target's pair connected")
        sleeper = t.start("sleep", ["sleep", "600"], container.client.namespace)
        t.plain, t.container, t.sleeper = plain, container, sleeper
        yield t
    finally:
        t.close()


def in_flight(pid, ut_ms=None, retries2=15):
    """What the model gives for the pid's worst connection with data in flight, with the RTO sock_diag reports
    (HZ-dependent: 204 ms at HZ=250), as the verdict prints it."""
    proc = _one(inspect(pid, "--json"))["processes"][0]
    rto_s = max(s["rto_s"] for s in proc["sockets"] if s["state"] == "ESTABLISHED")
    p = unacked_death(KeepaliveSettings(user_timeout_ms=ut_ms), kernel_info(), FaultRule(DataPath.LOST), "ipv4", rto_s,
                      None if ut_ms else retries2)
    return f"{p.expected_s:g}"


def _one(run):
    assert run.returncode == 0, run.stderr + run.stdout
    doc = json.loads(run.stdout)  # exactly one JSON object
    assert_valid("netkit.inspect/1", doc)
    assert doc["schema"] == "netkit.inspect/1" and doc["exit_code"] == 0
    return doc


def _by_state(process, state):
    return [s for s in process["sockets"] if s["state"] == state]


@pytest.mark.skipif(REDIS is None, reason=REDIS_MISSING)
@needs_borrowing
def test_redis_tcp_keepalive_7(targets):
    pid = targets.programs["redis"].pid
    run = inspect(pid)
    assert run.returncode == 0, run.stderr + run.stdout
    first = run.stdout.splitlines()[0]
    assert first == (f"pid {pid} redis-server: 2 TCP sockets (1 connected, 1 listening); dead peer noticed within 13 s "
                     f"idle (keepalive 7/2/3), {in_flight(pid)} s with data in flight (tcp_retries2 15)"), run.stdout
    assert "read via: getsockopt on fds borrowed with pidfd_getfd" in run.stdout
    proc = _one(inspect(pid, "--json"))["processes"][0]
    assert proc["foreign_namespace"] is True  # the lab's namespace: at the kernel's defaults, like a container's
    assert bool(proc["warnings"]) == (proc["sysctls"] != proc["host_sysctls"])  # a warning only where they differ
    (conn,) = _by_state(proc, "ESTABLISHED")
    assert conn["keepalive"] is True and conn["read_via"] == "getsockopt"
    # Redis sets idle 7, intvl 7/3 = 2, cnt 3 on each accepted socket: all differ from the namespace's 7200/75/9
    assert [conn[k] for k in ("idle", "intvl", "cnt")] == [{"value": v, "source": "socket"} for v in (7, 2, 3)]
    assert conn["user_timeout_ms"] == {"value": None, "source": "not-set"}
    assert conn["idle_death_s"] == 13.0 and conn["flight_by"] == "tcp_retries2 15"
    (listener,) = _by_state(proc, "LISTEN")
    assert listener["keepalive"] is False  # Redis enables keepalive after accept(), not on the listener
    assert listener["idle"] == {"value": 7200, "source": "socket-or-namespace"}


@pytest.mark.skipif(REDIS is None, reason=REDIS_MISSING)
def test_port_finds_the_server_and_its_client_in_any_namespace(targets):
    doc = _one(inspect("--port", REDIS_PORT, "--json"))
    pids = {p["pid"]: p for p in doc["processes"]}
    redis = pids[targets.programs["redis"].pid]
    assert {s["state"] for s in redis["sockets"]} == {"LISTEN", "ESTABLISHED"}
    client = pids[os.getpid()]  # this test process holds the client socket, in the lab's client namespace
    (sock,) = client["sockets"]
    assert sock["remote"] == ["198.18.0.1", REDIS_PORT] and sock["keepalive"] is False
    assert sock["netns"] is not None and sock["netns"] != client["netns"]  # the socket is in the lab, the process not
    assert sock["idle_death"] == "never"


@pytest.mark.skipif(SOCAT is None, reason=SOCAT_MISSING)
@needs_borrowing
def test_socat_with_explicit_keepalive_options(targets):
    pid = targets.programs["socat"].pid
    run = inspect(pid)
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.stdout.splitlines()[0] == (
        f"pid {pid} socat: 1 TCP socket (1 connected); dead peer noticed within 23 s idle (keepalive 11/3/4), "
        f"{in_flight(pid)} s with data in flight (tcp_retries2 15)"), run.stdout
    (sock,) = _one(inspect(pid, "--json"))["processes"][0]["sockets"]
    assert [sock[k]["value"] for k in ("idle", "intvl", "cnt")] == [11, 3, 4]
    assert sock["idle_rule"].endswith("11 + 3 x 4 = 23 s after the last segment received")


@pytest.mark.skipif(SOCAT is None, reason=SOCAT_MISSING)
@needs_borrowing
def test_process_without_keepalive_is_never_noticed_while_idle(targets):
    pid = targets.programs["socat-plain"].pid
    run = inspect(pid)
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.stdout.splitlines()[0] == (
        f"pid {pid} socat: 1 TCP socket (1 connected); dead peer never noticed while idle (no SO_KEEPALIVE), "
        f"{in_flight(pid)} s with data in flight (tcp_retries2 15)"), run.stdout
    (sock,) = _one(inspect(pid, "--json"))["processes"][0]["sockets"]
    assert sock["keepalive"] is False and sock["idle_death"] == "never" and sock["idle_death_s"] is None


@needs_borrowing
def test_namespace_sysctls_not_the_hosts(targets):
    """The container pitfall: values not set on the socket come from its own namespace, and netkit says so."""
    pid = targets.programs["container"].pid
    run = inspect(pid)
    assert run.returncode == 0, run.stderr + run.stdout
    lines = run.stdout.splitlines()
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    # worst over its connections: idle, the one without TCP_USER_TIMEOUT (30 + 5 x 4); in flight, UT 20 s after 2 x rto
    assert lines[0] == (f"pid {pid} {comm}: 3 TCP sockets (2 connected, 1 listening); dead peer noticed within 50 s "
                        f"idle (keepalive 30/5/4), {in_flight(pid, 20000)} s with data in flight "
                        "(TCP_USER_TIMEOUT 20000 ms)"), run.stdout
    assert "its sysctls: keepalive 30/5/4, tcp_retries2 5" in run.stdout
    warning = next(line for line in lines if line.startswith("  warning: "))
    host = json.loads(inspect(pid, "--json").stdout)["processes"][0]["host_sysctls"]
    assert f"net.ipv4.tcp_keepalive_time 30 (host {host['keepalive_time']})" in warning
    assert "gets its namespace's, not the host's" in warning
    proc = _one(inspect(pid, "--json"))["processes"][0]
    assert {k: proc["sysctls"][k] for k in CONTAINER_SYSCTLS} == CONTAINER_SYSCTLS and proc["foreign_namespace"] is True
    conns = _by_state(proc, "ESTABLISHED")
    assert all(s["keepalive"] and s["idle"] == {"value": 30, "source": "socket-or-namespace"} for s in conns)
    with_ut = next(s for s in conns if s["user_timeout_ms"]["value"])
    assert with_ut["user_timeout_ms"] == {"value": 20000, "source": "socket"}
    assert with_ut["flight_by"] == "TCP_USER_TIMEOUT 20000 ms" and with_ut["flight_death_s"] == pytest.approx(20.4, abs=0.1)
    assert with_ut["idle_death_s"] == 35.0  # UT 20 s: the first run at or after it with a probe out, 30 + 5
    plain = next(s for s in conns if not s["user_timeout_ms"]["value"])
    assert plain["idle_death_s"] == 50.0 and plain["flight_by"] == "tcp_retries2 5"


@needs_borrowing
@pytest.mark.skipif(not has_tcp_option(TCP_RTO_MAX_MS), reason="this kernel has no TCP_RTO_MAX_MS (Linux 6.15+): "
                    "its maximum RTO is the constant 120 s")
def test_a_socket_maximum_rto_of_5_s_shortens_the_data_in_flight_deadline(targets):
    """TCP_RTO_MAX_MS 5000 with tcp_retries2 15: tcp_model_timeout is 6.2 + 11 x 5 = 61.2 s, not 924.6 s."""
    pid = targets.programs["rto-max"].pid
    proc = _one(inspect(pid, "--json"))["processes"][0]
    conns = _by_state(proc, "ESTABLISHED")
    assert len(conns) == 2 and all(s["rto_max_ms"] == {"value": 5000, "source": "socket"} for s in conns)
    rto_s = max(s["rto_s"] for s in conns)
    expected = unacked_death(KeepaliveSettings(), kernel_info(), FaultRule(DataPath.LOST), "ipv4", rto_s, 15, 5000)
    assert all(s["flight_by"] == "tcp_retries2 15, max RTO 5000 ms" for s in conns)
    assert max(s["flight_death_s"] for s in conns) == expected.expected_s
    assert 61.2 < expected.expected_s < 61.2 + 2 * 5.5  # the deadline, then at most one capped RTO run after it
    assert "(15 - 4) x 5 s = 61.2 s" in conns[0]["flight_rule"]
    run = inspect(pid)
    assert f"{expected.expected_s:g} s with data in flight (tcp_retries2 15, max RTO 5000 ms)" in run.stdout.splitlines()[0]


@pytest.mark.skipif(REDIS is None, reason=REDIS_MISSING)
def test_without_cap_sys_ptrace_it_degrades_to_the_kernels_socket_table(targets):
    pid = targets.programs["redis"].pid
    run = inspect(pid, prefix=NO_PTRACE)
    assert run.returncode == 0, run.stderr + run.stdout
    first = run.stdout.splitlines()[0]
    # its fds are hidden too, so the sockets are uid 0's in its namespace: Redis's two and this test's sink listener
    assert first.startswith(f"pid {pid} redis-server: 3 TCP sockets (1 connected, 2 listening); keepalive on"), first
    assert "which may include other processes' sockets" in run.stdout
    assert first.endswith("socket options unreadable without CAP_SYS_PTRACE (sock_diag's timers only)")
    assert "run netkit inspect as root with CAP_SYS_PTRACE" in run.stdout
    proc = _one(inspect(pid, "--json", prefix=NO_PTRACE))["processes"][0]
    (conn,) = _by_state(proc, "ESTABLISHED")
    assert conn["local"] == ["198.18.0.1", REDIS_PORT] and conn["fd"] is None
    assert conn["keepalive"] is True and conn["read_via"] == "sock_diag" and conn["idle"]["source"] == "unknown"
    assert conn["timer"].startswith("keepalive timer, expires in")


@pytest.mark.skipif(SOCAT is None, reason=SOCAT_MISSING)
def test_fds_readable_but_not_borrowable_falls_back_to_sock_diag(targets):
    """Its own sockets, sock_diag in its namespace and that namespace's sysctls; the options themselves unknown."""
    pid = targets.programs["socat-no-ptrace"].pid
    run = inspect(pid, prefix=NO_PTRACE_OTHER_RUID)
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.stdout.splitlines()[0] == (
        f"pid {pid} socat: 1 TCP socket (1 connected); keepalive on, time to notice a dead peer while idle unknown, "
        f"{in_flight(pid)} s with data in flight (tcp_retries2 15, unless TCP_USER_TIMEOUT); socket options "
        "unreadable without CAP_SYS_PTRACE (sock_diag's timers only)"), run.stdout
    assert "run netkit inspect as root with CAP_SYS_PTRACE" in run.stdout
    proc = _one(inspect(pid, "--json", prefix=NO_PTRACE_OTHER_RUID))["processes"][0]
    assert proc["table"] == "sock_diag" and proc["attributed"] and proc["sysctls"]["keepalive_time"] == 7200
    (sock,) = proc["sockets"]
    assert sock["fd"] is not None and sock["keepalive"] is True and sock["idle"]["source"] == "unknown"
    # sock_diag's timer: expiry + time since the last segment: idle 11 s, or intvl 3 s once a probe was answered
    assert re.search(r"\(period (11|3) s: idle, or intvl after an answered probe\)", sock["timer"]), sock["timer"]
    assert re.search(r"the timer's period, (11|3) s, is neither the namespace's idle \(7200 s\) nor its intvl \(75 s\): "
                     "the socket sets its own values", sock["idle_rule"]), sock["idle_rule"]


@pytest.mark.parametrize("args, message", [
    (["999999999"], "no process with pid 999999999"),
    (["--port", "1"], "no process has a TCP socket on port 1"),
    ([], "give a PID or --port PORT"),
    (["--port", "70000"], "invalid port 70000"),
])
def test_bad_input_exits_2_with_a_clear_message(args, message):
    run = inspect(*args)
    assert run.returncode == 2 and message in run.stderr and not run.stdout, run.stderr


def test_pid_without_tcp_sockets_exits_2(targets):
    run = inspect(targets.sleeper.pid)
    assert run.returncode == 2
    assert f"pid {targets.sleeper.pid} (sleep) has no TCP sockets" in run.stderr


def test_teardown_stops_every_program_by_pid():
    """The fixture's teardown, run on its own: each program stopped by its pid, the lab's namespaces closed."""
    t = Targets()
    lab = t.lab()
    program = t.start("sleep", ["sleep", "600"], lab.server.namespace)
    t.close()
    assert program.proc.poll() is not None and not os.path.exists(f"/proc/{program.pid}")
    assert lab.server.namespace.fd == -1 and lab.client.namespace.fd == -1
