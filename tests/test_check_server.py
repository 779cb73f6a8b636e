"""`netkit check-server` against real programs: a small server of our own, one
that never enables keepalive, and Debian's redis-server configured through its
own redis.conf.  The checks run CPUs + 1 at a time (each in its own lab;
conftest's netkit_runs_at_once); the longest is redis, ~7.5 s.
"""

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import judged_on_the_kernels_clock, netkit_runs_at_once
from test_schemas import assert_valid

from netkit.check.result import NO_KEEPALIVE
from netkit.privileges import missing_privileges

pytestmark = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

OWN_SERVER = str(Path(__file__).with_name("keepalive_server.py"))
REDIS = shutil.which("redis-server")
REDIS_MISSING = "redis-server is not installed: apt-get install redis-server (scripts/provision.sh installs it)"
REDIS_KEEPALIVE = 2  # redis.conf `tcp-keepalive 2`: anetKeepAlive sets idle 2, intvl max(2/3, 1) = 1, cnt 3
PORT = 4242
REDIS_PORT = 6379


def _redis_conf(directory: Path) -> str:
    conf = directory / "redis.conf"
    conf.write_text(
        "bind 198.18.0.1\n"  # the lab's server address only
        f"port {REDIS_PORT}\n"
        "protected-mode no\n"
        f"tcp-keepalive {REDIS_KEEPALIVE}\n"
        "daemonize no\n"
        'logfile ""\n'
        'save ""\n'
        "appendonly no\n"
        f"dir {directory}\n"
    )
    return str(conf)


def _own(bind: str, *options: str) -> list[str]:
    return [sys.executable, OWN_SERVER, "--bind", bind, "--port", str(PORT), *options]


def _checks(tmp: Path) -> dict[str, list[str]]:
    checks = {
        "own-ipv4-match": ["--port", str(PORT), "--expect-s", "4", "--json", "--",
                           *_own("198.18.0.1", "--idle", "1", "--intvl", "1", "--cnt", "3")],
        # 1/1/2 dies 1 + 1 x 2 = 3 s after the answered probe: expecting 2 s is wrong
        "own-ipv6-mismatch": ["--port", str(PORT), "--expect-s", "2", "--ipv6", "--json", "--",
                              *_own("::", "--idle", "1", "--intvl", "1", "--cnt", "2")],
        "own-no-keepalive": ["--port", str(PORT), "--expect-s", "4", "--json", "--", *_own("0.0.0.0", "--no-keepalive")],
        # PostgreSQL's tcp_user_timeout beside its keepalives (gallery, issue 24): 1/1/9 with 2500 ms dies on the
        # first run at or after 2.5 s with a probe out, 3 s after the answered probe, 2 probes: not "cnt 2"
        "own-user-timeout": ["--port", str(PORT), "--expect-s", "3", "--json", "--",
                             *_own("198.18.0.1", "--idle", "1", "--intvl", "1", "--cnt", "9", "--user-timeout", "2500")],
        "own-no-keepalive-user-timeout": ["--port", str(PORT), "--json", "--",
                                          *_own("198.18.0.1", "--no-keepalive", "--user-timeout", "3000")],
        # pgbouncer's default tcp_defer_accept, nginx's `deferred`: a request until the SYN-ACK is retransmitted
        "own-deferred-accept": ["--port", str(PORT), "--expect-s", "4", "--",
                                *_own("198.18.0.1", "--idle", "1", "--intvl", "1", "--cnt", "3", "--defer-accept", "1")],
        "exits-at-once": ["--port", str(PORT), "--",
                          sys.executable, "-c", "import sys; sys.exit('cannot read my config')"],
        "listens-elsewhere": ["--port", str(PORT), "--listen-timeout", "1", "--json", "--", *_own("127.0.0.1")],
    }
    if REDIS:
        checks["redis"] = ["--port", str(REDIS_PORT), "--expect-s", str(REDIS_KEEPALIVE + 3), "--",
                           REDIS, _redis_conf(tmp)]
    return checks


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: finished CompletedProcess-like (returncode, stdout, stderr)}."""
    return netkit_runs_at_once("check-server", _checks(tmp_path_factory.mktemp("check-server")))


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def test_own_server_keepalive_matches_its_settings(runs):
    run = runs["own-ipv4-match"]
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout)  # exactly one JSON object
    assert result["verdict"] == "match" and result["exit_code"] == 0
    assert result["timer_at_connect"]["timer"] == "keepalive"
    assert result["inferred"] == {"idle": 1, "intvl": 1, "cnt": 3}
    assert result["probes"] == 3 and result["counters"]["TCPKeepAlive"] == 3
    assert result["counters"]["TCPAbortOnTimeout"] == 1
    low, high = result["window_s"]
    assert result["dead_between_s"][0] <= high and low <= result["measured_s"]
    assert result["model_expected_s"] == 4.0
    assert not _alive(result["pid"]), "the server program was left running"
    judged_on_the_kernels_clock(result, intvl_jiffies=result["hz"])


def test_wrong_expectation_is_a_mismatch_with_the_evidence(runs):
    run = runs["own-ipv6-mismatch"]
    assert run.returncode == 1, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["family"] == "ipv6" and result["server"] == "[2001:2::1]:4242"
    assert result["verdict"] == "mismatch"
    assert result["inferred"] == {"idle": 1, "intvl": 1, "cnt": 2}
    assert result["model_expected_s"] == 3.0  # what the settings really give
    mlow, mhigh = result["model_window_s"]
    assert mlow <= result["measured_s"] and result["dead_between_s"][0] <= mhigh
    assert result["window_s"][1] < result["dead_between_s"][0]  # later than 2 s + tolerance
    assert [e["what"].split(" (")[0] for e in result["timeline"] if e["what"].startswith("probe")] == [
        "probe 1 sent, unanswered", "probe 2 sent, unanswered"]
    judged_on_the_kernels_clock(result, intvl_jiffies=result["hz"])


def test_server_without_keepalive_is_reported_quickly(runs):
    run = runs["own-no-keepalive"]
    assert run.returncode == 1, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["verdict"] == "no-keepalive" and result["keepalive"] is False
    assert result["timer_at_connect"]["timer"] == "none"
    assert NO_KEEPALIVE in result["problems"][0]
    assert result["measured_s"] is None


def test_a_user_timeout_read_off_the_servers_socket_is_the_rule_not_a_smaller_count(runs):
    run = runs["own-user-timeout"]
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["verdict"] == "match" and result["probes"] == 2, result["problems"]
    if result["options"] is None:  # pidfd_getfd refused here: the count inferred is all netkit can say
        pytest.skip(f"the server's options were not read: {result['options_unread']}")
    assert result["options"]["user_timeout_ms"] == 2500 and result["options"]["cnt"] == 9
    assert result["options_from"]["cnt"] == "socket"
    assert "cnt" not in result["inferred"]  # 2 probes out at the death is the user timeout's doing
    assert result["rule"].startswith("tcp_keepalive_timer with TCP_USER_TIMEOUT 2500 ms"), result["rule"]
    assert result["model_expected_s"] == 3.0 and result["problems"] == []


def test_a_server_without_keepalive_but_with_a_user_timeout_is_told_why_it_still_stays(runs):
    run = runs["own-no-keepalive-user-timeout"]
    assert run.returncode == 1, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["verdict"] == "no-keepalive"
    if result["options"] is not None:
        assert "TCP_USER_TIMEOUT 3000 ms, which ends a connection only while data it sent is unacknowledged" in (
            result["problems"][1])


def test_a_deferred_accept_is_waited_for_not_taken_for_no_keepalive(runs):
    run = runs["own-deferred-accept"]
    assert run.returncode == 0, run.stderr + run.stdout
    assert "accept deferred: the server's socket for it is a request (SYN_RECV)" in run.stdout
    accepted = float(re.search(r"accepted (\d+\.\d+) s after the connect \(the accept was deferred\)", run.stdout)[1])
    assert 0.9 < accepted < 4.0  # the SYN-ACK retransmitted at 1 s (TCP_DEFER_ACCEPT 1 s: one retransmission)
    assert "inferred keepalive: idle=1s intvl=1s cnt=3" in run.stdout and "verdict: MATCH" in run.stdout


@pytest.mark.skipif(REDIS is None, reason=REDIS_MISSING)
def test_redis_tcp_keepalive_from_its_config_file(runs):
    run = runs["redis"]
    assert run.returncode == 0, run.stderr + run.stdout
    out = run.stdout
    assert "listening: 198.18.0.1:6379" in out
    assert "keepalive timer, expires in" in out
    assert f"inferred keepalive: idle={REDIS_KEEPALIVE}s intvl=1s cnt=3" in out
    assert "verdict: MATCH" in out
    assert "server stopped (exit status 0); lab torn down" in out
    assert "timer ledger (evidence: trace" in out or "evidence: observer (" in out


def test_program_that_exits_at_once_is_an_error_with_its_output(runs):
    run = runs["exits-at-once"]
    assert run.returncode == 2
    assert "exited with status 1 before listening" in run.stderr
    assert "cannot read my config" in run.stderr


def test_program_listening_elsewhere_is_an_error_that_says_where(runs):
    run = runs["listens-elsewhere"]
    assert run.returncode == 2
    assert json.loads(run.stdout)["verdict"] == "error"
    assert "listens on 127.0.0.1:4242 only" in run.stderr


def test_every_json_result_meets_the_published_schema(runs):
    for run in runs.values():
        if run.stdout.startswith("{"):
            assert_valid("netkit.check-server/1", json.loads(run.stdout))


def test_nothing_is_left_behind(runs):
    for name, run in runs.items():
        server_pids = re.findall(r"\(pids (\d+)\)", run.stdout)  # human output: the listening line
        if run.stdout.startswith("{"):
            server_pids.append(json.loads(run.stdout).get("pid"))
        for pid in filter(None, server_pids):
            assert not _alive(int(pid)), f"{name}: the server program (pid {pid}) was left running"
