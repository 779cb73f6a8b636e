"""``netkit gallery``: real clients and servers, measured at once; the docs' table is its ``--markdown``.

::

    netkit gallery [--only GLOB ...] [--list] [--json FILE] [--markdown FILE] [--from FILE]

Exit status: 0 every exhibit ran and its expectation held, 1 one did not,
2 bad input, 4 some could not run here (their programs are not installed:
``scripts/provision-gallery``) and none failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..gallery.exhibits import select
from ..gallery.judging import GalleryDocument
from ..gallery.programs import skip_reason
from ..gallery.table import markdown
from .help import examples

HELP = {
    "only": "run only the exhibits whose names match this shell-style pattern (repeatable)",
    "list": "list the exhibits, with what each needs here, and exit",
    "json": "write the netkit.gallery/1 document (every row with its check's whole result) to FILE ('-': stdout); a "
            "file, unlike other commands' --json flag: the gallery writes the table and the document at once",
    "markdown": "write the table to FILE ('-': stdout)",
    "from": "render a document written by --json instead of running (with --markdown)",
}
EXAMPLE = examples("netkit gallery --list", "netkit gallery --json gallery.json --markdown docs/gallery.md",
                   "netkit gallery --from gallery.json --markdown -")


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")


def cmd_gallery(args: argparse.Namespace) -> int:
    from ..gallery.run import run_gallery  # here: --list and --from run nothing

    exhibits = select(args.only)
    if args.list:
        for e in exhibits:
            reason = skip_reason(e)
            print(f"{e.name:38} {e.side:6} {e.expect:11} {e.program}: {e.settings}"
                  + (f"  [cannot run here: {reason}]" if reason else ""))
        return 0
    if args.from_file:
        doc = GalleryDocument.from_json(Path(args.from_file).read_text(encoding="utf-8"))
    else:
        doc = run_gallery(exhibits, say=lambda line: print(f"netkit gallery: {line}", file=sys.stderr, flush=True))
    if args.json:
        _write(args.json, doc.to_json() + "\n")
    if args.markdown:
        _write(args.markdown, markdown(doc))
    if not args.markdown or args.markdown != "-":
        held = sum(r.outcome == "held" for r in doc.rows)
        print(f"netkit gallery: {held} of {len(doc.rows)} held, "
              f"{sum(r.outcome == 'broken' for r in doc.rows)} broken, "
              f"{sum(r.outcome == 'skipped' for r in doc.rows)} skipped; wall {doc.wall_s:.1f} s")
        for r in doc.rows:
            if r.outcome != "held":
                print(f"  {r.outcome}: {r.name}: {r.why}")
    return doc.exit_code


def add_parser(sub: Any) -> None:
    """Register ``gallery`` on the CLI's subparsers."""
    p = sub.add_parser("gallery", help="real clients and servers (Go, Node.js, Python, C) measured at once",
                       description=(__doc__ or "").split("\n\n")[0], epilog=EXAMPLE)
    p.add_argument("--only", action="append", metavar="GLOB", help=HELP["only"])
    p.add_argument("--list", action="store_true", help=HELP["list"])
    p.add_argument("--json", metavar="FILE", help=HELP["json"])
    p.add_argument("--markdown", metavar="FILE", help=HELP["markdown"])
    p.add_argument("--from", dest="from_file", metavar="FILE", help=HELP["from"])
    p.set_defaults(func=cmd_gallery)
