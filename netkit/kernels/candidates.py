"""The Debian archive's kernel builds: read ``apt-cache dumpavail``, choose the build a spec names, list its packages.

Pure (no I/O): tested with synthetic archive text.  Versions are ordered as
dpkg orders them (:mod:`.debian_version`), so a backport (``~bpo13+1``) or a
stable update (``~deb12u1``) is older than the release's own build of the
same upstream version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import EnvironmentUnusable
from .debian_version import DebianVersion
from .spec import SUITES, KernelSpecError, Spec

# A generic amd64 build's image package (not -unsigned, -dbg, cloud or rt; not a meta package).
_IMAGE_PACKAGE = re.compile(
    r"^linux-image-(?P<release>(?P<upstream>\d+\.\d+\.\d+)(?:-(?P<abi>\d+))?(?:\+deb(?P<deb>\d+)(?:\.\d+)?)?-amd64)$")


@dataclass(frozen=True)
class Candidate:
    """A generic amd64 kernel build offered by the private apt lists."""

    release: str
    package: str
    version: str  # the package version, e.g. 6.1.192-2
    deb: int | None  # Debian major version it was built for, when the name or version says
    depends: tuple[str, ...] = ()

    def key(self) -> tuple[DebianVersion, int, int]:
        """Newest first by upstream version (dpkg's order, epoch included), then ABI; among equals the older
        Debian's build."""
        version = DebianVersion.parse(self.version)
        abi = re.search(r"-(\d+)(?:\+|-amd64)", self.release)
        return DebianVersion(version.epoch, version.upstream), int(abi.group(1)) if abi else 0, -(self.deb or 0)


def _records(text: str) -> Iterable[dict[str, str]]:
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        last = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and last:
                fields[last] += "\n" + line.strip()
            elif ":" in line:
                last, _, value = line.partition(":")
                fields[last] = value.strip()
        if "Package" in fields:
            yield fields


def parse_candidates(dumpavail: str) -> tuple[list[Candidate], dict[str, dict[str, str]]]:
    """Kernel builds from ``apt-cache dumpavail`` output, and every record by package name (its newest version)."""
    records: dict[str, dict[str, str]] = {}
    for r in _records(dumpavail):
        old = records.get(r["Package"])
        if old is None or DebianVersion.parse(r.get("Version", "")) > DebianVersion.parse(old.get("Version", "")):
            records[r["Package"]] = r
    found = []
    for name, r in records.items():
        m = _IMAGE_PACKAGE.match(name)
        if not m:
            continue
        version = r.get("Version", "")
        deb = m["deb"] or _deb_of_version(version)
        found.append(Candidate(m["release"], name, version, int(deb) if deb else None, _depends(r)))
    return found, records


def _deb_of_version(version: str) -> str | None:
    m = re.search(r"(?:deb|bpo)(\d+)", version)
    return m.group(1) if m else None


def _depends(record: dict[str, str]) -> tuple[str, ...]:
    names = []
    for part in record.get("Depends", "").split(","):
        for alternative in part.split("|"):
            name = alternative.strip().split(" ")[0].split(":")[0]
            if name:
                names.append(name)
    return tuple(names)


def choose(spec: Spec, candidates: list[Candidate]) -> Candidate:
    """The build a spec names among the candidates; KernelSpecError lists what there is."""
    if spec.kind == "release":
        found = [c for c in candidates if c.release == spec.release]
    elif spec.kind == "series":
        found = [c for c in candidates if spec.matches_series(c.release, c.deb)]
    else:
        raise KernelSpecError(f"{spec.text}: not a Debian kernel spec")
    if not found:
        series = sorted({".".join(c.release.split(".")[:2]) for c in candidates}, key=DebianVersion.parse)
        raise KernelSpecError(f"no Debian amd64 kernel matches {spec.text!r}; the series offered are "
                              f"{', '.join(series) or 'none (no apt lists?)'} "
                              f"(suites {', '.join(s for s, _, _ in SUITES)})")
    return max(found, key=Candidate.key)


def packages_for(candidate: Candidate, records: dict[str, dict[str, str]]) -> list[str]:
    """The image package and every ``linux-*-<release>`` package it depends on (7.x: binary, modules, base)."""
    wanted = [candidate.package]
    todo = list(candidate.depends)
    while todo:
        name = todo.pop()
        if name in wanted or not name.startswith("linux-") or not name.endswith("-" + candidate.release):
            continue
        if name not in records:
            raise EnvironmentUnusable(f"{candidate.package} needs {name}, which the apt lists do not offer")
        wanted.append(name)
        todo.extend(_depends(records[name]))
    return wanted
