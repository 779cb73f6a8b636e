"""``netkit gate``: the regression gate for kernel behaviour, and ``netkit gate diff``.

Exit status (:mod:`netkit.exitcodes`; 0, 1 and 4 are kselftest's PASS, FAIL
and SKIP, 2 and 3 are not its XFAIL and XPASS): 0 every scenario passed or was
skipped (or an expected failure); 1 a failure, an error, or a regression
against the baseline; 2 bad usage or a file netkit cannot read; 3
inconclusive: a scenario the machine ran late (the timer ledger measured it),
on its one retry too, and nothing failed; 4 cannot run here (no privileges, no
network namespaces) -- with ``--tap``, ``1..0 # SKIP why``, and with ``--junit
FILE`` every selected scenario skipped with that reason (a CI that publishes
the JUnit file shows why nothing ran, not a missing report).

Unlike every other command's ``--json`` flag (one JSON object on stdout), the
gate's ``--json FILE`` names a file: the gate writes several reports at once,
each to its own file (``--json F --junit F --html F``), while stdout carries
its summary (or ``--tap`` / ``--markdown``).  ``-`` as the FILE of one report
puts that report on stdout instead, and the summary on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
from typing import Any

from ..document.codec import dump, load, load_as_written
from ..document.records import GATE_SCHEMA, GateDocument, GateOptions
from ..enums import GateOutcome
from ..errors import InputError
from ..exitcodes import EXIT_CANNOT_RUN_HERE, EXIT_FAIL, EXIT_PASS
from ..kernel import kernel_info
from ..outputs import file_problem, folder_problem
from ..privileges import missing_privileges
from ..scenario import Scenario
from . import kernel_ci, matrix
from .diff import compare, format_diff
from .document import build, scenario_entry, utc_now
from .kernels import HELP as KERNEL_HELP
from .kernels import gate_on_kernels
from .matrix_file import load_matrix
from .outcome import Outcome, decide, exit_status, find_known, load_known, slow_machine_from_environment
from .progress import LiveProgress
from .retry import needs_retry, retry
from .run import MAX_WORKERS, ScenarioRuns, run_gate
from .shard import parse_shard, shard_of
from .summary import format_summary

MAX_REPEAT = 1000  # every run is queued at once: 10**9 would exhaust memory before the first result

HELP = {
    "list": "print the selected scenarios' ids and exit",
    "only": "run only scenarios whose id matches this shell pattern (repeatable), e.g. 'ipv6-idle-*'",
    "matrix": "run the scenarios of this TOML file instead of netkit's built-in matrix (see docs/gate.md)",
    "repeat": f"run each scenario N times, 1..{MAX_REPEAT} (flake hunting); a scenario passes only if every run passed",
    "json": (f"write the gate document (every result, schema {GATE_SCHEMA}) to FILE ('-': stdout). A file, unlike "
             "other commands' --json flag: the gate writes several reports at once, each to its own file"),
    "junit": "write JUnit XML (xunit2, as pytest writes it) to FILE ('-': stdout), for GitLab/Jenkins/GitHub",
    "html": "write one self-contained HTML report to FILE ('-': stdout)",
    "tap": "print kselftest-style TAP on stdout (the summary goes to stderr)",
    "markdown": "print the measured table (Markdown, as in docs/measured.md) on stdout (the summary goes to stderr)",
    "baseline": "compare with an earlier --json document; exit 1 on a regression",
    "known": "TOML file of known differences (scenario glob, kernel glob, xfail|skip, reason, link)",
    "slow_machine": ("a slow (emulated) machine: late-only misses of runs without the timer ledger become XFAIL "
                     "(also KSFT_MACHINE_SLOW=yes; with the ledger, lateness is measured: see 'inconclusive')"),
    "pcap_dir": "where failed scenarios write their packet captures (default: temporary files)",
    "shard": "run only part K of N of the selection, split by predicted length (one CI job each; `gate merge` joins them)",
    "jobs": ("run at most N scenarios at once (default: 24 per CPU, 16..128, the longest first; `--kernel` under "
             "emulation uses 2)"),
}


def add_parser(sub: Any) -> None:
    """Register ``gate`` (and ``gate diff``) on the CLI's subparsers."""
    p = sub.add_parser("gate", help="run the scenario matrix as a regression gate (JSON, JUnit, TAP, HTML)",
                       description=GATE_DESCRIPTION, epilog=GATE_EXAMPLES)
    p.add_argument("--list", action="store_true", help=HELP["list"])
    p.add_argument("--only", action="append", default=[], metavar="GLOB", help=HELP["only"])
    p.add_argument("--matrix", metavar="FILE", help=HELP["matrix"])
    p.add_argument("--repeat", type=int, default=1, metavar="N", help=HELP["repeat"])
    p.add_argument("--json", metavar="FILE", help=HELP["json"])
    p.add_argument("--junit", metavar="FILE", help=HELP["junit"])
    p.add_argument("--html", metavar="FILE", help=HELP["html"])
    p.add_argument("--tap", action="store_true", help=HELP["tap"])
    p.add_argument("--markdown", action="store_true", help=HELP["markdown"])
    p.add_argument("--baseline", metavar="FILE", help=HELP["baseline"])
    p.add_argument("--known", metavar="FILE", help=HELP["known"])
    p.add_argument("--slow-machine", action="store_true", help=HELP["slow_machine"])
    p.add_argument("--pcap-dir", metavar="DIR", help=HELP["pcap_dir"])
    p.add_argument("--jobs", type=int, metavar="N", help=HELP["jobs"])
    p.add_argument("--kernel", action="append", default=[], metavar="IMAGE|SPEC|host", help=KERNEL_HELP)
    p.add_argument("--shard", metavar="K/N", help=HELP["shard"])
    kernel_ci.add_arguments(p)  # --kcidb, --nipa and their ids
    p.set_defaults(func=cmd_gate)
    inner = p.add_subparsers(dest="gate_command")
    d = inner.add_parser("diff", help="what changed between two gate documents, or N kernels side by side",
                         description=DIFF_DESCRIPTION, epilog=DIFF_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("documents", nargs="+", metavar="DOC.json", help="gate documents (`netkit gate --json`)")
    d.add_argument("--json", action="store_true", help="print the differences (or the table's rows) as JSON")
    d.add_argument("--table", action="store_true", help="two documents: the side-by-side table, not old -> new")
    d.add_argument("--markdown", action="store_true", help="print the side-by-side table as Markdown")
    d.add_argument("--differences", action="store_true", help="the table: only the rows where the kernels disagree")
    d.add_argument("--html", metavar="FILE", help="also write the side-by-side table as one self-contained HTML page")
    d.set_defaults(func=cmd_diff)
    m = inner.add_parser("merge", help="one gate document from the documents of `--shard K/N` runs of one kernel",
                         description=MERGE_DESCRIPTION, epilog=MERGE_EXAMPLES)
    m.add_argument("documents", nargs="+", metavar="DOC.json", help="the parts' documents (`netkit gate --shard K/N --json`)")
    for name in ("json", "junit", "html"):
        m.add_argument(f"--{name}", metavar="FILE", help=HELP[name])
    m.add_argument("--tap", action="store_true", help=HELP["tap"])
    m.add_argument("--markdown", action="store_true", help=HELP["markdown"])
    m.set_defaults(func=cmd_merge)


GATE_DESCRIPTION = """\
Run the scenario matrix (or --only some of it) as a regression gate: every
scenario's outcome against the kernel's rule, and the reports a CI reads.

Exit status: 0 every scenario passed (or was skipped, or failed as a known
difference expects); 1 a failure, an error or a regression against
--baseline; 2 bad usage or a file netkit cannot read; 3 inconclusive (the
machine ran a scenario late, twice; nothing failed); 4 cannot run here (no
privileges, no network namespaces). 0, 1 and 4 are kselftest's PASS, FAIL and
SKIP; 2 and 3 are not its XFAIL and XPASS.

--json, --junit and --html each name a FILE, unlike other commands' --json
flag: the gate writes several reports at once, each to its own file, while
stdout carries the summary (or --tap, --markdown). '-' puts one of them on
stdout instead, and the summary on stderr."""
GATE_EXAMPLES = """\
examples:
  netkit gate --list --only 'ipv6-idle-*'
  netkit gate --only 'ipv4-idle-*-1/1/3' --json gate.json --junit gate.xml --html gate.html
  netkit gate --only 'ipv4-idle-*-1/1/3' --json - > gate.json    # the document on stdout, the summary on stderr
  netkit gate --tap --only 'ipv6-idle-*'                          # kselftest TAP on stdout
  netkit gate --baseline old.json --json new.json                 # exit 1 on a regression"""
DIFF_EXAMPLES = """\
examples:
  netkit gate diff old.json new.json
  netkit gate diff 6.1.json 6.12.json 6.18.json --differences --html kernels.html"""
MERGE_EXAMPLES = """\
example:
  netkit gate merge part1.json part2.json part3.json --json gate.json --junit gate.xml"""


DIFF_DESCRIPTION = """\
Two documents (OLD.json NEW.json): what changed from the old run to the new
one -- regressions, fixes, timing shifts -- exit 1 on a regression.

Three or more (or --table, --markdown): one row per scenario, one column per
run (kernel release, HZ, host or emulated), each cell the outcome and the
measured median; rows where the runs disagree are marked.  Exit 1 when any
row differs, else 0.  --html FILE writes that table as an HTML page.

Exit 2: a document netkit cannot read, or fewer than two."""


MERGE_DESCRIPTION = """\
The documents of every part of one sharded gate (`netkit gate --shard K/N
--json`, the same kernel, options and N) as the one document the unsharded
gate would have written, and its reports.  Timings: started is the earliest
part's, ended the latest part's, wall the longest part's.  Exit 1 when a
scenario failed or erred, 2 when the documents are not the parts of one gate
(another kernel, HZ, matrix, schema, a scenario twice, a part twice or
missing), else 0."""


def cmd_merge(args: argparse.Namespace) -> int:
    from .merge import Part, merge

    parts = [Part(path, *load_as_written(path)) for path in args.documents]
    _check_outputs(args)
    doc = merge(parts, order=_selection_order(parts[0].doc.options))
    _write_reports(args, doc)
    print(f"netkit gate merge: {len(parts)} document(s), {len(doc.scenarios)} scenarios; the wall is the longest part's",
          file=sys.stderr)
    print(format_summary(doc), file=sys.stderr if _on_stdout(args) else sys.stdout)
    return exit_status(e.outcome for e in doc.scenarios)


def _selection(matrix_path: str | None, only: list[str] | tuple[str, ...]) -> list[Scenario]:
    return matrix.select(load_matrix(matrix_path) if matrix_path else matrix.BUILTIN, only)


def _selection_order(options: GateOptions) -> list[str] | None:
    """The ids the parts' gate selected, in its order; None if this netkit cannot read that matrix (ids sorted)."""
    try:
        return [s.id for s in _selection(options.matrix, options.only)]
    except InputError:
        return None


def cmd_diff(args: argparse.Namespace) -> int:
    if len(args.documents) < 2:
        raise InputError(f"give two gate documents (OLD.json NEW.json) or more to set side by side, "
                         f"not {len(args.documents)}")
    from ..report.side_by_side import compare_rows, format_table, html_table

    docs = [load(path) for path in args.documents]
    _check_writable(args.html)
    if args.html:
        _write_file(args.html, html_table(docs, only_differences=args.differences))
    if len(docs) == 2 and not (args.table or args.markdown or args.differences):
        diff = compare(*docs)
        print(json.dumps(diff.to_dict(), indent=1) if args.json else format_diff(diff))
        return EXIT_FAIL if diff.regressions else EXIT_PASS
    rows = compare_rows(docs)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows if r.differs or not args.differences], indent=1))
    else:
        print(format_table(docs, markdown=args.markdown, only_differences=args.differences))
    return EXIT_FAIL if any(r.differs for r in rows) else EXIT_PASS


def cmd_gate(args: argparse.Namespace) -> int:
    if not 1 <= args.repeat <= MAX_REPEAT:
        raise InputError(f"--repeat {args.repeat}: give a whole number of runs, 1..{MAX_REPEAT}")
    scenarios = _selection(args.matrix, args.only)
    shard = parse_shard(args.shard) if args.shard is not None else None
    scenarios = shard_of(scenarios, shard) if shard else scenarios
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs {args.jobs}: give a whole number of scenarios at once, 1 or more")
    known = load_known(args.known) if args.known else []  # every input is checked, --list too
    baseline = load(args.baseline) if args.baseline else None
    ci_files = kernel_ci.check(args)
    if args.list:
        print("\n".join(s.id for s in scenarios))
        return EXIT_PASS
    _check_outputs(args, *ci_files)
    if args.kernel and STDOUT in (args.json, args.junit, args.html):
        raise InputError("--kernel writes each kernel's reports to files: give --json/--junit/--html a file, not '-'")
    problem = None if args.pcap_dir is None else folder_problem(args.pcap_dir)
    if problem:
        raise InputError(f"--pcap-dir {args.pcap_dir}: {problem}")
    if args.kernel:
        return gate_on_kernels(args, render=_render, summary=format_summary)
    reason = missing_privileges()
    if reason:
        return _nothing_can_run(args, reason, scenarios)
    slow = args.slow_machine or slow_machine_from_environment()
    kernel = kernel_info()
    known_for = {s.id: find_known(known, s.id, kernel.release) for s in scenarios}
    known_skips = {sid for sid, known in known_for.items() if known is not None and known.outcome == "skip"}
    to_run = [s for s in scenarios if s.id not in known_skips]
    started, clock = utc_now(), time.monotonic()
    known_xfail = {sid for sid, known in known_for.items() if known is not None and known.outcome == "xfail"}
    progress = LiveProgress(sys.stderr, len(scenarios), known_xfail)
    try:
        ran = {r.scenario.id: r for r in run_gate(to_run, repeat=args.repeat, on_progress=progress,
                                                  pcap_dir=args.pcap_dir, max_workers=args.jobs or MAX_WORKERS)}
    finally:
        progress.finish()
    _retry_machine_late(list(ran.values()), args)
    runs = [ran.get(s.id) or ScenarioRuns(s) for s in scenarios]  # a known skip never ran: decide() says why
    entries = [scenario_entry(r, decide(r, slow_machine=slow, known=known_for[r.scenario.id])) for r in runs]
    options = {"repeat": args.repeat, "only": args.only, "matrix": args.matrix, "slow_machine": slow,
               "baseline": args.baseline, "known": args.known, "shard": shard}
    doc = build(entries, kernel=kernel, started=started, wall_s=time.monotonic() - clock, options=options,
                slow_machine=slow)
    diff = compare(baseline, doc) if baseline else None
    doc = dataclasses.replace(doc, diff=diff.to_dict() if diff else None)
    _write_reports(args, doc)
    summary = format_summary(doc) + (f"\n\n{format_diff(diff)}" if diff else "")
    print(summary, file=sys.stderr if _on_stdout(args) else sys.stdout)
    return exit_status((e.outcome for e in entries), regression=bool(diff and diff.regressions))


def _retry_machine_late(ran: list[ScenarioRuns], args: argparse.Namespace) -> None:
    """Run once more, all at once, the scenarios that failed only because the machine was late (:mod:`.retry`)."""
    late = [r for r in ran if needs_retry(r)]
    if not late:
        return
    print(f"netkit gate: retrying {len(late)} scenario(s) the machine ran late (the kernel kept the rule): "
          + ", ".join(r.scenario.id for r in late), file=sys.stderr)
    progress = LiveProgress(sys.stderr, len(late))
    try:
        retry(late, lambda scenarios, repeat: run_gate(scenarios, repeat=repeat, on_progress=progress,
                                                       pcap_dir=args.pcap_dir, max_workers=args.jobs or MAX_WORKERS))
    finally:
        progress.finish()


def _write_reports(args: argparse.Namespace, doc: GateDocument) -> None:
    """Each report asked for, rendered from the document alone (modules of netkit.report, imported on demand)."""
    files = {"json": args.json, "junit": args.junit, "html": args.html}
    for name, path in files.items():
        if path:
            _write_file(path, dump(doc) if name == "json" else _render(name, doc))
    for path, text in kernel_ci.reports(args, doc):
        _write_file(path, text)
    for name in ("tap", "markdown"):
        if getattr(args, name):
            sys.stdout.write(_render(name, doc))
    sys.stdout.flush()


STDOUT = "-"  # --json/--junit/--html -: that report on stdout


def _on_stdout(args: argparse.Namespace) -> list[str]:
    """The reports asked for on stdout (then the summary goes to stderr)."""
    files = [f"--{name} -" for name in ("json", "junit", "html") if getattr(args, name) == STDOUT]
    return files + [f"--{name}" for name in ("tap", "markdown") if getattr(args, name)]


def _check_outputs(args: argparse.Namespace, *more: str | None) -> None:
    """At most one report on stdout, and every file writable."""
    stdout = _on_stdout(args)
    if len(stdout) > 1:
        raise InputError(f"{' and '.join(stdout)}: only one report can go to stdout; write the others to files")
    _check_writable(*(path for path in (args.json, args.junit, args.html, *more) if path != STDOUT))


def _check_writable(*paths: str | None) -> None:
    """Refuse an output file that cannot be written *before* minutes of scenarios, not after."""
    for path in paths:
        problem = None if path is None else file_problem(path)
        if problem:
            raise InputError(f"{path}: {problem}")


def _write_file(path: str, text: str) -> None:
    if path == STDOUT:
        sys.stdout.write(text)
        return
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({exc.strerror}): choose another path") from None


def _render(name: str, doc: GateDocument | dict[str, Any]) -> str:
    """Report ``name`` of a document (typed, or as JSON data: every renderer takes either)."""
    module = importlib.import_module(f"netkit.report.{name}")
    return str(getattr(module, f"to_{name}")(doc))


def _nothing_can_run(args: argparse.Namespace, reason: str, scenarios: list[Scenario]) -> int:
    """Exit 4 (cannot run here), saying why in every report a CI reads when a gate cannot run: TAP's plan and the JUnit file."""
    if args.tap:
        from ..report.tap import tap_nothing_can_run

        sys.stdout.write(tap_nothing_can_run(reason))
    if args.junit:
        why = f"nothing can run here: {reason}"
        entries = [scenario_entry(ScenarioRuns(s, skipped=why), Outcome(GateOutcome.SKIP, why)) for s in scenarios]
        # the JUnit file shows where the gate was (kernel, machine), not its options: none are recorded
        doc = build(entries, kernel=kernel_info(), started=utc_now(), wall_s=0.0, options={}, slow_machine=False)
        _write_file(args.junit, _render("junit", doc))
    print(f"netkit gate: nothing can run here: {reason}", file=sys.stderr)
    return EXIT_CANNOT_RUN_HERE
