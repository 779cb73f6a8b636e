"""The gate's JSON in and out: the one loader and the one dumper of :mod:`netkit.document.records`.

Only this module indexes a run or a document by string key:
:func:`load`/:func:`read`/:func:`from_dict`/:func:`run_from_dict` read,
:func:`dump`/:func:`to_dict`/:func:`run_to_dict` write, and
``from_dict(to_dict(doc)) == doc``.

The loader is tolerant, as the reports always were: a value of the wrong type
(a newer gate, a hand-made test document) reads as unknown (None, empty)
instead of failing a report; :func:`load` refuses a file that is no gate
document before it gets that far.  A key this netkit does not model is kept
in ``extra`` and written back unchanged.

A run's judged facts are read as stored; a run written before they were
stored (every ``netkit-gate/1`` document) gets them from the single
definitions in :mod:`netkit.evidence.death`, never from a copy.  An event
without a ``kind`` is :attr:`EventKind.OTHER`: its kind is never guessed from
its wording.  A run written before the timer ledger (``netkit-gate/1`` and
``/2``) has ``evidence: observer``, its note saying so: it was judged
without one.  A ledger is read with :meth:`netkit.evidence.ledger.Ledger.from_dict`
and written with ``to_dict`` (the result JSON's form); one that cannot be read
is kept as it is in the run's ``extra``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..enums import CountSource, DeathSource, EventKind, GateOutcome, StrEnum, Timing
from ..errors import InputError
from ..evidence.death import check_death, count_of, judged_death, late_only
from ..evidence.ledger import Ledger
from .records import (
    BEFORE_INCONCLUSIVE,
    GATE_SCHEMA,
    OLD_EVIDENCE_NOTE,
    READABLE_SCHEMAS,
    RENAMED,
    TOP_KEYS,
    GateDocument,
    GateOptions,
    GateRun,
    GuestRecord,
    KernelRecord,
    KnownRecord,
    MachineRecord,
    Measured,
    MiddleboxRecord,
    RetryRecord,
    ScenarioEntry,
    ShardRecord,
    TimelineEntry,
    Window,
    WireRecord,
)

# ---------------------------------------------------------------- tolerant readers of JSON values


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _window(value: Any) -> Window | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = _num(value[0]), _num(value[1])
        if low is not None and high is not None:
            return low, high
    return None


def _extra(data: Mapping[str, Any], cls: type) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return {k: v for k, v in data.items() if k not in known}


def _enum(kind: type[StrEnum], value: Any) -> Any:
    return kind(value) if value in kind.values() else None


# ---------------------------------------------------------------- the loader


class GateDocumentError(InputError):
    """A file that is not a gate document netkit can read (another tool's JSON, truncated, another schema)."""


def load(path: str) -> GateDocument:
    """A gate document from a file, refused with a clear message if it is anything else."""
    return from_dict(read(path))


def load_as_written(path: str) -> tuple[str, GateDocument]:
    """The schema a gate document file was written with (:func:`load` upgrades it) and the document.

    A former name of this schema (``netkit-gate/3``) reads as its name now: the same document.
    """
    data = read(path)
    return RENAMED.get(data["schema"], str(data["schema"])), from_dict(data)


def read(path: str) -> dict[str, Any]:
    """A gate document file's JSON, checked as :func:`load` checks it (for a caller that adds to the JSON)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise GateDocumentError(f"{path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise GateDocumentError(f"{path}: not JSON (truncated?): {exc}") from None
    except UnicodeDecodeError as exc:
        raise GateDocumentError(f"{path}: not JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(data, dict) or "schema" not in data:
        raise GateDocumentError(f"{path}: not a netkit gate document (no \"schema\" key; written by `netkit gate --json`?)")
    if data["schema"] not in READABLE_SCHEMAS:
        readable = " or ".join(map(repr, READABLE_SCHEMAS))
        raise GateDocumentError(f"{path}: schema {data['schema']!r}; this netkit reads {readable}")
    missing = [key for key in TOP_KEYS if key not in data]
    if missing:
        raise GateDocumentError(f"{path}: incomplete gate document: missing {missing}")
    problem = _shape_problem(data)
    if problem:
        raise GateDocumentError(f"{path}: not a gate document netkit can read: {problem}")
    return data


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
        if entry.get("outcome") not in GateOutcome.values():
            return f"{where} ({entry['id']}): outcome {entry.get('outcome')!r}, not one of {', '.join(GateOutcome.values())}"
        runs, measured, window = entry.get("runs", []), entry.get("measured_s"), entry.get("window_s")
        if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
            return f"{where} ({entry['id']}): \"runs\" is not a list of objects"
        if measured is not None and not (isinstance(measured, dict) and _num(measured.get("median")) is not None):
            return f"{where} ({entry['id']}): \"measured_s\" is {measured!r}, not {{\"median\": seconds, ...}}"
        if window is not None and _window(window) is None:
            return f"{where} ({entry['id']}): \"window_s\" is {window!r}, not [low, high]"
    return None


def _shard(value: Any) -> ShardRecord | None:
    index, count = (_int(_map(value).get(k)) for k in ("index", "count"))
    return ShardRecord(index, count) if index is not None and count is not None else None


def timeline_entry(data: Mapping[str, Any]) -> TimelineEntry:
    return TimelineEntry(_num(data.get("t_s")), str(data.get("what", "")), _str(data.get("source")),
                         _enum(EventKind, data.get("kind")) or EventKind.OTHER, _extra(data, TimelineEntry))


def run_from_dict(data: Mapping[str, Any]) -> GateRun:
    """A run from its JSON (a worker's result dict plus ``explain``, or a document's run), judged facts included."""
    wire, middlebox, connections = data.get("wire"), data.get("middlebox"), data.get("connections")
    run = GateRun(
        schema=_str(data.get("schema")), kernel=_str(data.get("kernel")), hz=_int(data.get("hz")),
        id=_str(data.get("id")), family=_str(data.get("family")), keepalive=_map(data.get("keepalive")),
        keepalive_via=_str(data.get("keepalive_via")), side=_str(data.get("side")), fault=_str(data.get("fault")),
        state=_str(data.get("state")), rule=_str(data.get("rule")), expected_s=_num(data.get("expected_s")),
        window_s=_window(data.get("window_s")), measured_s=_num(data.get("measured_s")),
        kernel_death_s=_num(data.get("kernel_death_s")), observer_late_s=_num(data.get("observer_late_s")),
        error=_str(data.get("error")), expected_error=_str(data.get("expected_error")),
        probes=_int(data.get("probes")), retransmits=_int(data.get("retransmits")),
        count_source=_str(data.get("count_source")), expected_count=_int(data.get("expected_count")),
        alternative_window_s=_window(data.get("alternative_window_s")),
        alternative_count=_int(data.get("alternative_count")), keepalive_counter=data.get("keepalive_counter"),
        counters={k: v for k, v in _map(data.get("counters")).items() if _int(v) is not None},
        measured_from=_str(data.get("measured_from")), retries2=_int(data.get("retries2")),
        rto_max_ms=_int(data.get("rto_max_ms")), rto_max_via=_str(data.get("rto_max_via")),
        rto_min_us=_int(data.get("rto_min_us")), rto_min_via=_str(data.get("rto_min_via")),
        expect_s=_num(data.get("expect_s")),
        peer_error=_str(data.get("peer_error")), peer_expected_error=_str(data.get("peer_expected_error")),
        peer_lag_s=_num(data.get("peer_lag_s")), fault_at_s=_num(data.get("fault_at_s")),
        timeline=tuple(timeline_entry(e) for e in _seq(data.get("timeline")) if isinstance(e, Mapping)),
        wire=None if not isinstance(wire, Mapping) else WireRecord(
            bool(wire.get("visible")), _str(wire.get("note")), _str(wire.get("anchor")), _num(wire.get("rst_s")),
            _num(wire.get("peer_rst_s")), _extra(wire, WireRecord)),
        pcap=_str(data.get("pcap")), verdict=_str(data.get("verdict")),
        failures=tuple(str(f) for f in _seq(data.get("failures"))),
        kept_namespaces=tuple(str(n) for n in _seq(data.get("kept_namespaces"))),
        connections=connections if isinstance(connections, Mapping) else None,
        middlebox=None if not isinstance(middlebox, Mapping) else MiddleboxRecord(
            _num(middlebox.get("lived_s")), _num(middlebox.get("alive_until_s")), _extra(middlebox, MiddleboxRecord)),
        explain=_str(data.get("explain")),
        extra=_extra(data, GateRun),
    )
    run = _with_evidence(run, data)
    if "death_timing" in data:  # judged and stored by the run itself (netkit.scenario-result/2)
        return dataclasses.replace(
            run, death_s=_num(data.get("death_s")), death_source=_enum(DeathSource, data.get("death_source")),
            death_timing=_enum(Timing, data.get("death_timing")) or Timing.NONE,
            late_by_s=_num(data.get("late_by_s")), late_only=data.get("late_only") is True, count=_int(data.get("count")))
    return judged(run)


def _ledger(value: Any) -> Ledger | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return Ledger.from_dict(value)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _with_evidence(run: GateRun, data: Mapping[str, Any]) -> GateRun:
    """The run's evidence, rule failures, machine-late sentence and ledger (netkit.scenario-result/3)."""
    if "evidence" not in data:  # judged before the ledger existed: by the observer (and the wire), never the trace
        return dataclasses.replace(run, evidence="observer", evidence_note=OLD_EVIDENCE_NOTE)
    ledger = _ledger(data.get("ledger"))
    extra = dict(run.extra)
    if ledger is None and data.get("ledger") is not None:
        extra["ledger"] = data["ledger"]  # unreadable here (a newer netkit's?): kept as it is
    return dataclasses.replace(
        run, rule_failures=tuple(str(f) for f in _seq(data.get("rule_failures"))),
        evidence=_str(data.get("evidence")) or "observer", evidence_note=_str(data.get("evidence_note")) or "",
        machine_late=_str(data.get("machine_late")), ledger=ledger, extra=extra)


def judged(run: GateRun) -> GateRun:
    """A run written before its judged facts were stored, with them, from :mod:`netkit.evidence.death`."""
    death_s, source = judged_death(run.kernel_death_s, run.measured_s)
    count = None
    if run.count_source in CountSource.values():
        count = count_of(run.count_source or "", run.probes, run.retransmits, run.counters)
    outcomes = run.outcomes
    check = check_death(outcomes, death_s) if outcomes else None
    return dataclasses.replace(
        run, death_s=death_s, death_source=source, count=count,
        death_timing=check.timing if check else Timing.NONE, late_by_s=check.late_by_s if check else None,
        late_only=late_only(check, outcomes, count, run.error, run.expected_error) if check else False)


def entry_from_dict(data: Mapping[str, Any]) -> ScenarioEntry:
    measured, known = _map(data.get("measured_s")), data.get("known")
    low, median, high = (_num(measured.get(k)) for k in ("min", "median", "max"))
    outcome = data.get("outcome")
    return ScenarioEntry(
        id=str(data.get("id") or "?"), group=_str(data.get("group")), state=_str(data.get("state")),
        fault=_str(data.get("fault")), family=_str(data.get("family")),
        outcome=_enum(GateOutcome, outcome) or (outcome if isinstance(outcome, str) else GateOutcome.FAIL),
        reason=_str(data.get("reason")), expected_s=_num(data.get("expected_s")),
        window_s=_window(data.get("window_s")),
        measured_s=Measured(low, median, high) if low is not None and median is not None and high is not None else None,
        duration_s=_num(data.get("duration_s")),
        known=KnownRecord(_str(known.get("reason")), _str(known.get("link"))) if isinstance(known, Mapping) else None,
        runs=tuple(run_from_dict(r) for r in _seq(data.get("runs")) if isinstance(r, Mapping)),
        retried=_retried(data.get("retried")),
        extra=_extra(data, ScenarioEntry),
    )


def _totals(data: Mapping[str, Any]) -> dict[str, int]:
    """The totals as written; an older schema's gain ``inconclusive: 0`` (it had no such outcome: none was)."""
    totals = {k: v for k, v in _map(data.get("totals")).items() if _int(v) is not None}
    if data.get("schema") in BEFORE_INCONCLUSIVE and totals:
        totals.setdefault(GateOutcome.INCONCLUSIVE.value, 0)
    return totals


def _retried(value: Any) -> RetryRecord | None:
    if not isinstance(value, Mapping):
        return None
    return RetryRecord(str(value.get("reason") or ""),
                       tuple(run_from_dict(r) for r in _seq(value.get("runs")) if isinstance(r, Mapping)),
                       _extra(value, RetryRecord))


def from_dict(data: Mapping[str, Any]) -> GateDocument:
    """A gate document (schema netkit.gate/3, or netkit-gate/1, /2 or /3) from its JSON; see the module docstring on tolerance."""
    kernel, machine, options, guest = (_map(data.get(k)) for k in ("kernel", "machine", "options", "guest"))
    diff = data.get("diff")
    return GateDocument(
        schema=GATE_SCHEMA if data.get("schema") in READABLE_SCHEMAS else _str(data.get("schema")),
        netkit=_str(data.get("netkit")),
        kernel=KernelRecord(_str(kernel.get("release")), _str(kernel.get("version")), _int(kernel.get("hz")),
                            _str(kernel.get("hz_source")), _extra(kernel, KernelRecord)),
        machine=MachineRecord(_str(machine.get("hostname")), _int(machine.get("cpus")),
                              _str(machine.get("virtualization")), machine.get("slow") is True,
                              _extra(machine, MachineRecord)),
        started=_str(data.get("started")), ended=_str(data.get("ended")), wall_s=_num(data.get("wall_s")),
        options=GateOptions(_int(options.get("repeat")), tuple(str(o) for o in _seq(options.get("only"))),
                            _str(options.get("matrix")), options.get("slow_machine") is True,
                            _str(options.get("baseline")), _str(options.get("known")),
                            _shard(options.get("shard")), _extra(options, GateOptions)),
        totals=_totals(data),
        scenarios=tuple(entry_from_dict(e) for e in _seq(data.get("scenarios")) if isinstance(e, Mapping)),
        diff=diff if isinstance(diff, Mapping) else None,
        guest=None if not isinstance(data.get("guest"), Mapping) else GuestRecord(
            _str(guest.get("kernel")), _str(guest.get("release")), _str(guest.get("image")), _int(guest.get("hz")),
            _str(guest.get("accel")), _num(guest.get("boot_s")), _num(guest.get("wall_s")), guest.get("slow") is True,
            _int(guest.get("exit_status")), _int(guest.get("jobs")), _str(guest.get("kvm_failure")),
            _str(guest.get("perturbation")), _extra(guest, GuestRecord)),
        extra=_extra(data, GateDocument),
    )


def document(doc: GateDocument | Mapping[str, Any]) -> GateDocument:
    """``doc`` as a typed document: the reports' entry points take either (a loaded file, or JSON as data)."""
    return doc if isinstance(doc, GateDocument) else from_dict(doc)


def entry(scenario: ScenarioEntry | Mapping[str, Any]) -> ScenarioEntry:
    """``scenario`` as a typed entry (a report's per-scenario helpers take either)."""
    return scenario if isinstance(scenario, ScenarioEntry) else entry_from_dict(scenario)


# ---------------------------------------------------------------- the dumper


def _plain(value: Any) -> Any:
    if isinstance(value, Ledger):
        return value.to_dict()  # the result JSON's form: runs name their arming by index
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _record(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _record(record: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.name == "extra" or (value is None and f.metadata.get("omit_none")):
            continue
        data[f.name] = _plain(value)
    data.update(getattr(record, "extra", {}))
    return data


def dump(doc: GateDocument) -> str:
    """The document as the text ``netkit gate --json FILE`` writes."""
    return json.dumps(to_dict(doc), indent=1) + "\n"


def to_dict(doc: GateDocument) -> dict[str, Any]:
    """The document as JSON data (``json.dumps`` writes it as ``netkit gate --json`` does)."""
    return _record(doc)


def run_to_dict(run: GateRun) -> dict[str, Any]:
    return _record(run)
