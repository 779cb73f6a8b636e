"""`netkit check-client` against real clients from Debian's packages: psql (libpq's keepalives_* and
tcp_user_timeout), socat's keepalive options, curl --keepalive-time (and --keepalive-cnt, where curl has it),
a client with no keepalive, and clients that give up by themselves.  The checks run CPUs + 1 at a time (each in
its own lab; conftest's netkit_runs_at_once), about 20 s on two CPUs; the longest is curl, whose count is 9 (~11 s).

Each death is asserted against netkit's keepalive model for the settings the client really set (read
off its socket), which the report must also have inferred from the kernel's timers.  Where a seccomp
filter refuses pidfd_getfd (systemd-nspawn), the options cannot be read: the tests then assert the
inferred settings instead, which is what check-client falls back to.  Bad input (a command that does
not exist, never connects, exits at once, connects elsewhere) is in test_bad_input.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import judged_on_the_kernels_clock, netkit_runs_at_once, tracing_here
from test_schemas import assert_valid

from netkit.check.result import NO_KEEPALIVE_CLIENT
from netkit.inspect.borrow import refused_here
from netkit.lab.features import has_tcp_option
from netkit.model.rto import DEFAULT_RTO_MAX_MS, TCP_RTO_MAX_MS
from netkit.privileges import missing_privileges

pytestmark = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

BORROW_REFUSED = refused_here() if missing_privileges() is None else None
KERNELS_RTO_MAX_MS = DEFAULT_RTO_MAX_MS if has_tcp_option(TCP_RTO_MAX_MS) else None  # None: before 6.15, no option
MISSING = {tool: f"{tool} is not installed: scripts/provision.sh installs it" for tool in ("psql", "socat", "curl")
           if shutil.which(tool) is None}
# libcurl 8.9.0 added CURLOPT_TCP_KEEPCNT (curl --keepalive-cnt), default 9: from then on curl sets TCP_KEEPCNT on
# its socket itself, where earlier curl (Debian 12's 7.88) set idle and interval only and left the count to the
# namespace.  curl's version says which; the test asserts that netkit's own proof (the sysctl flip) agrees.
CURL_KEEPCNT_SINCE = (8, 9, 0)


def curl_version() -> tuple[int, ...] | None:
    """The version of the curl on PATH (``curl --version``'s first line), or None without curl."""
    if "curl" in MISSING:
        return None
    first = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    return tuple(int(part) for part in first.split("-")[0].split(".")[:3])


CURL_VERSION = curl_version()
CURL_SETS_KEEPCNT = CURL_VERSION is not None and CURL_VERSION >= CURL_KEEPCNT_SINCE
PSQL = ["psql", "host={host} port={port} user=nk dbname=nk "
                "keepalives_idle=1 keepalives_interval=1 keepalives_count=3", "-c", "select 1"]
PSQL_UT = ["psql", "host={host} port={port} user=nk dbname=nk "
                   "keepalives_idle=1 keepalives_interval=1 keepalives_count=5 tcp_user_timeout=2500", "-c", "select 1"]

CHECKS = {  # name: (the tool it needs, check-client's arguments)
    "psql": ("psql", ["--expect-s", "4", "--json", "--", *PSQL]),
    "psql-user-timeout": ("psql", ["--json", "--", *PSQL_UT]),
    "socat-ipv6-blackhole": ("socat", ["--ipv6", "--fault", "blackhole", "--json", "--", "socat", "-u",
                                       "TCP6:[{host}]:{port},keepalive,keepidle=2,keepintvl=1,keepcnt=2", "-"]),
    "curl": ("curl", ["--expect-s", "10", "--", "curl", "-sS", "--keepalive-time", "1", "http://{host}:{port}/"]),
    "curl-keepalive-cnt": ("curl", ["--expect-s", "3", "--", "curl", "-sS", "--keepalive-time", "1",
                                    "--keepalive-cnt", "2", "http://{host}:{port}/"]),
    "no-keepalive": ("socat", ["--max-wait", "3", "--json", "--", "socat", "-u", "TCP:{host}:{port}", "-"]),
    "gives-up-and-exits": ("curl", ["--json", "--", "curl", "-sS", "--no-keepalive", "--max-time", "2",
                                    "http://{host}:{port}/"]),
    "closes-and-stays": ("bash", ["--json", "--", "bash", "-c",
                                  "exec 3<>/dev/tcp/{host}/{port}; sleep 1.5; exec 3<&-; sleep 30"]),
    "sends-after-the-break": ("python3", ["--json", "--", "python3", "-c",
                                          "import socket, time; s = socket.create_connection(('{host}', {port})); "
                                          "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1500); "
                                          "time.sleep(1); s.send(b'ping'); time.sleep(30)"]),
    "middlebox-survives": ("socat", ["--middlebox-timeout", "3", "--max-wait", "6", "--json", "--", "socat", "-u",
                                     "TCP:{host}:{port},keepalive,keepidle=1,keepintvl=1,keepcnt=3", "-"]),
    "middlebox-forgets": ("socat", ["--middlebox-timeout", "2", "--json", "--", "socat", "-u",
                                    "TCP:{host}:{port},keepalive,keepidle=3,keepintvl=1,keepcnt=2", "-"]),
    "peer-reboot": ("socat", ["--fault", "peer-reboot", "--json", "--", "socat", "-u",
                              "TCP:{host}:{port},keepalive,keepidle=2,keepintvl=1,keepcnt=3", "-"]),
}


UNSUPPORTED = {} if CURL_SETS_KEEPCNT or CURL_VERSION is None else {
    "curl-keepalive-cnt": f"curl {'.'.join(map(str, CURL_VERSION))} has no --keepalive-cnt (since curl "
                          f"{'.'.join(map(str, CURL_KEEPCNT_SINCE))})"}


@pytest.fixture(scope="module")
def runs():
    """{name: finished CompletedProcess}; checks whose tool is missing are not run."""
    return netkit_runs_at_once("check-client", {name: args for name, (tool, args) in CHECKS.items()
                                                if tool not in MISSING and name not in UNSUPPORTED})


def result_of(runs, name, exit_code=0):
    tool = CHECKS[name][0]
    if tool in MISSING:
        pytest.skip(MISSING[tool])
    run = runs[name]
    assert run.returncode == exit_code, run.stderr + run.stdout
    result = json.loads(run.stdout)  # exactly one JSON object
    assert_valid("netkit.check-client/1", result)
    return result


def in_model_window(result):
    """The death bracket overlaps netkit's window for the settings, and is never before it."""
    low, high = result["model_window_s"]
    first, last = result["dead_between_s"]
    assert last >= low, f"died early: {result['dead_between_s']} before {result['model_window_s']}"
    assert first <= high, f"died late: {result['dead_between_s']} after {result['model_window_s']}"


def options_or_inferred(result, idle, intvl, cnt, user_timeout_ms=0):
    """The settings read off the socket, or (pidfd_getfd refused) only inferred; inferred must agree either way."""
    if BORROW_REFUSED:
        assert result["options"] is None and "pidfd_getfd was refused" in result["options_unread"]
    else:
        assert result["options"] == {"keepalive": True, "idle": idle, "intvl": intvl, "cnt": cnt,
                                     "user_timeout_ms": user_timeout_ms, "rto_max_ms": KERNELS_RTO_MAX_MS}
    assert result["inferred"]["idle"] == idle and result["inferred"]["intvl"] == intvl


def test_psql_keepalives_match_libpqs_settings(runs):
    result = result_of(runs, "psql")
    assert result["verdict"] == "match" and result["cause"] == "keepalive"
    options_or_inferred(result, 1, 1, 3)
    assert result["inferred"]["cnt"] == 3 and result["probes"] == 3
    if not BORROW_REFUSED:  # libpq set all three on the socket: proved by moving the sysctls
        assert result["options_from"] == {"idle": "socket", "intvl": "socket", "cnt": "socket"}
    assert result["counters"]["TCPKeepAlive"] == 3 and result["counters"]["TCPAbortOnTimeout"] == 1
    assert result["model_expected_s"] == 4.0
    in_model_window(result)
    assert result["program_exited_s"] >= result["dead_between_s"][0]  # psql exits once it hears of the death
    judged_on_the_kernels_clock(result, intvl_jiffies=result["hz"])
    assert "Connection timed out" in result["program_output_tail"]


def test_psql_tcp_user_timeout_ends_the_keepalive_early(runs):
    result = result_of(runs, "psql-user-timeout")
    if BORROW_REFUSED:  # TCP_USER_TIMEOUT is not visible in the kernel's timers: keepalive with 2 probes
        assert result["cause"] == "keepalive" and result["inferred"]["cnt"] == 2
    else:
        # 1/1/5 with 2500 ms: death on the first run at or after 2.5 s with a probe out: 3 s, 2 probes, not 6 s
        assert result["cause"] == "user-timeout"
        options_or_inferred(result, 1, 1, 5, user_timeout_ms=2500)
        assert "TCP_USER_TIMEOUT 2500 ms" in result["rule"]
    assert result["probes"] == 2 and result["model_expected_s"] == 3.0
    in_model_window(result)
    judged_on_the_kernels_clock(result, intvl_jiffies=result["hz"])


def test_socat_keepalive_options_over_ipv6_through_a_blackhole(runs):
    result = result_of(runs, "socat-ipv6-blackhole")
    assert result["family"] == "ipv6" and result["server"].startswith("[2001:2::1]:")
    assert result["fault"] == "blackhole" and result["cause"] == "keepalive"
    options_or_inferred(result, 2, 1, 2)
    assert result["model_expected_s"] == 4.0  # 2 + 1 x 2
    in_model_window(result)
    probes = [e for e in result["timeline"] if e["what"].startswith("probe ")]
    assert [p["what"].split(",")[0] for p in probes] == ["probe 1 sent", "probe 2 sent"]
    # socat sends nothing and is sent nothing after its handshake: no segment names its socket (tcp:tcp_probe), so
    # the death is sock_diag's bracket, and the result says why
    assert result["evidence"] == "observer" and ("tcp:tcp_probe" in result["evidence_note"] or not tracing_here())


def test_curl_keepalive_time_takes_its_count_from_where_its_version_says(runs):
    if "curl" in MISSING:
        pytest.skip(MISSING["curl"])
    run = runs["curl"]
    assert run.returncode == 0, run.stderr + run.stdout
    verdict, *rest = run.stdout.splitlines()
    assert verdict.startswith("verdict: MATCH - the client noticed the dead server 10.")
    assert "9 unanswered probes" in verdict
    # 9 either way: curl's own default (CURL_KEEPCNT_SINCE and later), or the new namespace's
    # net.ipv4.tcp_keepalive_probes; only the sysctl flip tells which, and it must agree with curl's version
    if BORROW_REFUSED:  # the options unread: the count inferred, equal to the namespace's, its source unproved
        assert "cnt 9 = the client namespace's net.ipv4.tcp_keepalive_probes" in verdict
    elif CURL_SETS_KEEPCNT:
        assert "cnt 9;" in verdict and "cnt 9 from" not in verdict
        assert "TCP_KEEPCNT 9 (set on the socket)" in run.stdout
    else:
        assert "cnt 9 from the client namespace's net.ipv4.tcp_keepalive_probes" in verdict
        assert "TCP_KEEPCNT 9 (inherited from net.ipv4.tcp_keepalive_probes)" in run.stdout
    if not BORROW_REFUSED:
        assert "TCP_KEEPIDLE 1 s (set on the socket)" in run.stdout
    assert "curl: (56) Recv failure: Connection timed out" in run.stdout


def test_curl_keepalive_cnt_sets_the_count_on_the_socket(runs):
    if "curl" in MISSING or "curl-keepalive-cnt" in UNSUPPORTED:
        pytest.skip(MISSING.get("curl") or UNSUPPORTED["curl-keepalive-cnt"])
    run = runs["curl-keepalive-cnt"]
    assert run.returncode == 0, run.stderr + run.stdout
    verdict = run.stdout.splitlines()[0]
    assert verdict.startswith("verdict: MATCH - the client noticed the dead server 3.")
    assert "2 unanswered probes" in verdict and "cnt 2" in verdict
    if not BORROW_REFUSED:
        assert "TCP_KEEPCNT 2 (set on the socket)" in run.stdout


def test_client_without_keepalive_would_wait_forever(runs):
    result = result_of(runs, "no-keepalive", exit_code=1)
    assert result["verdict"] == "no-keepalive" and result["cause"] == "none" and result["keepalive"] is False
    assert result["problems"][0].startswith(NO_KEEPALIVE_CLIENT)
    assert result["timer_at_break"]["timer"] == "none" and result["measured_s"] is None
    if not BORROW_REFUSED:
        assert result["options"]["keepalive"] is False
    assert result["program_exited_s"] is None  # still waiting when netkit stopped it


def test_client_that_gives_up_and_exits_is_an_application_timeout(runs):
    result = result_of(runs, "gives-up-and-exits")
    assert result["cause"] == "application-exit" and result["program_exit"] == 28  # curl: operation timed out
    assert result["keepalive"] is False and result["probes"] is None
    assert result["measured_s"] == result["program_exited_s"]  # the pidfd timed the exit
    # curl's --max-time 2 is curl's own clock (from its start, a few ms before the connect; checked by its poll
    # loop), not a kernel rule: about 2 s
    assert 1.5 < result["measured_s"] < 2.5


def test_client_that_closes_its_socket_and_stays_is_an_application_timeout(runs):
    result = result_of(runs, "closes-and-stays")
    assert result["cause"] == "application-fin" and result["state_after"] == "FIN_WAIT1"
    assert result["program_exited_s"] is None  # it kept running until netkit stopped it
    assert 1.4 < result["measured_s"] < 1.8  # `sleep 1.5` after the connect, then the close


def test_data_sent_into_the_broken_path_dies_by_the_retransmission_timeout(runs):
    result = result_of(runs, "sends-after-the-break")
    assert result["cause"] == "retransmission" and result["retransmissions"] >= 1
    assert result["counters"]["TCPAbortOnTimeout"] == 1 and result["counters"]["TCPKeepAlive"] == 0
    if not BORROW_REFUSED:
        assert result["options"]["user_timeout_ms"] == 1500 and result["options"]["keepalive"] is False
    # sent 1 s after the connect (the client's own sleep), then the user timeout: about 2.5 s after t = 0
    assert 2.4 < result["measured_s"] < 2.8


def test_peer_reboot_resets_the_client_at_its_first_probe(runs):
    result = result_of(runs, "peer-reboot")
    assert result["cause"] == "peer-reset" and result["fault"] == "peer-reboot"
    assert result["counters"]["TCPAbortOnTimeout"] == 0
    assert "RST" in result["rule"] and result["model_expected_s"] == 2.0
    in_model_window(result)


def test_a_keepalive_shorter_than_the_middleboxs_timeout_keeps_the_flow(runs):
    # Behind a router that forgets flows idle 3 s (conntrack), probes every 1 s are answered and refresh its entry.
    result = result_of(runs, "middlebox-survives")
    assert result["verdict"] == "survived" and result["cause"] == "none" and result["fault"] == "middlebox-forgets"
    assert result["middlebox_timeout_s"] == 3 and result["client"].startswith("198.18.1.2:")  # the routed lab
    assert result["counters"]["TCPKeepAlive"] >= 4 and not result["counters"]["TCPAbortOnTimeout"]
    assert result["dead_between_s"] is None and not result["problems"]


def test_a_keepalive_longer_than_the_middleboxs_timeout_finds_the_flow_forgotten(runs):
    # The router forgot the flow at 2 s; the first probe at 3 s is dropped as invalid, and so is the next: 3 + 1 x 2.
    result = result_of(runs, "middlebox-forgets")
    assert result["verdict"] == "measured" and result["cause"] == "keepalive" and result["probes"] == 2
    assert result["model_expected_s"] == 5.0
    in_model_window(result)
    assert [e["t_s"] for e in result["timeline"] if "router forgets" in e["what"]] == [2.0]


@pytest.mark.parametrize("args, said", [
    (["--middlebox-timeout", "0"], "at least 1"),
    (["--middlebox-timeout", "3", "--fault", "blackhole"], "drop --fault"),
])
def test_a_middlebox_check_refuses_what_makes_no_sense(args, said):
    done = subprocess.run([sys.executable, "-m", "netkit.cli", "check-client", *args, "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and said in done.stderr and not done.stdout


def test_no_client_process_is_left_running(runs):
    for name, run in runs.items():
        if run.stdout.startswith("{"):
            pid = json.loads(run.stdout)["pid"]
            assert not os.path.exists(f"/proc/{pid}"), f"{name}: the client (pid {pid}) was left running"
