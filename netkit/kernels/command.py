"""``netkit kernels get SPEC...`` and ``netkit kernels list``: Debian's kernels in netkit's cache.

Exit status: 0 done; 2 an unknown spec, or a cache it cannot read or create
(HOME still root's after ``su`` without ``-``: set NETKIT_KERNEL_CACHE); 4 a
machine that cannot fetch (no apt-get, the mirror unreachable) -- the message
says which.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..exitcodes import EXIT_PASS
from . import __doc__ as SPECS_DOC
from .cache import CACHE_ENV, cache_dir, list_cached, remove
from .fetch import get
from .spec import SPEC_HELP, parse_spec

HELP = {
    "get": "fetch kernels into the cache (apt-get download + dpkg-deb -x, with a private apt state)",
    "spec": SPEC_HELP,
    "refresh": "update netkit's private apt lists first (otherwise they are refreshed once a day)",
    "list": "the cached kernels: release, HZ (from its config), size, where it came from",
    "json": "print JSON instead of a table",
    "remove": "remove cached kernels by release",
}


def add_parser(sub: Any) -> None:
    """Register ``kernels`` (get, list, remove) on the CLI's subparsers."""
    p = sub.add_parser("kernels", help="Debian kernels for `netkit gate --kernel`: fetch into a cache, list",
                       description=__doc__.split("\n\n")[0] + f"\n\nCache: {CACHE_ENV} or ~/.cache/netkit/kernels."
                       + "\n\nSpecs:" + SPECS_DOC.split("A kernel is named by a *spec*", 1)[1].split(":", 1)[1],
                       epilog="examples:\n  netkit kernels get debian:6.1 debian:6.12\n  netkit kernels list\n"
                              "  netkit gate --kernel debian:6.1 --only 'ipv4-idle-*' --json gate-6.1.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    inner = p.add_subparsers(dest="kernels_command", metavar="{get,list,remove}")
    g = inner.add_parser("get", help=HELP["get"], description=f"Kernels: {HELP['get']}.",
                         epilog="example:\n  netkit kernels get debian:6.1 debian:6.12")
    g.add_argument("specs", nargs="+", metavar="SPEC", help=HELP["spec"])
    g.add_argument("--refresh", action="store_true", help=HELP["refresh"])
    g.set_defaults(func=cmd_get)
    ls = inner.add_parser("list", help=HELP["list"], description=f"Kernels: {HELP['list']}.",
                          epilog="examples:\n  netkit kernels list\n  netkit kernels list --json")
    ls.add_argument("--json", action="store_true", help=HELP["json"])
    ls.set_defaults(func=cmd_list)
    rm = inner.add_parser("remove", help=HELP["remove"], description=f"Kernels: {HELP['remove']}.",
                          epilog="example:\n  netkit kernels remove 6.1.0-40-amd64")
    rm.add_argument("releases", nargs="+", metavar="RELEASE")
    rm.set_defaults(func=cmd_remove)


def cmd_get(args: argparse.Namespace) -> int:
    for spec in args.specs:  # every spec is checked before anything is fetched
        parse_spec(spec)
    for spec in args.specs:
        result = get(spec, refresh=args.refresh, say=lambda text: print(f"netkit kernels: {text}", file=sys.stderr))
        k = result.kernel
        how = f"fetched in {result.seconds:.1f} s" if result.fetched else "already cached"
        print(f"{spec}: {k.release} (HZ={k.hz or '?'}, {_size(k.size_bytes())}) {how}: {k.image}")
    return EXIT_PASS


def cmd_list(args: argparse.Namespace) -> int:
    kernels = list_cached()
    rows = [{"release": k.release, "hz": k.hz, "size_bytes": k.size_bytes(), "spec": k.spec, "source": k.source,
             "packages": list(k.packages), "fetched": k.fetched, "image": k.image} for k in kernels]
    if args.json:
        print(json.dumps({"cache": cache_dir(), "kernels": rows}, indent=1))
        return EXIT_PASS
    print(format_list(rows, cache_dir()))
    return EXIT_PASS


def format_list(rows: list[dict[str, Any]], cache: str) -> str:
    if not rows:
        return f"no kernels in {cache}; fetch one: netkit kernels get debian:6.1"
    head = ("release", "HZ", "size", "fetched for", "when")
    table = [head] + [(r["release"], str(r["hz"] or "?"), _size(r["size_bytes"]), r["spec"] or "-",
                       (r["fetched"] or "-")[:16].replace("T", " ")) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i != 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             .rstrip() for row in table]
    return "\n".join(lines + [f"\n{len(rows)} kernel(s) in {cache}"])


def cmd_remove(args: argparse.Namespace) -> int:
    status = 0
    for release in args.releases:
        if remove(release):
            print(f"removed {release}")
        else:
            print(f"netkit kernels: no cached kernel {release!r} (see `netkit kernels list`)", file=sys.stderr)
            status = 2
    return status


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"
