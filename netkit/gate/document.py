"""The gate's result as one JSON document: what every report renders and what ``gate diff`` compares.

Reports are functions of this document alone (never of live objects), so a
document saved on one machine -- or inside a virtual machine on another
kernel -- renders and compares exactly like a fresh one.  The document is a
:class:`~netkit.document.records.GateDocument`; its JSON keys are part of
netkit's interface, read and written only by :mod:`netkit.document.codec`:
``GATE_SCHEMA`` changes when they do, and a test pins them.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import statistics
import subprocess
from typing import Any

from .. import __version__
from ..document.records import (
    GATE_SCHEMA,
    GateDocument,
    GateOptions,
    KernelRecord,
    KnownRecord,
    MachineRecord,
    Measured,
    RetryRecord,
    ScenarioEntry,
    ShardRecord,
    totals_of,
)
from ..kernel import KernelInfo
from .outcome import Outcome
from .run import ScenarioRuns


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def scenario_entry(runs: ScenarioRuns, decided: Outcome) -> ScenarioEntry:
    s = runs.scenario
    measured = [r.death_s for r in runs.results if r.death_s is not None]  # the judged death time of each run
    first = runs.results[0] if runs.results else None
    return ScenarioEntry(
        id=s.id,
        group=f"{s.state}/{s.fault}",
        state=s.state,
        fault=s.fault,
        family=s.family,
        outcome=decided.outcome,
        reason=decided.reason,
        # the prediction each run was judged by (data states read the connection's RTO); before any run, the gate's own
        expected_s=first.expected_s if first else runs.expected_s,
        window_s=first.window_s if first else runs.window_s,
        measured_s=Measured(min(measured), statistics.median(measured), max(measured)) if measured else None,
        duration_s=runs.duration_s,
        known=KnownRecord(decided.known.reason, decided.known.link) if decided.known else None,
        runs=tuple(runs.results),
        retried=RetryRecord(runs.retried[0].machine_late or "", tuple(runs.retried)) if runs.retried else None,
    )


def build(
    entries: list[ScenarioEntry],
    *,
    kernel: KernelInfo,
    started: str,
    wall_s: float,
    options: dict[str, Any],
    slow_machine: bool,
) -> GateDocument:
    return GateDocument(
        schema=GATE_SCHEMA,
        netkit=__version__,
        kernel=KernelRecord(kernel.release, os.uname().version, kernel.hz, kernel.hz_source),
        machine=MachineRecord(socket.gethostname(), os.cpu_count(), virtualization(), slow_machine),
        started=started,
        ended=utc_now(),
        wall_s=round(wall_s, 3),
        options=options_record(**options),
        totals=totals_of(entries),
        scenarios=tuple(entries),
        diff=None,  # with --baseline: what changed since (netkit.gate.diff)
    )


def options_record(repeat: int | None = None, only: list[str] | tuple[str, ...] = (), matrix: str | None = None,
                   slow_machine: bool = False, baseline: str | None = None, known: str | None = None,
                   shard: ShardRecord | None = None) -> GateOptions:
    """The gate's options, as keywords (the command's names)."""
    return GateOptions(repeat, tuple(only), matrix, slow_machine, baseline, known, shard)
