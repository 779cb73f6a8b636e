"""Debian's version ordering, as dpkg orders versions (``dpkg --compare-versions``), for choosing the newest kernel.

A version is ``[epoch:]upstream[-revision]`` (deb-version(7)): the epoch is
the number before the first ``:`` (0 when there is none), the revision what
follows the last ``-`` (empty when there is none).  Two versions compare by
epoch as numbers, then by upstream, then by revision, the last two with
dpkg's ``verrevcmp`` (lib/dpkg/version.c): the strings are read as
alternating runs of non-digits and digits; non-digit runs compare character
by character with every letter before every non-letter and ``~`` before
anything, even the end of the string (``1.0~rc1`` < ``1.0`` < ``1.0+b1``,
``7.3.4-1~bpo13+1`` < ``7.3.4-1``); digit runs compare as numbers (``1.10`` >
``1.9``, ``1.01`` = ``1.1``).

Hand-written rather than taken from python-debian: the algorithm is twenty
lines, netkit needs nothing else of that library, and the tests check it
against dpkg's own answers where dpkg is installed.  It is lenient where dpkg
refuses (a release name such as ``6.1.0-56-amd64`` is not a package version,
but orders sensibly as one): an epoch that is not a number is taken as part of
the upstream version.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


def _digit(c: str) -> bool:
    return "0" <= c <= "9"  # ASCII only, as dpkg's c_isdigit (str.isdigit takes "²" too)


def _order(c: str) -> int:
    """dpkg's weight of one character of a non-digit run; "" is the end of the string."""
    if c == "" or _digit(c):
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of two upstream versions or two revisions: negative, 0 or positive."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _digit(a[i])) or (j < len(b) and not _digit(b[j])):
            ac, bc = _order(a[i:i + 1]), _order(b[j:j + 1])
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while i < len(a) and _digit(a[i]) and j < len(b) and _digit(b[j]):
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and _digit(a[i]):
            return 1
        if j < len(b) and _digit(b[j]):
            return -1
        if first_diff:
            return first_diff
    return 0


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class DebianVersion:
    """A version split as dpkg splits it; ordered (and equal) as dpkg orders it: ``1.0`` == ``0:1.0-0``."""

    epoch: int
    upstream: str
    revision: str = ""

    @classmethod
    def parse(cls, text: str) -> DebianVersion:
        text = text.strip()
        epoch, colon, rest = text.partition(":")
        if colon and epoch and all(_digit(c) for c in epoch):
            number, text = int(epoch), rest
        else:
            number = 0
        upstream, hyphen, revision = text.rpartition("-")
        return cls(number, upstream, revision) if hyphen else cls(number, text)

    def compare(self, other: DebianVersion) -> int:
        if self.epoch != other.epoch:
            return -1 if self.epoch < other.epoch else 1
        return verrevcmp(self.upstream, other.upstream) or verrevcmp(self.revision, other.revision)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DebianVersion) and self.compare(other) == 0

    def __lt__(self, other: DebianVersion) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:  # equal versions ("1.01", "1.1") must hash alike: hash a canonical form
        return hash((self.epoch, _canonical(self.upstream), _canonical(self.revision)))

    def __str__(self) -> str:
        return (f"{self.epoch}:" if self.epoch else "") + self.upstream + (f"-{self.revision}" if self.revision else "")


def _canonical(part: str) -> str:
    """The part with each digit run as its number, and runs of zeros dropped: verrevcmp reads no digits as 0."""
    return re.sub(r"[0-9]+", lambda m: str(int(m.group())) if int(m.group()) else "", part)


def compare_versions(a: str, b: str) -> int:
    """``dpkg --compare-versions a lt|eq|gt b`` as -1, 0 or 1."""
    rc = DebianVersion.parse(a).compare(DebianVersion.parse(b))
    return (rc > 0) - (rc < 0)
