"""The pytest plugin, seen from a user's project: fixtures, skips, kept namespaces."""

import os
import re
import subprocess
import sys

import pytest

from netkit.cleanup import cleanup, kept_namespaces
from netkit.kernel import kernel_info
from netkit.privileges import missing_privileges

pytest_plugins = ["pytester"]
needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))

USER_TESTS = '''
import pytest
from netkit import KeepaliveSettings

@pytest.mark.parametrize("netkit_family", ["ipv4", "ipv6"])
def test_connection_is_up(netkit_connection):
    netkit_connection.client.sendall(b"x")
    assert netkit_connection.server.recv(1) == b"x"
    KeepaliveSettings(1, 1, 3).apply(netkit_connection.server)

def test_fails_on_purpose(netkit_lab):
    assert False, "deliberate failure"
'''


def test_report_header_shows_the_kernel(pytester):
    """Once a netkit test is collected (a session without one shows no netkit line: test_plugin_collection)."""
    pytester.makepyfile("def test_family(netkit_family): pass")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines([f"netkit: kernel {kernel_info().release}, HZ={kernel_info().hz}*"])


@needs_root
def test_failing_test_keeps_its_namespaces_when_asked(pytester):
    pytester.makepyfile(USER_TESTS)
    result = pytester.runpytest_subprocess("--netkit-keep-failed", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    kept = re.findall(r"ip netns exec (nk-\d+-[0-9a-f]+-(?:server|client))", result.stdout.str())
    try:
        assert len(kept) == 2, result.stdout.str()
        assert set(kept) <= set(kept_namespaces())
        out = subprocess.run(["ip", "netns", "exec", kept[0], "ip", "-br", "addr"], capture_output=True, text=True)
        assert "198.18.0.1/24" in out.stdout
    finally:
        report = cleanup()  # the pytest subprocess has exited: its namespaces are fair game
    assert set(kept) <= set(report.removed)
    assert not set(kept) & set(kept_namespaces())


@needs_root
def test_without_the_option_nothing_is_kept(pytester, assert_no_leftovers):
    pytester.makepyfile(USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert "ip netns exec" not in result.stdout.str()
    assert_no_leftovers()


def test_bad_environment_value_is_named(pytester, monkeypatch):
    monkeypatch.setenv("NETKIT_KEEP_FAILED", "perhaps")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    assert "Invalid value 'perhaps' from NETKIT_KEEP_FAILED" in result.stderr.str()


def run_unprivileged(pytester, without_privileges, *args, env=None):
    return subprocess.run(
        [*without_privileges.prefix, sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *args,
         str(pytester.path)],
        capture_output=True, text=True, cwd=pytester.path, env=env,
    )


def test_without_privileges_lab_tests_skip_and_the_summary_says_so(pytester, without_privileges):
    pytester.makepyfile(USER_TESTS)
    done = run_unprivileged(pytester, without_privileges)
    assert done.returncode == 0, done.stdout
    assert "3 skipped" in done.stdout, done.stdout
    assert without_privileges.says in done.stdout
    assert "netkit: 3 test(s) SKIPPED for lack of privileges: nothing they check was tested" in done.stdout
    assert "--netkit-require-privileges" in done.stdout


@pytest.mark.parametrize("how", ["option", "environment", "ini"])
def test_require_privileges_turns_those_skips_into_errors(pytester, without_privileges, how):
    pytester.makepyfile(USER_TESTS)
    args, env = [], None
    if how == "option":
        args = ["--netkit-require-privileges"]
    elif how == "environment":
        env = {**os.environ, "NETKIT_REQUIRE_PRIVILEGES": "1"}
    else:
        pytester.makeini("[pytest]\nnetkit_require_privileges = true\n")
    done = run_unprivileged(pytester, without_privileges, *args, env=env)
    assert done.returncode == 1, done.stdout
    assert "3 errors" in done.stdout, done.stdout
    assert "skipped" not in done.stdout.splitlines()[-1]
    assert without_privileges.says in done.stdout


def test_the_summary_counts_only_skips_for_lack_of_privileges(pytester, without_privileges):
    pytester.makepyfile("import pytest\ndef test_skips():\n    pytest.skip('for another reason')\n")
    done = run_unprivileged(pytester, without_privileges)
    assert "1 skipped" in done.stdout, done.stdout
    assert "lack of privileges" not in done.stdout
