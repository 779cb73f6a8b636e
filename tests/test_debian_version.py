"""Debian's version ordering: a table of pairs with dpkg's answers, checked against dpkg itself where it is installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from netkit.kernels.debian_version import DebianVersion, compare_versions

# (a, b, dpkg's answer: a is lt, eq or gt b) -- each answer is what `dpkg --compare-versions a OP b` says
PAIRS = [
    ("1.0", "1.0", "eq"),
    ("1.0", "1.1", "lt"),
    ("1.9", "1.10", "lt"),  # digit runs compare as numbers
    ("1.01", "1.1", "eq"),  # ... so leading zeros do not count
    ("1.0", "1.0-0", "eq"),  # an absent revision is "0"
    ("0:1.0", "1.0", "eq"),  # an absent epoch is 0
    ("1:0.1", "9.9", "gt"),  # the epoch first
    ("2:1.0", "10:1.0", "lt"),  # epochs compare as numbers
    ("1.0~rc1", "1.0", "lt"),  # ~ sorts before the end of the string
    ("1.0~", "1.0", "lt"),
    ("1.0~~", "1.0~", "lt"),
    ("1.0~~a", "1.0~", "lt"),
    ("1.0~a", "1.0~b", "lt"),
    ("1.0-~", "1.0", "lt"),  # ... in a revision too
    ("1.0", "1.0+b1", "lt"),  # a non-letter after the end
    ("1.0a", "1.0+", "lt"),  # letters before non-letters
    ("1.0a", "1.0.", "lt"),
    ("1.0Z", "1.0a", "lt"),  # letters by ASCII: upper case first
    ("1.0.", "1.0+", "gt"),  # non-letters by ASCII among themselves
    ("1.0", "1.0a", "lt"),
    ("1.2.3", "1.10", "lt"),
    ("1.0-1", "1.0-2", "lt"),  # the revision decides when upstream is equal
    ("1.0-10", "1.0-9", "gt"),
    ("1.0-1-2", "1.0-1-10", "lt"),  # the revision is after the last hyphen
    ("6.12.117-1~deb12u1", "6.12.117-1", "lt"),  # a backport or stable update is older than the release's own
    ("7.3.4-1~bpo13+1", "7.3.4-1", "lt"),
    ("6.1.192-2", "6.1.190-1", "gt"),
    ("6.12.118-1", "6.12.117-1", "gt"),
    ("2.30-1", "2.4-1", "gt"),  # not string order
]

_FLIP = {"lt": "gt", "eq": "eq", "gt": "lt"}
_SIGN = {"lt": -1, "eq": 0, "gt": 1}


@pytest.mark.parametrize("a, b, answer", PAIRS)
def test_versions_order_as_dpkg_orders_them(a, b, answer):
    assert compare_versions(a, b) == _SIGN[answer]
    assert compare_versions(b, a) == _SIGN[_FLIP[answer]]
    va, vb = DebianVersion.parse(a), DebianVersion.parse(b)
    assert (va < vb, va == vb, va > vb) == (answer == "lt", answer == "eq", answer == "gt")
    if answer == "eq":
        assert hash(va) == hash(vb)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed: the table's answers stand alone")
@pytest.mark.parametrize("a, b, answer", PAIRS)
def test_the_table_is_what_dpkg_says(a, b, answer):
    done = subprocess.run(["dpkg", "--compare-versions", a, answer, b], capture_output=True, text=True)
    assert done.returncode == 0, f"dpkg --compare-versions {a} {answer} {b}: false ({done.stderr.strip()})"


def test_a_version_splits_as_dpkg_splits_it():
    assert DebianVersion.parse("1:2.3-4-5") == DebianVersion(1, "2.3-4", "5")
    assert (DebianVersion.parse("7.3.4-1~bpo13+1").upstream, DebianVersion.parse("7.3.4-1~bpo13+1").revision) == \
        ("7.3.4", "1~bpo13+1")
    assert DebianVersion.parse("x:1.0") == DebianVersion(0, "x:1.0")  # lenient: not a number, not an epoch
    assert str(DebianVersion.parse("1:2.3-4")) == "1:2.3-4"


def test_sorting_puts_tilde_first():
    versions = ["1.0", "1.0~rc1", "1.0+b1", "1.0~~", "1:0.9", "0.9-1"]
    assert sorted(versions, key=DebianVersion.parse) == ["0.9-1", "1.0~~", "1.0~rc1", "1.0", "1.0+b1", "1:0.9"]
