"""The pytest plugin, seen from a user's project: fixtures, skips, kept namespaces."""

import re
import subprocess
import sys

import pytest

from netkit.cleanup import cleanup, kept_namespaces
from netkit.doctor import missing_privileges
from netkit.kernel import kernel_info

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
    pytester.makepyfile("def test_nothing(): pass")
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


def test_without_privileges_lab_tests_skip_with_instructions(pytester):
    pytester.makepyfile(USER_TESTS)
    done = subprocess.run(
        ["setpriv", "--bounding-set=-net_admin,-sys_admin", "--inh-caps=-net_admin,-sys_admin",
         sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(pytester.path)],
        capture_output=True, text=True, cwd=pytester.path,
    )
    assert "3 skipped" in done.stdout, done.stdout
    assert "CAP_NET_ADMIN" in done.stdout and "privileged container" in done.stdout  # root, capabilities dropped
