"""The timer ledger on the HTML report's timeline: armings, buckets, runs and lateness on the probes' axis.

Pure, no root: the runs are the hand-written 1/1/3 keepalive ledger of
:mod:`synthetic_ledger` (on time, or its killing run 60 ms late), read back
as the gate reads a run; the SVG is parsed with xml.etree and every mark's
x is mapped back to seconds through the axis the SVG states.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

import pytest
from synthetic_ledger import HZ, keepalive_ledger, keepalive_result

from netkit.document.codec import run_from_dict
from netkit.document.records import GateDocument, GateRun, ScenarioEntry
from netkit.evidence.ledger import Arming, Ledger, TimerRun
from netkit.report.html import to_html
from netkit.report.html_scenario import legend, section
from netkit.report.timeline import BOTTOM, LANE, TOP, axis_for, timeline_svg
from netkit.report.timeline_ledger import LATE_COLOUR, ON_TIME_COLOUR, ROW, bucket_s

SVG = "{http://www.w3.org/2000/svg}"


def run_of(late_s: float = 0.0, **changes: object) -> GateRun:
    """A gate run as the gate's worker gives it: the result's JSON and its explain text."""
    result = keepalive_result(late_s, **changes)
    return run_from_dict({**result.to_dict(), "explain": result.explain()})


def scenario_of(*runs: GateRun) -> ScenarioEntry:
    return ScenarioEntry("ipv4-idle-blackhole-1/1/3", outcome="fail", window_s=(3.996, 4.136), expected_s=4.0,
                         runs=runs)


class Svg:
    """The timeline as XML, with its axis read back from the root's data-t0/t1/x0/x1."""

    def __init__(self, scenario: ScenarioEntry) -> None:
        text = timeline_svg(scenario).replace('<svg class="timeline"', f'<svg xmlns="{SVG[1:-1]}" class="timeline"', 1)
        self.root = ET.fromstring(text)
        self.t0, self.t1, self.x0, self.x1 = (float(self.root.get(k, "nan")) for k in
                                              ("data-t0", "data-t1", "data-x0", "data-x1"))

    def t(self, x: float) -> float:
        """The moment the axis puts at ``x``."""
        return self.t0 + (x - self.x0) / (self.x1 - self.x0) * (self.t1 - self.t0)

    def groups(self, cls: str) -> list[ET.Element]:
        """The ``<g>`` whose class is exactly ``cls`` (``ledger run`` is not ``ledger run late``)."""
        return [g for g in self.root.iter(f"{SVG}g") if g.get("class") == cls]

    def ledger_marks(self) -> list[ET.Element]:
        return [g for g in self.root.iter(f"{SVG}g") if (g.get("class") or "").startswith("ledger")]


def title(element: ET.Element) -> str:
    return element.findtext(f"{SVG}title") or ""


def tick_x(group: ET.Element) -> float:
    line = group.find(f"{SVG}line")
    assert line is not None, ET.tostring(group)
    assert line.get("x1") == line.get("x2")  # a vertical tick
    return float(line.get("x1", "nan"))


def test_every_arming_and_run_is_a_mark_at_its_moment_on_the_probes_axis():
    run = run_of(0.060)
    ledger = run.ledger
    assert ledger is not None and ledger == keepalive_ledger(0.060)
    svg = Svg(scenario_of(run))
    armings = svg.groups("ledger arming")
    runs = svg.groups("ledger run") + svg.groups("ledger run late")
    assert len(armings) == len(ledger.armings) == 4 and len(runs) == len(ledger.runs) == 4
    px = (svg.x1 - svg.x0) / (svg.t1 - svg.t0)  # pixels a second: the drawing rounds x to 0.01 px
    for mark, arming in zip(armings, ledger.armings, strict=True):
        assert svg.t(tick_x(mark)) == pytest.approx(arming.t_s, abs=0.01 / px)
        assert f"requested expiry jiffy {arming.expires}" in title(mark) and f"bucket jiffy {arming.bucket}" in title(mark)
    buckets = svg.groups("ledger bucket")
    assert len(buckets) == len(ledger.armings)  # each arming fired: no hollow bucket
    for mark, arming in zip(buckets, ledger.armings, strict=True):
        due = arming.t_s + (arming.bucket - arming.now) / HZ
        assert svg.t(tick_x(mark)) == pytest.approx(due, abs=0.01 / px)
        assert bucket_s(arming, HZ) == pytest.approx(due)
    ran = sorted(runs, key=lambda g: float(g.get("data-t", "nan")))
    for mark, timer_run in zip(ran, ledger.runs, strict=True):
        circle = mark.find(f"{SVG}circle")
        assert circle is not None
        assert svg.t(float(circle.get("cx", "nan"))) == pytest.approx(timer_run.t_s, abs=0.01 / px)
        assert f"ran at jiffy {timer_run.now}" in title(mark)
    # the axis is the one the probes are drawn on, computed without the ledger
    axis = axis_for([dataclasses.replace(run, ledger=None)])
    assert (svg.t0, svg.t1) == (pytest.approx(axis.t0, abs=1e-6), pytest.approx(axis.t1, abs=1e-6))


def test_a_late_run_is_red_with_its_lateness_in_ms_and_an_on_time_one_green():
    svg = Svg(scenario_of(run_of(0.060)))
    (late,) = svg.groups("ledger run late")
    circle = late.find(f"{SVG}circle")
    assert circle is not None and circle.get("fill") == LATE_COLOUR
    assert "60.000 ms after its bucket's start: LATE (more than a jiffy, 4 ms at HZ=250)" in title(late)
    on_time = svg.groups("ledger run")
    assert len(on_time) == 3
    assert all(g.find(f"{SVG}circle").get("fill") == ON_TIME_COLOUR for g in on_time)  # type: ignore[union-attr]
    assert all("0.000 ms after its bucket's start: on time" in title(g) for g in on_time)
    (segment,) = svg.groups("ledger late over")  # from the bucket's start to the run, in the late colour
    line = segment.find(f"{SVG}line")
    assert line is not None and line.get("stroke") == LATE_COLOUR
    start, end = svg.t(float(line.get("x1", "nan"))), svg.t(float(line.get("x2", "nan")))
    assert end - start == pytest.approx(0.060, abs=0.0001)  # the ledger's late_s, from the bucket's start
    assert end == pytest.approx(4.156, abs=0.0001) and start == pytest.approx(4.096, abs=0.0001)
    assert len(svg.groups("ledger late")) == 3  # the on-time ones: a segment of no length


def test_a_run_one_jiffy_late_or_less_is_on_time():
    ledger = keepalive_ledger(0.0)
    last = ledger.runs[-1]
    within, beyond = (dataclasses.replace(last, late_s=s) for s in (1 / HZ, 1 / HZ + 0.0001))
    for run, cls in ((within, "ledger run"), (beyond, "ledger run late")):
        changed = dataclasses.replace(ledger, runs=(*ledger.runs[:-1], run))
        svg = Svg(scenario_of(GateRun(evidence="trace", ledger=changed)))
        assert [float(g.get("data-t", "nan")) for g in svg.groups(cls)][-1] == last.t_s


def test_the_kernels_death_is_marked_with_its_errno():
    run = run_of(0.0)
    assert run.ledger is not None and run.ledger.death is not None
    svg = Svg(scenario_of(run))
    (death,) = svg.groups("ledger death")
    assert "errno 110 (ETIMEDOUT)" in title(death) and "tcp_keepalive_timer's run" in title(death)
    path = death.find(f"{SVG}path")
    assert path is not None
    x = float(re.match(r"M([\d.]+),", path.get("d", "")).group(1)) + 5  # type: ignore[union-attr]
    assert svg.t(x) == pytest.approx(run.ledger.death.t_s, abs=0.0001)
    assert "errno 110" in "".join(svg.root.itertext())
    assert len(svg.groups("death")) == 1  # the judged death is still drawn once, apart


def test_an_observer_run_has_no_ledger_marks_and_says_why():
    svg = Svg(scenario_of(run_of(0.060, ledger=False)))
    assert svg.ledger_marks() == []
    (caption,) = [t for t in svg.root.iter(f"{SVG}text") if (t.get("class") or "").startswith("evidence")]
    assert caption.get("class") == "evidence observer"
    assert title(caption) == "observer: tracefs is not mounted here"
    assert float(svg.root.get("height", "nan")) == TOP + LANE + BOTTOM  # no ledger rows


def test_lanes_with_and_without_a_ledger_stack_without_overlap():
    trace, observer = run_of(0.0), run_of(0.0, ledger=False)
    svg = Svg(scenario_of(trace, observer, trace))
    assert float(svg.root.get("height", "nan")) == TOP + 3 * LANE + 2 * (ROW + 4) + BOTTOM
    assert len(svg.groups("ledger arming")) == 2 * 4
    captions = [t for t in svg.root.iter(f"{SVG}text") if (t.get("class") or "").startswith("evidence")]
    assert [c.get("class") for c in captions] == ["evidence trace", "evidence observer", "evidence trace"]
    assert "timer ledger at HZ=250: 4 armings, 4 runs, the kernel's death at 4.096 s" in title(captions[0])
    ys = [float(c.get("y", "nan")) for c in captions]
    first_rows = [float(g.find(f"{SVG}circle").get("cy", "nan")) for g in svg.groups("ledger run")][:4]  # type: ignore[union-attr]
    assert ys[0] < min(first_rows) <= max(first_rows) < ys[1] - 17  # run 1's ledger row, then run 2's lane


def test_moments_off_the_axis_are_held_at_its_edge_and_say_so():
    ledger = keepalive_ledger(0.0)
    early = Arming(-1.5, ledger.armings[0].function, 625, 875, 875, False)  # a setsockopt 1.5 s before t = 0
    pending = Arming(3.0, ledger.armings[0].function, 1750, 3000, 3000, True)  # a bucket 5 s later: never ran
    changed = dataclasses.replace(ledger, armings=(early, *ledger.armings, pending))
    svg = Svg(scenario_of(GateRun(evidence="trace", ledger=changed, window_s=(3.996, 4.136))))
    assert svg.t0 > -1.5 and svg.t1 < 8.0  # the axis is the probes' and the window's, not the ledger's
    (left,) = [g for g in svg.groups("ledger arming") if g.get("data-clipped")]
    assert left.get("data-clipped") == "left" and "at -1.500000 s" in title(left)
    unrun = svg.groups("ledger bucket unrun")  # neither the early arming nor the pending one fired
    assert [g.get("data-clipped") for g in unrun] == ["left", "right"]
    assert all("no run of this arming in the ledger" in title(g) for g in unrun)
    assert len(svg.groups("ledger arming")) == len(changed.armings)


def test_dozens_of_armings_keep_the_lane_height_and_every_mark():
    hz, function = 1000, "tcp_write_timer"
    armings = tuple(Arming(round(0.05 * k, 6), function, 1000 + 50 * k, 1050 + 50 * k, 1050 + 50 * k, k > 0)
                    for k in range(60))
    runs = tuple(TimerRun(round(0.05 * (k + 1), 6), function, 1050 + 50 * k, armings[k], 0.0) for k in range(59))
    svg = Svg(scenario_of(GateRun(evidence="trace", ledger=Ledger(hz, armings, runs, None), measured_s=3.0)))
    assert len(svg.groups("ledger arming")) == 60 and len(svg.groups("ledger run")) == 59
    assert len(svg.groups("ledger bucket")) == 59 and len(svg.groups("ledger bucket unrun")) == 1
    assert float(svg.root.get("height", "nan")) == TOP + LANE + ROW + 4 + BOTTOM  # one row: the write timer's


def test_a_document_without_ledgers_draws_as_before():
    svg = Svg(scenario_of(GateRun(measured_s=4.1, window_s=(3.996, 4.136))))
    assert svg.ledger_marks() == [] and float(svg.root.get("height", "nan")) == TOP + LANE + BOTTOM
    assert "timer armed (ledger)" in legend() and "timer armed (ledger)" not in legend(ledger=False)
    page = to_html(GateDocument(scenarios=(scenario_of(GateRun(measured_s=4.1)),)))
    assert "timer armed (ledger)" not in page
    page = to_html(GateDocument(scenarios=(scenario_of(run_of(0.060)),)))
    assert "timer armed (ledger)" in page and "more than a jiffy after its bucket" in page


def test_the_section_shows_the_machine_late_sentence_and_names_the_rule_failures():
    late = run_of(0.060)
    assert late.machine_late
    text = section(1, scenario_of(late))
    assert f"<b>machine late:</b> {late.machine_late}" in text
    written = keepalive_ledger(0.060).to_dict()
    written["armings"][2]["bucket"] += 8  # the second re-arm queued one bucket (8 jiffies at this level) off
    broken = run_from_dict({**keepalive_result(0.060).to_dict(), "ledger": written,
                            "rule_failures": ["the wheel's rounding: arming 3 queued at bucket 1508"],
                            "failures": ["the wheel's rounding: arming 3 queued at bucket 1508", "died late"]})
    text = section(1, scenario_of(broken))
    assert "<li><b>rule (ledger):</b> the wheel&#x27;s rounding: arming 3 queued at bucket 1508</li>" in text
    assert "<li>died late</li>" in text
    only_rule = dataclasses.replace(broken, failures=("died late",))  # a rule failure the failures do not repeat
    assert "<b>rule (ledger):</b> the wheel" in section(1, scenario_of(only_rule))
    lost = dataclasses.replace(late, ledger=dataclasses.replace(keepalive_ledger(0.060), lost=True))
    assert "timer ledger incomplete:</b> the trace buffer overflowed" in section(1, scenario_of(lost))


def test_a_ledger_this_netkit_cannot_read_is_not_drawn_and_the_lane_says_so():
    run = run_from_dict({**keepalive_result(0.0).to_dict(), "ledger": {"hz": 250, "armings": "newer"}})
    assert run.ledger is None and run.evidence == "trace"
    svg = Svg(scenario_of(run))
    assert svg.ledger_marks() == []
    (caption,) = [t for t in svg.root.iter(f"{SVG}text") if (t.get("class") or "").startswith("evidence")]
    assert title(caption) == "trace: a timer ledger this netkit cannot read, not drawn"
