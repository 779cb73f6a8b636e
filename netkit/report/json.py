"""A scenario result as JSON: the keys of ``--json``, versioned by ``schema``.

It writes what the record stores (the judged death, its source and timing,
the count) and derives nothing; the record is imported for type checking
only, so this layer never loads the scenario machinery.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..scenario.result import ScenarioResult

# Bump when a key of result_dict() changes meaning or goes away.  /2: the judged death ("death_s",
# "death_source", "death_timing", "late_by_s", "late_only"), "count", and every event's "kind".
# /3: the timer ledger: "rule_failures", "evidence" ("trace"/"observer"), "evidence_note", "machine_late",
# "ledger"; "death_source" may be "trace".
SCHEMA = "netkit.scenario-result/3"


def result_dict(r: ScenarioResult) -> dict[str, Any]:
    """Every key of the scenario result, in the order ``--json`` has always printed them (``schema`` first).

    A many-connection scenario adds one last key, ``connections``.  ``machine_late`` set means the run
    failed as measured but not as the kernel ran it: a gate retries it, and calls it *inconclusive*
    (never pass, never the kernel's failure) if the retry is machine late too.
    """
    s, p = r.scenario, r.prediction
    data = {
        "schema": SCHEMA,
        "kernel": r.kernel.release,
        "hz": r.kernel.hz,
        "id": s.id,
        "family": s.family,
        "keepalive": s.keepalive.to_dict(),
        "keepalive_via": s.keepalive_via,
        "side": s.side,
        "fault": s.fault,
        "state": s.state,
        "rule": p.rule,
        "expected_s": p.expected_s,
        "window_s": list(p.window_s),
        "measured_s": r.measured_s,  # tcpi_last_ack_recv (or the clock since the send) when the observer woke
        "kernel_death_s": r.kernel_death_s,  # the RST that ended it, on the wire; the time judged when not null
        "observer_late_s": r.observer_late_s,
        "death_s": r.death_s,  # the time judged: kernel_death_s where not null, else measured_s (null: no death)
        "death_source": r.death_source,  # "trace", "wire" or "observer": whose clock death_s is
        "death_timing": r.death_timing,  # "inside", "early", "late" or "none", against the outcomes' windows
        "late_by_s": r.late_by_s,  # past the latest window's end, when late
        "late_only": r.late_only,  # missed only by lateness, with the predicted error and a predicted count
        "error": r.error,
        "expected_error": p.expected_error,
        "probes": r.probes,
        "retransmits": r.retransmits,
        "count_source": p.count_source,
        "count": r.count,  # the figure count_source names
        "expected_count": p.expected_count,
        "alternative_window_s": list(p.alternative_window_s) if p.alternative_window_s else None,
        "alternative_count": p.alternative_count,
        "keepalive_counter": r.keepalive_counter,
        "counters": dict(r.counters),
        "measured_from": p.measured_from,
        "retries2": s.retries2,
        "peer_error": r.peer_error,
        "peer_expected_error": p.peer_expected_error,
        "peer_lag_s": r.peer_lag_s,
        "fault_at_s": r.fault_at_s,
        "timeline": [e.to_dict() for e in r.timeline],
        "wire": r.wire.to_dict() if r.wire else None,
        "pcap": r.pcap,
        "verdict": r.verdict,
        "failures": [str(f) for f in r.failures],  # the rule's failures first, then the window's
        "kept_namespaces": list(r.kept_namespaces),
        "rule_failures": [str(f) for f in r.rule_failures],  # the ledger's armings against the rule, to the jiffy
        "evidence": r.evidence,  # "trace": the timer ledger judged the run; "observer": it could not (see the note)
        "evidence_note": r.evidence_note,  # why there is no ledger ("" with one)
        "machine_late": r.machine_late,  # failed as measured, passes with the machine's lateness taken out: why
        "ledger": r.ledger.to_dict() if r.ledger is not None else None,
    }
    if s.rto_max_ms is not None:  # only where the scenario sets them: a run without them reads as it always did
        data["rto_max_ms"], data["rto_max_via"] = s.rto_max_ms, str(s.rto_max_via)
    if s.rto_min_us is not None:
        data["rto_min_us"], data["rto_min_via"] = s.rto_min_us, str(s.rto_min_via)
    if s.expect_s is not None:  # the time judged was a person's, not the model's (window_s is its window)
        data["expect_s"] = s.expect_s
    if r.connections:  # only with Scenario.connections > 1: one connection's JSON is what it always was
        data["connections"] = connections_dict(r)
    if r.middlebox is not None:  # only for the routed topology: the router's conntrack entry and both ends
        data["middlebox"] = {**r.middlebox.to_dict(), "alive_until_s": p.alive_until_s}  # None: a death predicted
    elif p.alive_until_s is not None:  # a survival in the direct lab (a local drop on an idle connection)
        data["alive_until_s"] = p.alive_until_s
    if p.expected_backoff is not None:  # only where the rule fixes the backoff (a local drop): sampled while alive
        data["expected_backoff"], data["backoff_max"] = p.expected_backoff, r.backoff_max
    return data


def connections_dict(r: ScenarioResult) -> dict[str, Any]:
    """A many-connection scenario: how many, how many died inside the window, and every connection's death."""
    return {"count": len(r.connections), "passed": r.connections_passed, "deaths": [c.to_dict() for c in r.connections]}


def to_json(r: ScenarioResult) -> str:
    return json.dumps(result_dict(r))
