"""The gate's result as one JSON document: what every report renders and what ``gate diff`` compares.

Reports are functions of this document alone (never of live objects), so a
document saved on one machine -- or inside a virtual machine on another
kernel -- renders and compares exactly like a fresh one.  Its keys are part
of netkit's interface: ``GATE_SCHEMA`` changes when they do, and a test pins
them.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
from typing import Any

from .. import __version__
from ..errors import InputError
from ..kernel import KernelInfo
from .outcome import OUTCOMES, Outcome, death_time_s
from .run import ScenarioRuns

GATE_SCHEMA = "netkit-gate/1"
SCENARIO_KEYS = ("id", "group", "state", "fault", "family", "outcome", "reason", "expected_s", "window_s",
                 "measured_s", "duration_s", "known", "runs")
TOP_KEYS = ("schema", "netkit", "kernel", "machine", "started", "ended", "wall_s", "options", "totals", "scenarios",
            "diff")


class GateDocumentError(InputError):
    """A file that is not a gate document netkit can read (another tool's JSON, truncated, another schema)."""


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def virtualization() -> str | None:
    """What hypervisor (if any) runs this machine: systemd-detect-virt, else the CPU's hypervisor flag."""
    tool = shutil.which("systemd-detect-virt")
    if tool:
        done = subprocess.run([tool], capture_output=True, text=True)
        found = done.stdout.strip()
        return None if not found or found == "none" else found
    try:
        with open("/proc/cpuinfo") as f:
            return "unknown hypervisor" if any(" hypervisor" in line for line in f if line.startswith("flags")) else None
    except OSError:
        return None


def scenario_entry(runs: ScenarioRuns, decided: Outcome) -> dict[str, Any]:
    s = runs.scenario
    measured = [t for t in map(death_time_s, runs.results) if t is not None]  # the kernel's own moment where seen
    return {
        "id": s.id,
        "group": f"{s.state}/{s.fault}",
        "state": s.state,
        "fault": s.fault,
        "family": s.family,
        "outcome": decided.outcome,
        "reason": decided.reason,
        # the prediction each run was judged by (data states read the connection's RTO); before any run, the gate's own
        "expected_s": runs.results[0]["expected_s"] if runs.results else runs.expected_s,
        "window_s": runs.results[0]["window_s"] if runs.results else (list(runs.window_s) if runs.window_s else None),
        "measured_s": {"min": min(measured), "median": statistics.median(measured), "max": max(measured)}
        if measured else None,
        "duration_s": runs.duration_s,
        "known": {"reason": decided.known.reason, "link": decided.known.link} if decided.known else None,
        "runs": runs.results,
    }


def build(
    entries: list[dict[str, Any]],
    *,
    kernel: KernelInfo,
    started: str,
    wall_s: float,
    options: dict[str, Any],
    slow_machine: bool,
) -> dict[str, Any]:
    totals = {name: sum(1 for e in entries if e["outcome"] == name) for name in OUTCOMES}
    return {
        "schema": GATE_SCHEMA,
        "netkit": __version__,
        "kernel": {"release": kernel.release, "version": os.uname().version, "hz": kernel.hz,
                   "hz_source": kernel.hz_source},
        "machine": {"hostname": socket.gethostname(), "cpus": os.cpu_count(), "virtualization": virtualization(),
                    "slow": slow_machine},
        "started": started,
        "ended": utc_now(),
        "wall_s": round(wall_s, 3),
        "options": options,
        "totals": totals,
        "scenarios": entries,
        "diff": None,  # with --baseline: what changed since (netkit.gate.diff)
    }


def load(path: str) -> dict[str, Any]:
    """A gate document from a file, refused with a clear message if it is anything else."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise GateDocumentError(f"{path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise GateDocumentError(f"{path}: not JSON (truncated?): {exc}") from None
    except UnicodeDecodeError as exc:
        raise GateDocumentError(f"{path}: not JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(doc, dict) or "schema" not in doc:
        raise GateDocumentError(f"{path}: not a netkit gate document (no \"schema\" key; written by `netkit gate --json`?)")
    if doc["schema"] != GATE_SCHEMA:
        raise GateDocumentError(f"{path}: schema {doc['schema']!r}; this netkit reads {GATE_SCHEMA!r}")
    missing = [key for key in TOP_KEYS if key not in doc]
    if missing:
        raise GateDocumentError(f"{path}: incomplete gate document: missing {missing}")
    problem = _shape_problem(doc)
    if problem:
        raise GateDocumentError(f"{path}: not a gate document netkit can read: {problem}")
    return doc


def _shape_problem(doc: dict[str, Any]) -> str | None:
    """The first value a report or a diff would trip over (a doctored or foreign document), or None."""
    kernel = doc["kernel"]
    if not isinstance(kernel, dict) or not isinstance(kernel.get("release"), str):
        return f"\"kernel\" is {kernel!r}, not {{\"release\": ..., \"hz\": ...}}"
    if not isinstance(doc.get("guest") or {}, dict):
        return f"\"guest\" is {doc['guest']!r}, not an object"
    scenarios = doc["scenarios"]
    if not isinstance(scenarios, list):
        return f"\"scenarios\" is {scenarios!r}, not a list"
    for i, entry in enumerate(scenarios):
        where = f"scenarios[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            return f"{where} has no \"id\""
        if entry.get("outcome") not in OUTCOMES:
            return f"{where} ({entry['id']}): outcome {entry.get('outcome')!r}, not one of {', '.join(OUTCOMES)}"
        runs, measured, window = entry.get("runs", []), entry.get("measured_s"), entry.get("window_s")
        if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
            return f"{where} ({entry['id']}): \"runs\" is not a list of objects"
        if measured is not None and not (isinstance(measured, dict) and _number(measured.get("median"))):
            return f"{where} ({entry['id']}): \"measured_s\" is {measured!r}, not {{\"median\": seconds, ...}}"
        if window is not None and not (isinstance(window, list) and len(window) == 2 and all(map(_number, window))):
            return f"{where} ({entry['id']}): \"window_s\" is {window!r}, not [low, high]"
    return None


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
