"""A kernel spec (``debian:6.1``, ``bookworm-6.12``, ``6.1.0-56-amd64``, ``build:6.12-hz1000``, a path, ``host``) read.

The syntax is the package docstring's (:mod:`netkit.kernels`).  Reading a
spec does no I/O except to tell an image path from a name, so a typo is
refused before anything is fetched or booted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import InputError

# (suite, archive path under the mirror, Debian major version): the suites netkit's private apt reads
SUITES = (
    ("bookworm", "debian", 12),
    ("bookworm-security", "debian-security", 12),
    ("bookworm-backports", "debian", 12),
    ("trixie", "debian", 13),
    ("trixie-security", "debian-security", 13),
    ("trixie-backports", "debian", 13),
)
DEBIAN_RELEASES = {"bookworm": 12, "trixie": 13}

SPEC_HELP = ("debian:SERIES (debian:6.1, debian:6.12, debian:7.x), bookworm-SERIES / trixie-SERIES, "
             "linux-image-RELEASE, RELEASE (6.1.0-56-amd64), build:SERIES-hzHZ, a kernel image path, or host")

_SERIES = r"(?P<series>\d+(?:\.(?:\d+|x))?)"
_RELEASE = re.compile(r"^\d+\.\d+\.\d+(?:-\d+)?(?:\+deb\d+(?:\.\d+)?)?-amd64$")


class KernelSpecError(InputError):
    """A kernel spec netkit cannot read or find (exit status 2)."""


@dataclass(frozen=True)
class Spec:
    """A parsed kernel spec; see the package docstring for the syntax."""

    text: str
    kind: str  # "series" | "release" | "build" | "image" | "host"
    series: str | None = None  # "6.1", "6.12", "7" (for 7.x)
    debian: int | None = None  # 12 or 13: only builds for this Debian release
    release: str | None = None  # kind "release": the exact release; "image": the path

    def matches_series(self, release: str, deb: int | None) -> bool:
        assert self.series is not None
        if self.debian is not None and deb is not None and deb != self.debian:
            return False
        return release == self.series or release.startswith(self.series + ".")


def parse_spec(text: str) -> Spec:
    """Read a spec, without I/O except to tell a path from a name; KernelSpecError names the accepted forms."""
    t = text.strip()
    if not t:
        raise KernelSpecError(f"empty kernel spec; use one of: {SPEC_HELP}")
    if t == "host":
        return Spec(t, "host")
    if "/" in t or os.path.isfile(t):
        return Spec(t, "image", release=t)
    m = re.fullmatch(rf"debian:{_SERIES}", t)
    if m:
        return Spec(t, "series", series=_series(m["series"]))
    m = re.fullmatch(rf"(?P<dist>[a-z]+)(?:-(?:security|backports))?-{_SERIES}", t)
    if m and m["dist"] in DEBIAN_RELEASES:
        return Spec(t, "series", series=_series(m["series"]), debian=DEBIAN_RELEASES[m["dist"]])
    m = re.fullmatch(r"build:(?P<series>\d+\.\d+)-hz(?P<hz>\d+)", t)
    if m:
        return Spec(t, "build", series=m["series"])
    name = t[len("linux-image-"):] if t.startswith("linux-image-") else t
    if _RELEASE.fullmatch(name):
        return Spec(t, "release", release=name)
    raise KernelSpecError(f"unknown kernel spec {text!r}; use one of: {SPEC_HELP}")


def _series(text: str) -> str:
    return text[:-2] if text.endswith(".x") else text
