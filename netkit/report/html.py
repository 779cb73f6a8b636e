"""The gate document as one self-contained HTML page a person would rather read than the JSON.

One file, nothing fetched: inline CSS, inline SVG, no JavaScript, no external
asset, no URL at all (a known failure's link is shown as text without its
``https://``, so not even a click leaves the page), so the page can be attached to a CI run, mailed, or
opened on an air-gapped lab machine and look the same.

The page, top to bottom:

* a header: kernel release and version, HZ (and where it was read), the
  machine, netkit's version, start/end and wall time, and the totals as
  coloured badges;
* the matrix: one row per ``state/fault``, one column per family and
  keepalive settings (rows per settings when there are many), a cell
  coloured by outcome showing the median death time, linking to the
  scenario's section;
* every scenario, failures and errors first: a verdict line (the same
  sentence JUnit uses), a timeline drawn on a time axis in seconds (t = 0 is
  the last segment received; the fault; each probe, retransmission and
  zero-window probe — solid when the wire showed it, hollow when it was only
  sampled from tcp_info; the RST; the death; the expected window as a shaded
  band, the alternative window as a second band; under a run judged with
  the timer ledger, its armings, buckets, timer runs and their lateness and
  the kernel's death, on the same axis), the rule, the failures (the
  ledger's rule failures named so), and the explain text in a ``<details>``.

This module writes the page and its header; :mod:`.html_matrix` the matrix,
:mod:`.html_scenario` the sections, :mod:`.timeline` the SVG.  Every piece
of document text goes through ``html.escape`` (and loses any
``scheme://``, so the page holds no URL whatever the document quotes).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..document.codec import document
from ..document.records import GateDocument, ScenarioEntry
from ..enums import GateOutcome
from .html_matrix import matrix
from .html_scenario import legend, section
from .htmlkit import STYLE, _e, badge
from .markdown import Doc

# Failures and errors first, then what needs a look (xpass: a known failure went away), then the rest.
SECTION_ORDER = (GateOutcome.FAIL, GateOutcome.ERROR, GateOutcome.INCONCLUSIVE, GateOutcome.XPASS, GateOutcome.XFAIL,
                 GateOutcome.PASS, GateOutcome.SKIP)

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; background: #f4f5f7; color: #1d1f23; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; border-bottom: 2px solid #d5d8dd; padding-bottom: 4px; }
h3 { font-size: 17px; margin: 0 0 6px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
code, pre, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13.5px; }
.sub { color: #555b63; margin: 0 0 14px; }
.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 3px 16px;
         background: #fff; border: 1px solid #d5d8dd; border-radius: 8px; padding: 12px 16px; margin: 0; }
.facts dt { color: #555b63; } .facts dd { margin: 0; font-weight: 600; }
.badges { display: flex; gap: 8px; flex-wrap: wrap; margin: 14px 0 0; }
.badge { display: inline-block; border-radius: 999px; padding: 3px 12px; font-weight: 700; font-size: 14px;
         color: #fff; letter-spacing: .02em; }
.badge.zero { opacity: .35; }
table.matrix { border-collapse: separate; border-spacing: 4px; background: #fff; border: 1px solid #d5d8dd;
               border-radius: 8px; padding: 6px; }
table.matrix th { font-weight: 600; color: #3b4047; padding: 4px 8px; font-size: 13.5px; }
table.matrix th.row { text-align: right; white-space: nowrap; }
table.matrix td { min-width: 96px; height: 46px; padding: 0; border-radius: 6px; text-align: center; }
table.matrix.tall td { height: 32px; }
table.matrix.tall td a { padding: 3px 6px; }
table.matrix th.group { vertical-align: top; padding-top: 10px; border-top: 1px solid #e1e4e8; }
table.matrix td.empty { background: repeating-linear-gradient(45deg, #f3f4f6, #f3f4f6 5px, #e9ebee 5px, #e9ebee 10px); }
table.matrix td a { display: block; padding: 5px 6px; color: inherit; text-decoration: none; border-radius: 6px; }
table.matrix td a + a { border-top: 1px solid rgba(0,0,0,.12); }
.cell-main { font-weight: 700; font-size: 15px; font-variant-numeric: tabular-nums; }
.cell-sub { font-size: 11.5px; opacity: .85; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; align-items: center; color: #3b4047; font-size: 13.5px;
          margin: 6px 0 0; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
section.scenario { background: #fff; border: 1px solid #d5d8dd; border-left: 8px solid #999; border-radius: 8px;
                   padding: 14px 18px; margin: 14px 0; }
.verdict { margin: 4px 0 8px; font-size: 15px; }
.meta { color: #555b63; font-weight: 400; font-size: 14px; }
.rule { color: #30343a; margin: 6px 0; }
.rule b, .kv b { color: #555b63; font-weight: 600; }
ul.failures { margin: 6px 0; padding-left: 22px; color: #9b1c22; }
.note { color: #555b63; font-size: 13.5px; margin: 2px 0; }
.reason { font-size: 15px; }
details { margin-top: 8px; }
summary { cursor: pointer; color: #30343a; font-weight: 600; }
pre { background: #f6f7f9; border: 1px solid #e1e4e8; border-radius: 6px; padding: 10px 12px; overflow-x: auto;
      white-space: pre-wrap; margin: 6px 0 0; }
svg.timeline { display: block; width: 100%; height: auto; margin: 6px 0 4px; }
.timeline-frame { overflow-x: auto; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; font-size: 12px; fill: #30343a; }
.kv { display: flex; gap: 4px 22px; flex-wrap: wrap; margin: 4px 0; font-size: 14px; }
table.matrix.narrow { display: none; }
/* A phone: the tall matrix instead of the wide one (html_matrix), one column of facts, long ids broken anywhere,
   and timelines that keep their text legible in a frame that scrolls sideways. */
@media (max-width: 720px) {
  main { padding: 14px 10px 40px; }
  h1 { font-size: 21px; }
  .facts { grid-template-columns: max-content 1fr; }
  .facts dd, code, .kv span, .verdict, .note, .rule, ul.failures { overflow-wrap: anywhere; }
  table.matrix.wide { display: none; }
  table.matrix.narrow { display: table; }
  table.matrix th.row { white-space: normal; overflow-wrap: anywhere; }
  table.matrix td { min-width: 72px; }
  section.scenario { padding: 10px 10px; }
  /* scaled to the phone's width a timeline's 12 px text would be 4 px: it keeps 10 px, and its frame scrolls */
  svg.timeline { min-width: 960px; }
}
"""


def _header(doc: GateDocument) -> str:
    kernel, machine, totals = doc.kernel, doc.machine, doc.totals
    machine_text = f"{'?' if machine.cpus is None else machine.cpus} CPUs, " + (
        f"virtualized ({machine.virtualization})" if machine.virtualization else "bare metal"
    )
    if machine.slow:
        machine_text += ", slow (KSFT_MACHINE_SLOW windows)"
    option_text = ", ".join(
        f"{key} {value}" for key, value in doc.options.items() if value not in (None, [], False, "")
    ) or "defaults"
    facts = [
        ("kernel", f"{kernel.release or '?'}  {kernel.version or ''}".strip()),
        ("HZ", f"{'?' if kernel.hz is None else kernel.hz}" + (f" (from {kernel.hz_source})" if kernel.hz_source else "")),
        ("machine", machine_text),
        ("netkit", doc.netkit or "?"),
        ("started", doc.started or "?"),
        ("ended", doc.ended or "?"),
        ("wall time", "?" if doc.wall_s is None else f"{doc.wall_s:.1f} s"),
        ("options", option_text),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    badges = "".join(badge(k, f"{int(totals.get(k, 0))} {k}", zero=not totals.get(k)) for k in GateOutcome)
    verdict = "FAILED" if totals.get(GateOutcome.FAIL) or totals.get(GateOutcome.ERROR) else \
        "INCONCLUSIVE (machine late)" if totals.get(GateOutcome.INCONCLUSIVE) else "passed"
    count = len(doc.scenarios)
    counted: dict[str, int] = {k: 0 for k in GateOutcome}
    for scenario in doc.scenarios:
        counted[scenario.outcome] = counted.get(scenario.outcome, 0) + 1
    mismatch = {k: (totals.get(k, 0), counted.get(k, 0)) for k in counted if totals.get(k, 0) != counted.get(k, 0)}
    if mismatch:
        warning = "; ".join(f"{k}: totals say {a}, scenarios say {b}" for k, (a, b) in mismatch.items())
        badges += (f'<p class="verdict" style="color:{STYLE["fail"][0]}">'
                   f'<b>totals disagree with the scenarios:</b> {_e(warning)}</p>')
    return (
        f"<h1>netkit gate {_e(verdict)} on {_e(kernel.release or '?')}</h1>"
        f'<p class="sub">{_e(count)} scenario{"" if count == 1 else "s"}, schema {_e(doc.schema or "?")}: '
        "when do TCP keepalive and TCP_USER_TIMEOUT kill a connection on this kernel, and does it match the rules?</p>"
        f'<dl class="facts">{rows}</dl><div class="badges">{badges}</div>'
    )


def ordered(scenarios: Sequence[ScenarioEntry]) -> list[tuple[int, ScenarioEntry]]:
    """(document number, scenario), failures and errors first; the document order within an outcome."""
    rank: dict[str, int] = {o: i for i, o in enumerate(SECTION_ORDER)}
    numbered = list(enumerate(scenarios, 1))
    return sorted(numbered, key=lambda item: (rank.get(item[1].outcome, 0), item[0]))


def to_html(doc: Doc) -> str:
    """The whole report: one self-contained HTML document (no script, no external asset)."""
    doc = document(doc)
    sections = "".join(section(n, s) for n, s in ordered(doc.scenarios))
    ledger = any(r.ledger is not None for s in doc.scenarios for r in s.runs)  # its marks in the legend
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>netkit gate: {_e(doc.kernel.release or '?')} {_e(doc.started or '')}</title>"
        f"<style>{CSS}</style></head><body><main>"
        f"{_header(doc)}"
        f"<h2>Matrix</h2>{matrix(doc)}"
        '<p class="note">Cell: the median time from the last segment received to the death; '
        "click a cell for its scenario.</p>"
        f"<h2>Scenarios, failures first</h2>{legend(ledger)}{sections}"
        "</main></body></html>\n"
    )
