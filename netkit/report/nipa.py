"""The gate document as a NIPA result file, so netdev's CI ("contest") shows netkit beside the kernel's selftests.

NIPA (github.com/linux-netdev/nipa) collects the results of external
executors: each publishes one JSON file per run and a manifest pointing to
it; ``contest/results-collector.py`` fetches them.  The format, read from
NIPA's source:

* ``contest/remote/lib/fetcher.py``, ``Fetcher._run_test``: the file is
  ``{"executor", "branch", "start", "end", "results"}`` plus ``"link"`` when
  the run has one; ``start`` and ``end`` are ``str(datetime)`` in UTC
  (``2026-12-04 23:19:55+00:00``); ``results`` is what the executor's test
  callback returned.
* ``contest/remote/vmksft-p.py`` (its callback) and ``contest/remote/exec.py``:
  each result is ``{"test", "group", "result", "link"}`` plus optional
  ``"time"`` (seconds), ``"retry"``, ``"crashes"`` and nested ``"results"``;
  ``result`` is ``pass``, ``skip`` or ``fail``; names are made URL-safe by
  ``fetcher.namify`` (every run of characters other than ``[0-9a-zA-Z]``
  becomes ``-``, a trailing ``-`` dropped).
* ``contest/results-collector.py``: ``result_flatten`` reads ``group``,
  ``test``, ``result`` (anything but ``pass`` counts against a test's
  stability) and nested ``results``; ``fetch_remote``/
  ``result_matches_manifest_entry`` drop a file whose ``executor`` and
  ``branch`` differ from its manifest entry's; ``insert_result_psql`` stores
  ``branch``, ``branch[-17:]`` (the branch's date), ``start`` and ``end``
  (SQL timestamps) and ``executor`` in ``varchar(80)`` columns
  (``deploy/contest/db``).  The UI (``ui/contest.js``, ``ui/status.js``)
  counts ``pass``, ``skip`` and anything else as a failure, shows ``time`` and
  links ``link`` as the test's outputs.

So netkit writes one result per scenario: ``test`` the namified scenario id
(made distinct with ``-2``... should two ids namify alike), ``group``
``netkit``, ``time`` its wall time, ``link`` the run's link when given, and
``result`` as NIPA's own KTAP parser (``contest/remote/lib/results.py``,
``parse_nested_tests``) would read netkit's TAP line for it: pass, xfail
(``ok # XFAIL``) and xpass (``ok # XPASS``) -> ``pass``; skip -> ``skip``;
fail, error and an outcome this netkit does not know (``not ok``) -> ``fail``;
inconclusive (``ok # SKIP inconclusive: machine late ...``: the machine ran
the timers late, measured by the timer ledger, on the gate's retry too) ->
``skip``.  NIPA's words are pass, skip and fail, and its UI counts anything
but pass and skip as a failure: ``fail`` would page netdev about a busy
runner, ``pass`` would claim a proof that was not made; ``skip`` ("the
status of the code is unknown") is the honest one, and what the TAP line
and the pytest plugin say.  A scenario the gate retried (its first run
machine late) carries ``"retry"``, the word of its outcome after the retry,
as NIPA's ``vmksft-p`` records a rerun's result in ``retry``; ``result`` is
that outcome too (``pass`` or ``skip``), not the first run's: the first run
was not the kernel's failure, so it must not read ``fail`` there.
The file is what a netdev executor's callback returns in ``results``, inside
the run's envelope, so an executor can publish it as it is.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from ..document.codec import document
from ..document.records import GateDocument
from ..enums import GateOutcome
from .markdown import Doc, numbered_apart

GROUP = "netkit"
DEFAULT_EXECUTOR = "netkit"
NIPA_FIELD_MAX = 80  # deploy/contest/db: branch and executor are varchar(80)
RESULT: dict[str, str] = {  # as NIPA's parse_nested_tests reads netkit's TAP: ok -> pass, ok # SKIP -> skip, not ok -> fail
    **dict.fromkeys((GateOutcome.PASS, GateOutcome.XFAIL, GateOutcome.XPASS), "pass"),
    GateOutcome.SKIP: "skip", GateOutcome.FAIL: "fail", GateOutcome.ERROR: "fail",
    GateOutcome.INCONCLUSIVE: "skip",  # the module docstring says why
}
UNKNOWN_RESULT = "fail"


def result(outcome: str) -> str:
    """NIPA's ``pass``/``skip``/``fail`` for a gate outcome (the module docstring's mapping)."""
    return RESULT.get(outcome, UNKNOWN_RESULT)


def namify(what: str) -> str:
    """A name as NIPA's ``contest/remote/lib/fetcher.py`` ``namify`` makes it: ``1/1/3`` -> ``1-1-3``."""
    name = re.sub(r"[^0-9a-zA-Z]+", "-", what).rstrip("-")
    return name or "no-name"


def field_problem(option: str, value: str) -> str | None:
    """Why ``value`` cannot be NIPA's executor or branch name, or None."""
    if not value.strip():
        return f"{option}: give a name, not an empty string"
    if len(value) > NIPA_FIELD_MAX:
        return f"{option}: at most {NIPA_FIELD_MAX} characters (NIPA's results table), not {len(value)}"
    return None


def nipa_time(stamp: str | None, doc: GateDocument) -> str:
    """``2026-12-04T23:19:55Z`` as the fetcher writes times: ``str()`` of an aware UTC datetime."""
    try:
        when = datetime.datetime.strptime(stamp or "", "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return stamp or doc.started or ""
    return str(when.replace(tzinfo=datetime.UTC))


def nipa_document(doc: Doc, *, branch: str, executor: str = DEFAULT_EXECUTOR, link: str | None = None) -> dict[str, Any]:
    """NIPA's result file for a gate document: the run's envelope and one result per scenario."""
    doc = document(doc)
    results = []
    for scenario, name in zip(doc.scenarios, numbered_apart(namify(s.id) for s in doc.scenarios), strict=True):
        one: dict[str, Any] = {"test": name, "group": GROUP, "result": result(scenario.outcome)}
        if scenario.duration_s is not None:
            one["time"] = scenario.duration_s
        if scenario.retried is not None:
            one["retry"] = result(scenario.outcome)
        if link:
            one["link"] = link
        results.append(one)
    data: dict[str, Any] = {"executor": executor, "branch": branch, "start": nipa_time(doc.started, doc),
                            "end": nipa_time(doc.ended, doc)}
    if link:
        data["link"] = link
    data["results"] = results
    return data


def to_nipa(doc: Doc, *, branch: str, executor: str = DEFAULT_EXECUTOR, link: str | None = None) -> str:
    """``nipa_document`` as JSON text."""
    return json.dumps(nipa_document(doc, branch=branch, executor=executor, link=link), indent=1) + "\n"
