"""The gate document as JUnit XML, shaped like pytest's ``junit_family=xunit2`` output.

CI systems (GitLab, Jenkins, GitHub annotations) already read what pytest
writes, so the gate writes the same thing::

    <testsuites name="netkit.gate">
      <testsuite name="netkit.gate" tests= failures= errors= skipped= time= timestamp= hostname=>
        <properties><property name="kernel.release" value="..."/>...</properties>
        <testcase classname="netkit.gate.<state>.<fault>" name="<id>" time="4.600">
          <failure message="expected death at 4.000 s, window [...] s (rule ...); measured ...">explain</failure>
          <system-out>timeline, one event per line</system-out>
        </testcase>

Outcomes map as pytest maps them: fail -> ``<failure>``, error -> ``<error>``,
skip -> ``<skipped type="pytest.skip">``, xfail -> ``<skipped
type="pytest.xfail">`` (no body, as pytest), xpass -> a passing testcase (pytest
without ``strict``) whose system-out says the known failure did not occur.
``skipped`` counts skips and xfails, as pytest does.  An *inconclusive*
scenario (the machine ran the timers late, measured by the timer ledger, on
the gate's retry too) is ``<skipped type="pytest.skip" message="inconclusive:
machine late ...">``: exactly what the pytest plugin reports for the same case
(a skip: nothing proven, and no failure of the kernel's), counted in
``skipped``.  Each run's evidence (``trace``, or ``observer`` and why) is in
``system-out``, with a retried scenario's first, machine-late run.

Text goes through ElementTree, which escapes markup; characters XML 1.0 cannot
carry at all (NUL, ESC from a terminal...) are replaced first, as pytest's
``bin_xml_escape`` does, so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from ..document.codec import document, entry
from ..document.records import GateDocument, ScenarioEntry
from ..enums import GateOutcome
from .markdown import (
    Doc,
    Scenario,
    evidence_lines,
    failure_details,
    failure_message,
    format_s,
    inconclusive_text,
    known_text,
    retry_text,
)

SUITE_NAME = "netkit.gate"

# Characters XML 1.0 allows (https://www.w3.org/TR/xml/#charsets); anything else is shown as #xNN.
_ILLEGAL_XML = re.compile("[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def xml_text(value: Any) -> str:
    """Text XML can carry: illegal characters become ``#xNN`` (pytest's convention); markup is left to ET."""
    return _ILLEGAL_XML.sub(lambda m: f"#x{ord(m.group()):02X}", str(value))


def classname(scenario: Scenario) -> str:
    """``netkit.gate.<state>.<fault>``: CI tools group test cases by the dotted prefix."""
    scenario = entry(scenario)
    state, fault = scenario.state, scenario.fault
    if not (state and fault):
        state, _, fault = (scenario.group or "unknown/unknown").partition("/")
    return f"{SUITE_NAME}.{state}.{fault or 'unknown'}"


def timeline_text(scenario: Scenario) -> str:
    """Every run's timeline, one event per line: ``  1.024 s  [sampled]  probe 1 sent ...``."""
    scenario = entry(scenario)
    runs = scenario.runs
    lines: list[str] = []
    for n, run in enumerate(runs, 1):
        if len(runs) > 1:
            lines.append(f"run {n}/{len(runs)}: {run.verdict or '?'}")
        lines += evidence_lines(run).splitlines()
        for event in run.timeline:
            tag = f"[{event.source}]" if event.source else ""
            lines.append(f"{format_s(event.t_s):>9} s  {tag:9} {event.what}".rstrip())
    if scenario.retried is not None:
        lines.append(retry_text(scenario))
    if scenario.outcome == GateOutcome.XPASS:
        lines.append(f"XPASS: the known failure did not occur: {known_text(scenario.known) or scenario.reason}")
    return "\n".join(lines)


def _testcase(suite: ET.Element, scenario: ScenarioEntry) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=xml_text(classname(scenario)),
        name=xml_text(scenario.id),
        time=f"{scenario.duration_s or 0.0:.3f}",
    )
    outcome = scenario.outcome
    reason = scenario.reason or ""
    if outcome == GateOutcome.FAIL:
        failure = ET.SubElement(case, "failure", message=xml_text(failure_message(scenario)))
        failure.text = xml_text(failure_details(scenario))
    elif outcome == GateOutcome.ERROR:
        error = ET.SubElement(case, "error", message=xml_text(reason or "error"))
        error.text = xml_text(reason)
    elif outcome == GateOutcome.SKIP:
        skipped = ET.SubElement(case, "skipped", type="pytest.skip", message=xml_text(reason or "skipped"))
        skipped.text = xml_text(reason)
    elif outcome == GateOutcome.INCONCLUSIVE:
        skipped = ET.SubElement(case, "skipped", type="pytest.skip", message=xml_text(inconclusive_text(reason)))
        skipped.text = xml_text(failure_details(scenario))
    elif outcome == GateOutcome.XFAIL:
        why = known_text(scenario.known) or reason or "known failure"
        ET.SubElement(case, "skipped", type="pytest.xfail", message=xml_text(why))
    timeline = timeline_text(scenario)
    if timeline:
        ET.SubElement(case, "system-out").text = xml_text(timeline)


def _properties(suite: ET.Element, doc: GateDocument) -> None:
    """Where the gate ran, as pytest's ``record_testsuite_property`` would record it."""
    kernel, machine = doc.kernel, doc.machine
    values: list[tuple[str, Any]] = [
        ("schema", doc.schema),
        ("netkit", doc.netkit),
        ("kernel.release", kernel.release),
        ("kernel.version", kernel.version),
        ("kernel.hz", kernel.hz),
        ("kernel.hz_source", kernel.hz_source),
        ("machine.cpus", machine.cpus),
        ("machine.virtualization", machine.virtualization),
        ("machine.slow", machine.slow),
        ("started", doc.started),
        ("ended", doc.ended),
    ]
    properties = ET.SubElement(suite, "properties")
    for name, value in values:
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        ET.SubElement(properties, "property", name=name, value=xml_text(text))


def to_junit(doc: Doc, hostname: str | None = None) -> str:
    """JUnit XML (pytest's xunit2 family) for a gate document.

    ``hostname`` defaults to ``machine.hostname`` if the document has one
    (the gate document does not promise it), else the empty string: this
    function reads nothing but its arguments.
    """
    doc = document(doc)
    scenarios = doc.scenarios
    outcomes = [s.outcome for s in scenarios]
    root = ET.Element("testsuites", name=SUITE_NAME)  # pytest >= 8 names it too ("pytest tests")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=SUITE_NAME,
        errors=str(outcomes.count("error")),
        failures=str(outcomes.count("fail")),
        skipped=str(outcomes.count("skip") + outcomes.count("xfail") + outcomes.count("inconclusive")),
        tests=str(len(scenarios)),
        time=f"{doc.wall_s or 0.0:.3f}",
        timestamp=xml_text(doc.started or ""),
        hostname=xml_text(hostname if hostname is not None else doc.machine.hostname or ""),
    )
    _properties(suite, doc)
    for scenario in scenarios:
        _testcase(suite, scenario)
    ET.indent(root)  # only whitespace between elements; leaf text (explain, timeline) is untouched
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["to_junit", "classname", "timeline_text", "xml_text"]
