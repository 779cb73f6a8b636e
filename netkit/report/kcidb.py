"""The gate document as a KCIDB v5 submission, so KernelCI's database shows netkit's results beside other CIs'.

KCIDB (the kernel CIs' common report database) takes JSON of the schema the
``kcidb-io`` package defines; this module writes its latest version, 5.3
(``kcidb_io/schema/v05_03.py`` and the versions it builds on: ``v05_00.py``
sets the id and path patterns).  netkit never imports ``kcidb-io`` (GPL-2.0):
the tests validate every document it writes with
``kcidb_io.schema.LATEST.validate_exactly``.

What is written (``kcidb_document``)::

    {"version": {"major": 5, "minor": 3},
     "checkouts": [...], "builds": [...],     <- only for ids netkit derived (below)
     "tests": [{"id", "origin", "build_id", "path", "status", "comment", "start_time",
                "duration", "number": {"value": <judged death, s>, "unit": "s"},
                "environment": {"comment": "HZ=250, 2 CPUs, ...", "misc": {...}},
                "log_excerpt": <the failure explanation>, "misc": {"netkit_id": ..., ...}}]}

* One test per scenario.  ``path`` is ``netkit.<id>`` with every character
  KCIDB's path does not allow (``[a-zA-Z0-9_-]``, dots separating levels)
  made ``_`` (``netkit.ipv4-idle-link-down-1_1_3``; a second id mapping to a
  path already taken gets ``-2``, ``-3``...); the netkit id is kept verbatim
  in ``misc.netkit_id``.  The test's ``id`` is
  ``<origin>:<build>:<started>:<path>``: unique per build, run and scenario.
* ``origin`` is the submitting CI's name, which KCIDB's maintainers assign
  with the submission credentials (``[a-z0-9_]+``): it has no default.
* ``build_id`` is the CI job's build when given; otherwise
  ``<origin>:<kernel release>``, and the document then carries that build
  (comment, ``misc`` with the release, ``uname -v`` and HZ) and, unless a
  checkout id was given, the checkout ``<origin>:<kernel release>`` too: KCIDB
  shows tests only once their build and checkout exist.
* ``number`` is the judged death time (each run's ``death_s``; with
  ``--repeat``, the median over the runs, as ``measured_s`` has it), present
  when a death was judged; ``duration`` is the scenario's wall time.
* ``environment``: HZ, CPUs, whether the kernel ran emulated (a guest under
  TCG) and the machine's virtualization, from the document's ``kernel``,
  ``machine`` and ``guest`` records (the host name is not written).
* ``log_excerpt``: the explanation of a failure (each failing run's explain
  text; a scenario that never ran, its reason), cut to KCIDB's 16384
  characters.

Status (KCIDB knows FAIL, ERROR, MISS, PASS, DONE, SKIP; netkit writes five):

==========  ======  ==========================================================
netkit      KCIDB   why
==========  ======  ==========================================================
pass        PASS
fail        FAIL
error       ERROR   the run broke off: the kernel's behaviour is unknown
skip        SKIP    not applicable here (a missing kernel feature, a known skip)
xfail       PASS    a known difference: the gate passes, as kselftest's
                    ``ok # XFAIL``; ``misc.outcome`` and ``comment`` say xfail
xpass       PASS    the known failure did not occur (``ok # XPASS``); said so
inconcl.    DONE    the machine ran the timers late (measured by the timer
                    ledger), on the gate's retry too: the test *completed*
                    and measured, but could not judge the kernel.  KCIDB v5:
                    "DONE - the test completed and had not reported the
                    status of the tested code, but, for example, produced a
                    performance measurement result" -- not ERROR ("failed to
                    complete, because of a failure in its code": the test did
                    not fail), not MISS (it ran), not SKIP (it was
                    applicable), never PASS nor FAIL.  ``comment`` says
                    "inconclusive" and the lateness; ``misc.outcome`` too
other       ERROR   an outcome this netkit does not know (a newer gate's):
                    inconclusive, never reported as a pass
==========  ======  ==========================================================

``misc`` also carries each scenario's ``evidence`` (``trace``, or
``observer`` and why) and, for a scenario the gate retried, ``retried``
(the first run's machine-late sentence).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..document.codec import document
from ..document.records import GateDocument, ScenarioEntry
from ..enums import GateOutcome
from .markdown import Doc, failure_details, known_text, numbered_apart

SCHEMA_VERSION = {"major": 5, "minor": 3}
ORIGIN = re.compile(r"^[a-z0-9_]+$")  # v03_00.origin_pattern
OBJECT_ID = re.compile(r"^[a-z0-9_]+:[^\0]*$")  # v05_00.origin_id_pattern: "<origin>:" then anything but NUL
PATH_PART = re.compile(r"[^a-zA-Z0-9_-]")  # v05_00.test_path_re allows these between the dots
LOG_EXCERPT_MAX = 16384  # the schema's maxLength (characters) for log_excerpt
TRUNCATED = "\n[... cut to KCIDB's {limit} characters; the gate's JSON document has the rest]"
PATH_PREFIX = "netkit"

STATUS: dict[str, str] = {  # the module docstring's table
    **dict.fromkeys((GateOutcome.PASS, GateOutcome.XFAIL, GateOutcome.XPASS), "PASS"),
    GateOutcome.FAIL: "FAIL", GateOutcome.ERROR: "ERROR", GateOutcome.SKIP: "SKIP", GateOutcome.INCONCLUSIVE: "DONE",
}
UNKNOWN_STATUS = "ERROR"


def status(outcome: str) -> str:
    """The KCIDB status of a gate outcome (the module docstring's table)."""
    return STATUS.get(outcome, UNKNOWN_STATUS)


def origin_problem(origin: str) -> str | None:
    """Why ``origin`` cannot be a KCIDB origin, or None."""
    if ORIGIN.match(origin):
        return None
    return "a KCIDB origin is lower-case letters, digits and _ (the name KCIDB's maintainers gave your CI)"


def id_problem(object_id: str) -> str | None:
    """Why ``object_id`` cannot be a KCIDB checkout or build id, or None."""
    if OBJECT_ID.match(object_id):
        return None
    return "a KCIDB id is its origin (lower-case letters, digits, _), a colon, then the CI's own id, e.g. kernelci:abc123"


def default_id(origin: str, doc: GateDocument) -> str:
    """The checkout and build id netkit derives when the CI gives none: ``<origin>:<kernel release>``."""
    return f"{origin}:{doc.kernel.release or 'unknown-kernel'}"


def kcidb_paths(ids: list[str]) -> list[str]:
    """Each scenario id's KCIDB path, ``netkit.<id>`` in the allowed characters, every one distinct."""
    return numbered_apart(f"{PATH_PREFIX}.{PATH_PART.sub('_', scenario_id) or '_'}" for scenario_id in ids)


def log_excerpt(text: str, limit: int = LOG_EXCERPT_MAX) -> str:
    """``text`` without NUL (the schema forbids it), cut to ``limit`` characters with a note saying so."""
    text = text.replace("\0", "\\0")
    if len(text) <= limit:
        return text
    note = TRUNCATED.format(limit=limit)
    return text[: limit - len(note)] + note


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """KCIDB allows no null: keys without a value are left out."""
    return {k: v for k, v in values.items() if v is not None}


def environment(doc: GateDocument) -> dict[str, Any]:
    """Where the scenarios ran: HZ, CPUs, emulated or not (the document's kernel, machine and guest records)."""
    kernel, machine, guest = doc.kernel, doc.machine, doc.guest
    accel = guest.accel if guest else None
    emulated = accel == "tcg"
    words = [f"HZ={kernel.hz if kernel.hz is not None else '?'}",
             f"{machine.cpus if machine.cpus is not None else '?'} CPUs",
             "emulated (TCG)" if emulated else f"virtual machine ({accel})" if guest and accel not in (None, "none")
             else "on the host"]
    if machine.virtualization:
        words.append(f"machine virtualization {machine.virtualization}")
    if machine.slow:
        words.append("slow-machine windows")
    misc = _plain({"hz": kernel.hz, "hz_source": kernel.hz_source, "cpus": machine.cpus, "emulated": emulated,
                   "accel": accel, "virtualization": machine.virtualization, "slow_machine": machine.slow,
                   "kernel_release": kernel.release, "kernel_version": kernel.version})
    return {"comment": ", ".join(words), "misc": misc}


def _comment(scenario: ScenarioEntry) -> str:
    outcome, reason = str(scenario.outcome), scenario.reason
    known = known_text(scenario.known)
    if outcome == GateOutcome.XFAIL:
        return f"{scenario.id}: XFAIL, a known difference: {known or reason or 'known failure'}"
    if outcome == GateOutcome.XPASS:
        return f"{scenario.id}: XPASS, the known failure did not occur: {known or reason or 'known failure'}"
    if outcome == GateOutcome.INCONCLUSIVE:
        return (f"{scenario.id}: inconclusive, not the kernel's failure: {reason or 'machine late'} "
                f"({scenario.evidence_text})")
    return f"{scenario.id}: {outcome}" + (f": {reason}" if reason else "")


def _test_misc(doc: GateDocument, scenario: ScenarioEntry) -> dict[str, Any]:
    measured = scenario.measured_s
    known = scenario.known
    return _plain({
        "netkit_id": scenario.id,
        "outcome": str(scenario.outcome),
        "reason": scenario.reason,
        "group": scenario.group,
        "family": scenario.family,
        "expected_s": scenario.expected_s,
        "window_s": list(scenario.window_s) if scenario.window_s else None,
        "measured_s": {"min": measured.min, "median": measured.median, "max": measured.max} if measured else None,
        "runs": len(scenario.runs),
        "known": _plain({"reason": known.reason, "link": known.link}) if known else None,
        "evidence": scenario.evidence_text.removeprefix("evidence: "),
        "retried": scenario.retried.reason if scenario.retried is not None else None,
        "netkit": doc.netkit,
        "gate_schema": doc.schema,
    })


def _test(doc: GateDocument, scenario: ScenarioEntry, *, origin: str, build_id: str, path: str,
          env: dict[str, Any]) -> dict[str, Any]:
    build_part = build_id.partition(":")[2] if build_id.startswith(f"{origin}:") else build_id
    measured = scenario.measured_s
    details = failure_details(scenario) if scenario.outcome not in (GateOutcome.PASS, GateOutcome.SKIP,
                                                                     GateOutcome.XPASS) else ""
    return _plain({
        "id": f"{origin}:{build_part}:{doc.started or 'unstarted'}:{path}",
        "origin": origin,
        "build_id": build_id,
        "path": path,
        "status": status(scenario.outcome),
        "number": {"value": measured.median, "unit": "s"} if measured is not None else None,
        "duration": scenario.duration_s,
        "start_time": doc.started,
        "comment": log_excerpt(_comment(scenario)),
        "log_excerpt": log_excerpt(details) if details else None,
        "environment": env,
        "misc": _test_misc(doc, scenario),
    })


def kcidb_document(doc: Doc, origin: str, *, checkout_id: str | None = None,
                   build_id: str | None = None) -> dict[str, Any]:
    """The KCIDB v5.3 data for a gate document (see the module docstring); ``origin`` is the CI's KCIDB origin."""
    doc = document(doc)
    data: dict[str, Any] = {"version": dict(SCHEMA_VERSION)}
    kernel = doc.kernel
    if build_id is None:
        build_id = default_id(origin, doc)
        if checkout_id is None:
            checkout_id = default_id(origin, doc)
            data["checkouts"] = [{
                "id": checkout_id, "origin": origin, "comment": f"Linux {kernel.release or '?'} (as netkit found it)",
                "misc": _plain({"kernel_release": kernel.release, "kernel_version": kernel.version}),
            }]
        data["builds"] = [{
            "id": build_id, "origin": origin, "checkout_id": checkout_id,
            "comment": f"Linux {kernel.release or '?'} {kernel.version or ''}".rstrip(),
            "misc": _plain({"kernel_release": kernel.release, "kernel_version": kernel.version, "hz": kernel.hz}),
        }]
    env = environment(doc)
    paths = kcidb_paths([s.id for s in doc.scenarios])
    data["tests"] = [_test(doc, s, origin=origin, build_id=build_id, path=path, env=env)
                     for s, path in zip(doc.scenarios, paths, strict=True)]
    return data


def to_kcidb(doc: Doc, origin: str, *, checkout_id: str | None = None, build_id: str | None = None) -> str:
    """``kcidb_document`` as JSON text, ready for ``kcidb-submit`` (or the CI's own submitter)."""
    return json.dumps(kcidb_document(doc, origin, checkout_id=checkout_id, build_id=build_id), indent=1) + "\n"
