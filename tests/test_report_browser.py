"""The HTML report as a person sees it: a real gate's page in headless Chromium (tests/browser.py).

The gate is real: ``netkit gate --matrix tests/data/browser-matrix.toml
--known tests/data/browser-known.toml`` on this kernel, ~8 s, with three
passes, a failure (the matrix expects a death a second after the kernel's
rule puts it: EARLY), an xfail (half a second before: LATE, a known
difference) and a skip.  Its ``--html`` page is what the browser opens, at
1400 px and at 390 px (a phone), and each check reads what Chromium laid
out: boxes, colours, the requests it made, its console.

Each check is a function that returns what it found wrong, so that the
tests of the tests below can plant a defect (a matrix cell dropped, an
external stylesheet, a zero-width timeline, a label moved onto another) and
see the check name it.  The screenshots, the page and its document are kept
in ``$NETKIT_ARTIFACTS/browser`` (``.ci/run`` sets it; else the test's
temporary folder), for a person to look at after CI.

Where the browser is missing the tests skip, saying how to install it --
except under ``scripts/test`` (``NETKIT_REQUIRE_BROWSER=1``), which has just
provisioned it: there a missing browser fails.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from browser import Browser, chromium, find_tools
from conftest import browser_tools, gate, one_whole_gate_at_a_time

from netkit.document.records import GATE_SCHEMA
from netkit.exitcodes import EXIT_FAIL
from netkit.privileges import missing_privileges
from netkit.report.htmlkit import STYLE
from netkit.report.timeline import MARK_COLOURS

DATA = Path(__file__).parent / "data"
WIDE, NARROW = (1400, 1000), (390, 844)  # a desktop; a phone (Chromium's iPhone 12 size), emulated as mobile
OUTCOMES = {"pass": 3, "fail": 1, "xfail": 1, "skip": 1}  # what browser-matrix.toml and browser-known.toml give
LEGIBLE_PX = 9  # a label's line box, CSS px: 14 at full size (12 px text); a timeline squeezed onto a phone made it 4
DRAWN_KINDS = {kind.value for kind in MARK_COLOURS}  # a timeline event drawn as a marker (a probe, a retransmission)


@pytest.fixture(scope="module")
def tools():
    return browser_tools()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    root = os.environ.get("NETKIT_ARTIFACTS")
    folder = Path(root) / "browser" if root else tmp_path_factory.mktemp("browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def real_gate(tools, artifacts, tmp_path_factory, request):
    """The gate's document and page, written by ``netkit gate`` on this kernel."""
    if missing_privileges():
        pytest.skip(missing_privileges())
    request.getfixturevalue("netkit_pool").wait_idle()  # the suite's scenarios done: this gate measures the kernel
    out = tmp_path_factory.mktemp("browser-gate")
    document, page = artifacts / "gate.json", artifacts / "gate.html"
    with one_whole_gate_at_a_time():
        done = gate("--matrix", str(DATA / "browser-matrix.toml"), "--known", str(DATA / "browser-known.toml"),
                    "--json", str(document), "--html", str(page),
                    "--pcap-dir", str(out), timeout=100)  # the failed cell's capture: not left in /tmp
    assert done.returncode == EXIT_FAIL and document.exists(), (done.returncode, done.stderr[-3000:])
    doc = json.loads(document.read_text())
    got = {k: v for k, v in doc["totals"].items() if v}
    # A passing cell the ledger measured machine late twice is inconclusive, the gate's documented outcome for a
    # busy machine: the page must show that as well as a pass, so only the planted outcomes are exact.
    late = got.pop("inconclusive", 0)
    assert got == {**OUTCOMES, "pass": OUTCOMES["pass"] - late} and late < OUTCOMES["pass"], \
        f"the gate's outcomes are {doc['totals']}, not {OUTCOMES}:\n{done.stdout[-3000:]}"
    return doc, page


@pytest.fixture(scope="module")
def browser(tools):
    with chromium(tools) as b:
        yield b


def opened(b: Browser, page: Path, size: tuple[int, int] = WIDE) -> Browser:
    b.open(page, *size)
    return b


def planted(page: Path, tmp_path: Path, old: str | re.Pattern[str], new: str) -> Path:
    """A copy of ``page`` with one defect: ``old`` (text or the first match of a pattern) replaced by ``new``."""
    text = page.read_text()
    changed = old.sub(new, text, count=1) if isinstance(old, re.Pattern) else text.replace(old, new, 1)
    assert changed != text, f"nothing to plant: {old!r} is not in the page"
    copy = tmp_path / "planted.html"
    copy.write_text(changed)
    return copy


# ---------------------------------------------------------------- the checks: each returns what it found wrong

RECTS = """
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const shown = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
"""


def badge_problems(b: Browser, doc: dict) -> list[str]:
    """The title and the header name the kernel and the verdict; each badge's count is the document's total."""
    seen = b.run(RECTS + """
        return {title: document.title, h1: document.querySelector('h1').innerText,
                badges: Array.from(document.querySelectorAll('.badges .badge')).filter(shown).map(
                    e => [e.innerText, box(e)])};""")
    problems = []
    release = doc["kernel"]["release"]
    if release not in seen["title"]:
        problems.append(f"the title {seen['title']!r} does not name the kernel {release}")
    verdict = "FAILED" if doc["totals"]["fail"] or doc["totals"]["error"] else "passed"
    if seen["h1"] != f"netkit gate {verdict} on {release}":
        problems.append(f"the heading says {seen['h1']!r}")
    counts = {}
    for text, (left, top, right, bottom) in seen["badges"]:
        number, _, outcome = text.strip().partition(" ")
        counts[outcome.lower()] = int(number)
        if right - left < 10 or bottom - top < 10:
            problems.append(f"the badge {text!r} is not laid out ({right - left:.0f} x {bottom - top:.0f} px)")
    if counts != doc["totals"]:
        problems.append(f"the badges count {counts}, the document {doc['totals']}")
    return problems


def matrix_problems(b: Browser, doc: dict) -> list[str]:
    """Every scenario has one shown cell with its median (or SKIP), coloured by outcome, linking to its section."""
    cells = b.run(RECTS + """
        return Array.from(document.querySelectorAll('table.matrix')).filter(shown).flatMap(
            t => Array.from(t.querySelectorAll('td a'))).map(a => {
                const target = document.getElementById(a.getAttribute('href').slice(1));
                return {title: a.title, text: a.innerText, href: a.getAttribute('href'), box: box(a),
                        background: getComputedStyle(a).backgroundColor,
                        section: target && target.tagName === 'SECTION' ? target.className : null};
            });""")
    problems = []
    for scenario in doc["scenarios"]:
        sid, outcome = scenario["id"], scenario["outcome"]
        mine = [c for c in cells if c["title"].startswith(sid + ":")]
        if len(mine) != 1:
            problems.append(f"{sid}: {len(mine)} cells shown in the matrix, not 1")
            continue
        cell = mine[0]
        measured = scenario.get("measured_s")
        want = {"skip": "SKIP", "inconclusive": "LATE"}.get(outcome) or (f"{measured['median']:.3f} s" if measured
                                                                       else None)
        if want is not None and want not in cell["text"]:
            problems.append(f"{sid}: the cell says {cell['text']!r}, not {want!r}")
        left, top, right, bottom = cell["box"]
        if right - left < 20 or bottom - top < 20:
            problems.append(f"{sid}: the cell is {right - left:.0f} x {bottom - top:.0f} px")
        colour = rgb(STYLE[outcome][1])
        if cell["background"] != colour:
            problems.append(f"{sid}: the cell's background is {cell['background']}, not the {outcome} colour {colour}")
        if cell["section"] != f"scenario o-{outcome}":
            problems.append(f"{sid}: the cell links to {cell['href']}, which is {cell['section'] or 'no section'}")
    if len(cells) != len(doc["scenarios"]):
        problems.append(f"{len(cells)} cells shown for {len(doc['scenarios'])} scenarios")
    return problems


def timeline_problems(b: Browser, doc: dict) -> list[str]:
    """Each run's timeline is laid out, with one shown marker per probe, retransmission or zero-window probe."""
    drawn = b.run(RECTS + """
        return Array.from(document.querySelectorAll('section.scenario')).map(s => ({
            id: s.querySelector('h3 code').innerText,
            svgs: Array.from(s.querySelectorAll('svg.timeline')).map(box),
            marks: Array.from(s.querySelectorAll('svg.timeline g.event:not(.rst)')).filter(shown).map(
                g => [g.getAttribute('class'), box(g)])}));""")
    by_id = {d["id"]: d for d in drawn}
    problems = []
    for scenario in doc["scenarios"]:
        sid, runs = scenario["id"], scenario["runs"]
        found = by_id.get(sid)
        if found is None:
            problems.append(f"{sid}: no section")
            continue
        if runs and len(found["svgs"]) != 1:
            problems.append(f"{sid}: {len(found['svgs'])} timelines for its runs, not 1")
        for left, top, right, bottom in found["svgs"]:
            if right - left < 200 or bottom - top < 40:
                problems.append(f"{sid}: its timeline is laid out {right - left:.0f} x {bottom - top:.0f} px")
        events = [e for run in runs for e in run["timeline"] if e["kind"] in DRAWN_KINDS and e.get("t_s") is not None]
        if len(found["marks"]) != len(events):
            problems.append(f"{sid}: {len(found['marks'])} markers shown for {len(events)} probes and retransmissions")
        probes = [r["probes"] for r in runs if r.get("count_source") == "tcpi_probes"]
        shown_probes = sum(1 for cls, _ in found["marks"] if cls.startswith("event probe "))
        if probes and shown_probes != sum(probes):
            problems.append(f"{sid}: {shown_probes} probe markers where tcpi_probes says {sum(probes)}")
        for cls, (left, top, right, bottom) in found["marks"]:
            if right - left <= 0 or bottom - top <= 0:
                problems.append(f"{sid}: a {cls!r} marker has no size")
    return problems


def label_problems(b: Browser, doc: dict) -> list[str]:
    """A run judged EARLY or LATE says so beside its death, inside its timeline, on top, over no other text."""
    labels = b.run(RECTS + """
        const overlap = (a, b) => a[0] < b[2] - 0.5 && b[0] < a[2] - 0.5 && a[1] < b[3] - 0.5 && b[1] < a[3] - 0.5;
        return Array.from(document.querySelectorAll('section.scenario')).map(s => {
            const svg = s.querySelector('svg.timeline');
            if (!svg) return null;
            const texts = Array.from(svg.querySelectorAll('text'));
            const label = texts.find(t => /(EARLY|LATE)\\)$/.test(t.textContent));
            if (!label) return {id: s.querySelector('h3 code').innerText, label: null};
            label.scrollIntoView({block: 'center'});  // then every box below is in this one viewport
            const mine = box(label), frame = box(svg.closest('.timeline-frame') || svg);  // the part in sight
            const top = document.elementFromPoint((mine[0] + mine[2]) / 2, (mine[1] + mine[3]) / 2);
            return {id: s.querySelector('h3 code').innerText, label: label.textContent, box: mine, frame: frame,
                    shown: shown(label) && getComputedStyle(label).opacity !== '0',
                    on_top: top === label || label.contains(top),
                    under: texts.filter(t => t !== label && overlap(box(t), mine)).map(t => t.textContent)};
        }).filter(x => x);""")
    problems = []
    judged = {s["id"]: s for s in doc["scenarios"] if s["outcome"] in ("fail", "xfail")}
    passed = {s["id"] for s in doc["scenarios"] if s["outcome"] == "pass"}
    for found in labels:
        scenario = judged.get(found["id"])
        if scenario is None:
            if found["label"] and found["id"] in passed:
                problems.append(f"{found['id']} ({found['label']!r}) is labelled off its window but passed")
            continue
        timing = scenario["runs"][0].get("death_timing", "").upper()
        if not found["label"] or not found["label"].endswith(f"{timing})"):
            problems.append(f"{found['id']}: its death is labelled {found['label']!r}, not {timing}")
            continue
        (left, top, right, bottom), (f_left, f_top, f_right, f_bottom) = found["box"], found["frame"]
        if not (found["shown"] and right - left > 20):
            problems.append(f"{found['id']}: the label {found['label']!r} is not shown")
        elif bottom - top < LEGIBLE_PX:
            problems.append(f"{found['id']}: the label {found['label']!r} is {bottom - top:.1f} px tall, not legible")
        if left < f_left - 0.5 or right > f_right + 0.5 or top < f_top - 0.5 or bottom > f_bottom + 0.5:
            problems.append(f"{found['id']}: the label {found['label']!r} runs out of its timeline's frame")
        if found["under"]:
            problems.append(f"{found['id']}: the label {found['label']!r} overlaps {found['under']}")
        if not found["on_top"]:
            problems.append(f"{found['id']}: the label {found['label']!r} is covered by another element")
    missing = set(judged) - {f["id"] for f in labels if f["label"]}
    problems += [f"{sid}: no EARLY or LATE label" for sid in sorted(missing)]
    return problems


def request_problems(b: Browser) -> list[str]:
    """The page asked for nothing but itself: no stylesheet, font, image or script, local or remote."""
    urls = b.requests()
    return [f"the page requested {url}" for url in urls if url != b.url] + (
        [] if b.url in urls else [f"the page itself ({b.url}) was never requested: is the log read?"])


def console_problems(b: Browser) -> list[str]:
    return [f"console {entry['level']}: {entry['message']}" for entry in b.console()
            if entry["level"] in ("SEVERE", "WARNING")]


def overflow_problems(b: Browser, width: int) -> list[str]:
    """Nothing runs off the side: the page is no wider than the viewport, and the shown matrix fits in it."""
    seen = b.run(RECTS + """
        return {page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth,
                matrices: Array.from(document.querySelectorAll('table.matrix')).filter(shown).map(box)};""")
    problems = []
    if seen["page"] > seen["view"]:
        problems.append(f"the page is {seen['page']} px wide in a {seen['view']} px viewport")
    if len(seen["matrices"]) != 1:
        problems.append(f"{len(seen['matrices'])} matrices shown at {width} px, not 1")
    problems += [f"the matrix spans {left:.0f}..{right:.0f} px of {width}"
                 for left, _, right, _ in seen["matrices"] if left < 0 or right > width]
    return problems


def rgb(hex_colour: str) -> str:
    """``#fbd3d3`` as a computed style says it: ``rgb(251, 211, 211)``."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


# ---------------------------------------------------------------- the real page


PAGE_CHECKS = [  # (what a person reads, the check, at which widths): each returns what it found wrong
    ("title-and-badges", badge_problems, [WIDE]),
    ("matrix-cells", matrix_problems, [WIDE, NARROW]),
    ("timelines-and-marks", timeline_problems, [WIDE]),
    ("early-late-labels", label_problems, [WIDE, NARROW]),
]


@pytest.mark.slow
@pytest.mark.parametrize("check, size", [pytest.param(check, size, id=f"{name}-{size[0]}px")
                                         for name, check, sizes in PAGE_CHECKS for size in sizes])
def test_the_real_page_shows_what_its_document_says(real_gate, browser, check, size):
    doc, page = real_gate
    assert check(opened(browser, page, size), doc) == []


@pytest.mark.slow
def test_a_failing_cell_takes_the_reader_to_its_scenario(real_gate, browser):
    doc, page = real_gate
    b = opened(browser, page)
    failing = next(s["id"] for s in doc["scenarios"] if s["outcome"] == "fail")
    landed = b.run("""
        const a = Array.from(document.querySelectorAll('table.matrix.wide td a')).find(
            a => a.title.startsWith(arguments[0] + ':'));
        a.click();
        const section = document.getElementById(location.hash.slice(1));
        return [location.hash, section.querySelector('h3 code').innerText,
                Math.round(section.getBoundingClientRect().top)];""", failing)
    assert landed[1] == failing and abs(landed[2]) <= 1, landed  # scrolled to the top of its own section


@pytest.mark.slow
def test_the_page_requests_nothing_and_logs_no_error(real_gate, browser):
    _, page = real_gate
    b = opened(browser, page)
    assert request_problems(b) + console_problems(b) == []


@pytest.mark.slow
@pytest.mark.parametrize("size", [WIDE, NARROW], ids=["wide", "narrow"])
def test_the_page_fits_its_viewport_and_is_photographed(real_gate, browser, artifacts, size):
    _, page = real_gate
    b = opened(browser, page, size)
    name = "wide" if size == WIDE else "narrow"
    shot = b.screenshot(artifacts / f"gate-{name}-{size[0]}px.png")
    assert overflow_problems(b, size[0]) == []
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_real_documents_expectations_and_known_outcomes_meet_the_gate_schema(real_gate):
    from test_schemas import assert_valid

    doc, _ = real_gate
    assert_valid(GATE_SCHEMA, doc)  # closed: expect_s, the xfail's known difference, the skip's are all described
    planted_cells = [r for s in doc["scenarios"] for r in s["runs"] if r.get("expect_s") is not None]
    assert sorted((r["expect_s"], r["death_timing"]) for r in planted_cells) == [(3.5, "late"), (5, "early")]


# ---------------------------------------------------------------- the tests of the tests: a planted defect is named


@pytest.mark.slow
def test_a_cell_dropped_from_the_matrix_is_named(real_gate, browser, tmp_path):
    doc, page = real_gate
    gone = doc["scenarios"][0]["id"]
    cell = re.compile(r'<a href="#s1-[^"]*"[^>]*>.*?</a>')  # the first scenario's cell, in the wide and narrow tables
    copy = planted(planted(page, tmp_path, cell, ""), tmp_path, cell, "")
    for size in (WIDE, NARROW):
        assert f"{gone}: 0 cells shown in the matrix, not 1" in matrix_problems(opened(browser, copy, size), doc)


@pytest.mark.slow
@pytest.mark.parametrize("href", ["http://198.18.0.1/netkit.css", "netkit-extra.css"], ids=["remote", "file"])
def test_an_external_stylesheet_is_named(real_gate, browser, tmp_path, href):
    _, page = real_gate
    # remote: refused inside Chromium (tests/browser.py), so no packet leaves, but asked for; file: beside the page
    copy = planted(page, tmp_path, "</head>", f'<link rel="stylesheet" href="{href}"></head>')
    (tmp_path / "netkit-extra.css").write_text("body { margin: 0; }\n")
    url = href if "://" in href else (tmp_path / href).as_uri()
    assert request_problems(opened(browser, copy)) == [f"the page requested {url}"]


@pytest.mark.slow
def test_a_zero_width_timeline_is_named(real_gate, browser, tmp_path):
    doc, page = real_gate
    copy = planted(page, tmp_path, '<svg class="timeline" ', '<svg class="timeline" style="width:0" ')
    problems = timeline_problems(opened(browser, copy), doc)
    assert any(re.search(r"its timeline is laid out 0 x \d+ px", p) for p in problems), problems


@pytest.mark.slow
def test_a_label_over_another_is_named(real_gate, browser, tmp_path):
    doc, page = real_gate
    # the first EARLY or LATE label moved to the lane's left end, onto the run's evidence caption ("trace")
    copy = planted(page, tmp_path, re.compile(r'<text x="[\d.]+" (y="[\d.]+") text-anchor="(?:start|end)" (style="[^"]*">died )'),
                   r'<text x="8" \1 text-anchor="start" \2')
    problems = label_problems(opened(browser, copy), doc)
    assert any("overlaps" in p for p in problems), problems


@pytest.mark.slow
def test_a_timeline_squeezed_onto_a_phone_is_named(real_gate, browser, tmp_path):
    doc, page = real_gate
    copy = planted(page, tmp_path, "  svg.timeline { min-width: 960px; }\n", "")  # scaled to the phone's width
    problems = label_problems(opened(browser, copy, NARROW), doc)
    assert any(re.search(r"is [\d.]+ px tall, not legible", p) for p in problems), problems


@pytest.mark.slow
def test_a_page_wider_than_a_phone_is_named(real_gate, browser, tmp_path):
    _, page = real_gate
    phone = "  table.matrix.wide { display: none; }\n  table.matrix.narrow { display: table; }\n"
    copy = planted(page, tmp_path, phone, "")  # the wide matrix on a phone
    problems = overflow_problems(opened(browser, copy, NARROW), NARROW[0])
    assert any(p.startswith("the page is ") for p in problems), problems
    assert any(p.startswith("the matrix spans ") for p in problems), problems


def test_without_a_browser_the_tests_say_how_to_get_one(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "no-such-chromium")
    monkeypatch.setenv("CHROMEDRIVER", "no-such-chromedriver")
    said = find_tools()
    assert isinstance(said, str) and "no Chromium and no chromedriver" in said and "chromium-driver" in said
