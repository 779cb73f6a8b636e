"""The netkit command: demo, doctor, cleanup, and their exit codes."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys

import pytest
from conftest import process_group, wait_for
from test_result import WINDOWS_1_1_3
from test_schemas import assert_valid

from netkit import privileges
from netkit.cleanup import cleanup, kept_namespaces
from netkit.cli import build_parser
from netkit.exitcodes import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_RUN_HERE,
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
)
from netkit.lab.namespaces import Namespace, remove_named
from netkit.privileges import missing_privileges

needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))


def netkit(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "netkit.cli", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.parametrize(
    "option, value, names",
    [("--cnt", "0", ("cnt", "1..127")), ("--cnt", "128", ("cnt", "1..127")), ("--idle", "32768", ("idle", "1..32767")),
     ("--intvl", "0", ("intvl", "1..32767"))],
)
def test_demo_refuses_out_of_range_values_with_exit_2(option, value, names):
    done = netkit("demo", option, value)
    assert done.returncode == EXIT_BAD_INPUT == 2
    assert done.stdout == ""
    for word in names:
        assert word in done.stderr
    assert option in done.stderr


@needs_root
def test_demo_json_reports_one_verdict_object():
    done = netkit("demo", "--idle", "1", "--intvl", "1", "--cnt", "3", "--json", timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout)  # exactly one JSON object, nothing else on stdout
    assert_valid("netkit.scenario-result/3", result)
    assert result["kernel"] == os.uname().release
    assert result["family"] == "ipv4" and result["fault"] == "link-down"
    assert result["keepalive"] == {"idle": 1, "intvl": 1, "cnt": 3}
    assert result["expected_s"] == 4.0
    assert result["window_s"] == pytest.approx(WINDOWS_1_1_3[result["hz"]])  # the model, for this kernel's HZ
    low, high = result["window_s"]
    assert low <= result["measured_s"] <= high
    assert result["error"] == "ETIMEDOUT" and result["probes"] == 3 and result["verdict"] == "pass"


@needs_root
@pytest.mark.parametrize(("sig", "status", "says"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_demo_interrupted_exits_130_or_143_and_leaves_nothing(sig, status, says):
    proc = subprocess.Popen([sys.executable, "-m", "netkit.cli", "demo", "--cnt", "3", "--fault", "blackhole"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    while not proc.stdout.readline().startswith("expect death"):  # the lab is up, the probes about to start
        assert proc.poll() is None, proc.stderr.read()
    wait_for(lambda: holds_a_lab_namespace(proc.pid), what="the demo to hold its lab's namespaces")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == status, err
    assert says in err
    # Its namespaces are held by fds and die with it; what could outlive it is a process it started
    # (a fault's helper, a capture) -- and such a process would keep the lab alive.  None may remain.
    wait_for(lambda: process_group(proc.pid) == [], what="every process of the interrupted demo to end")


@needs_root
def test_sigusr1_prints_where_every_thread_waits_and_the_run_goes_on():
    proc = subprocess.Popen([sys.executable, "-m", "netkit.cli", "demo", "--idle", "30", "--cnt", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    while not proc.stdout.readline().startswith("expect death"):
        assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGUSR1)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)  # still waiting for its probe: the stacks did not stop it
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "Current thread" in err and "in run_scenario" in err and "interrupted" in err, err


def holds_a_lab_namespace(pid):
    """``pid`` has an fd open on a network namespace other than ours (netkit holds its labs by fd)."""
    ours = os.readlink("/proc/self/ns/net")
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("net:[") and target != ours:
            return True
    return False


def test_demo_without_privileges_exits_4_cannot_run_here_saying_how_to_run_it(without_privileges, assert_no_leftovers):
    done = subprocess.run([*without_privileges.prefix, sys.executable, "-m", "netkit.cli", "demo", "--cnt", "3"],
                          capture_output=True, text=True)
    assert done.returncode == EXIT_CANNOT_RUN_HERE == 4, done.stderr
    assert without_privileges.says in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_leftovers()


def test_doctor_without_privileges_exits_4_cannot_run_here_and_says_why(without_privileges):
    done = subprocess.run([*without_privileges.prefix, sys.executable, "-m", "netkit.cli", "doctor"],
                          capture_output=True, text=True)
    assert done.returncode == EXIT_CANNOT_RUN_HERE, done.stdout + done.stderr
    assert "MISSING root" in done.stdout and without_privileges.says in done.stdout
    assert "netkit cannot run here" in done.stdout


@needs_root
def test_doctor_reports_each_feature():
    done = netkit("doctor", "--json")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert report["usable"] is True
    for name in ("kernel", "root", "network namespaces", "veth", "nftables", "iptables", "sch_netem", "tracefs",
                 "tracefs events"):
        assert name in names
    assert names["kernel"]["detail"].startswith(os.uname().release)


@needs_root
def test_cleanup_removes_only_namespaces_of_dead_netkit_processes():
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now belongs to no process
    names = {
        "dead": f"nk-{dead.pid}-c0ffee-server",
        "alive": f"nk-{os.getpid()}-c0ffee-server",
        "foreign": "nkforeign-test",
    }
    for name in names.values():
        ns = Namespace.create(name)
        ns.keep()
        ns.close()
    # an interface named like netkit's, in the namespace netkit did not create: it must stay too
    foreign_veth = ["ip", "-n", names["foreign"], "link", "add", "nk-c0ffee-s", "type", "veth", "peer", "name", "nk-c0ffee-c"]
    subprocess.run(foreign_veth, check=True)
    try:
        done = netkit("cleanup")
        assert done.returncode == 0, done.stderr
        left = kept_namespaces()
        assert names["dead"] not in left
        assert names["alive"] in left and names["foreign"] in left
        assert f"removed namespace {names['dead']}" in done.stdout
        links = subprocess.run(["ip", "-n", names["foreign"], "-o", "link"], capture_output=True, text=True).stdout
        assert "nk-c0ffee-s" in links and "nk-c0ffee-c" in links
    finally:
        for name in names.values():
            remove_named(name)


@needs_root
def test_cleanup_dry_run_changes_nothing():
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"nk-{dead.pid}-d1d1d1-client"
    ns = Namespace.create(name)
    ns.keep()
    ns.close()
    try:
        report = cleanup(dry_run=True)
        assert name in report.removed
        assert name in kept_namespaces()
    finally:
        remove_named(name)


@pytest.fixture
def as_a_normal_user(monkeypatch):
    monkeypatch.setattr(privileges, "effective_capabilities", lambda: 0)
    monkeypatch.setattr(privileges.os, "geteuid", lambda: 1000)


def started_as(monkeypatch, argv, orig_argv):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig_argv)


@pytest.mark.parametrize("sudo", ["/usr/bin/sudo", None], ids=["with-sudo", "without-sudo"])
def test_the_unprivileged_message_names_the_command_the_user_ran(monkeypatch, tmp_path, as_a_normal_user, sudo):
    program = tmp_path / "venv" / "bin" / "netkit"
    program.parent.mkdir(parents=True)
    program.touch()
    monkeypatch.chdir(program.parent)
    started_as(monkeypatch, ["netkit", "demo", "--cnt", "3"], ["/venv/python", "netkit", "demo", "--cnt", "3"])
    monkeypatch.setattr(privileges.shutil, "which", lambda name: sudo if name == "sudo" else None)
    message = privileges.missing_privileges()
    command = f"{program} demo --cnt 3"  # absolute: it works from any directory
    if sudo:
        assert message.endswith(f"run it as root: `sudo {command}`")
    else:
        assert f"sudo is not installed: log in as root, or `su -c '{command}'`" in message


def test_the_unprivileged_message_for_a_module_and_a_script(monkeypatch, tmp_path, as_a_normal_user):
    monkeypatch.setattr(privileges.shutil, "which", lambda name: "/usr/bin/sudo")
    started_as(monkeypatch, ["/site/pytest/__main__.py", "-q"], ["python3", "-m", "pytest", "-q"])
    assert f"`sudo {sys.executable} -m pytest -q`" in privileges.missing_privileges()
    script = tmp_path / "example.py"
    script.touch()
    monkeypatch.chdir(tmp_path)
    started_as(monkeypatch, ["example.py"], ["python3", "example.py"])
    assert f"`sudo {sys.executable} {script}`" in privileges.missing_privileges()


def test_cleanup_says_what_it_needs_the_privileges_for(monkeypatch, as_a_normal_user):
    message = privileges.missing_privileges("to remove the network namespaces netkit kept under /run/netns")
    assert "to remove the network namespaces" in message and "create" not in message


def _subcommands(parser, path=("netkit",)):
    """(the command's words, its parser) for netkit and every subcommand, nested ones (gate diff) too."""
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _subcommands(child, (*path, name))


SUBCOMMANDS = dict(_subcommands(build_parser()))


def test_every_subcommand_is_walked():
    assert {"netkit demo", "netkit doctor", "netkit cleanup", "netkit check-server", "netkit check-client",
            "netkit inspect", "netkit gate", "netkit gate diff", "netkit gate merge", "netkit kernels",
            "netkit kernels get", "netkit gallery"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_help_has_a_description_and_an_example(command):
    parser = SUBCOMMANDS[command]
    text = parser.format_help()
    assert parser.description and parser.description.strip(), f"{command} --help has no description"
    assert re.search(r"^examples?:\n  netkit ", text, re.M), f"{command} --help shows no example:\n{text}"


@pytest.mark.parametrize("command", ["demo", "doctor", "cleanup", "check-server", "check-client", "inspect",
                                     "gate diff", "kernels list"])
def test_json_is_a_flag_that_prints_to_stdout(command):
    """--json is one meaning everywhere (one JSON object on stdout) but in the gate and the gallery, which write files."""
    parser = SUBCOMMANDS[f"netkit {command}"]
    (option,) = [a for a in parser._actions if "--json" in a.option_strings]
    assert option.nargs == 0, f"netkit {command} --json takes a value"


@pytest.mark.parametrize("command", ["gate", "gate merge", "gallery"])
def test_the_reports_that_write_files_say_so_and_take_dash_for_stdout(command):
    parser = SUBCOMMANDS[f"netkit {command}"]
    (option,) = [a for a in parser._actions if "--json" in a.option_strings]
    assert option.metavar == "FILE" and "'-': stdout" in option.help


def test_the_gate_help_says_why_its_json_is_a_file_and_where_kselftest_differs():
    text = " ".join(SUBCOMMANDS["netkit gate"].format_help().split())
    assert "unlike other commands' --json flag: the gate writes several reports at once" in text
    assert "0, 1 and 4 are kselftest's PASS, FAIL and SKIP; 2 and 3 are not its XFAIL and XPASS" in text


def test_exit_codes_one_meaning_each():
    assert (EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_CANNOT_RUN_HERE) == (0, 1, 2, 3, 4)


def test_a_usage_error_is_argparses_2():
    done = netkit("demo", "--no-such-option")
    assert done.returncode == EXIT_BAD_INPUT and "unrecognized arguments: --no-such-option" in done.stderr


@pytest.mark.parametrize("args, code, fragment", [
    (["--json", "-", "--tap"], EXIT_BAD_INPUT, "--json - and --tap: only one report can go to stdout"),
    (["--json", "-", "--junit", "-"], EXIT_BAD_INPUT, "only one report can go to stdout"),
])
def test_the_gate_puts_one_report_on_stdout_at_most(args, code, fragment):
    done = netkit("gate", "--only", "ipv4-idle-link-down-1/1/3", *args)
    assert done.returncode == code and fragment in done.stderr and done.stdout == "", done.stderr


@needs_root
def test_gate_json_dash_puts_the_document_on_stdout_and_the_summary_on_stderr():
    done = netkit("gate", "--only", "ipv4-idle-link-down-1/1/3", "--json", "-", timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["schema"] == "netkit.gate/3"  # exactly one JSON document
    assert "totals: pass 1" in done.stderr
