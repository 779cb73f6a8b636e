"""The gate's options for the kernel CIs: ``--kcidb FILE`` (KernelCI's KCIDB) and ``--nipa FILE`` (netdev's NIPA).

The formats are :mod:`netkit.report.kcidb` and :mod:`netkit.report.nipa`,
functions of the gate document alone; this module registers their options,
checks them before any scenario runs (a bad value: one message, exit 2), and
gives ``(path, text)`` for each file asked for, which the gate (and, per
kernel, ``--kernel``) writes beside its other reports.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping

from ..document.records import GateDocument
from ..errors import InputError
from ..report.kcidb import id_problem, origin_problem, to_kcidb
from ..report.nipa import DEFAULT_EXECUTOR, field_problem, to_nipa

NIPA_BRANCH_ENV = "BRANCH"  # contest/remote/exec.py hands its executor's program the branch under test in $BRANCH

HELP = {
    "kcidb": ("write the results as a KCIDB v5 document (KernelCI's database) to FILE, one test per scenario "
              "(xfail and xpass as PASS, error as ERROR, inconclusive as DONE); needs --kcidb-origin"),
    "kcidb_origin": ("required with --kcidb: your CI's KCIDB origin, the name KCIDB's maintainers gave it "
                     "(lower-case letters, digits, _)"),
    "kcidb_checkout_id": ("the KCIDB checkout the tested kernel came from, ORIGIN:ID "
                          "(default: <origin>:<kernel release>, written into the document)"),
    "kcidb_build_id": ("the KCIDB build under test, ORIGIN:ID, as your CI job submitted it "
                       "(default: <origin>:<kernel release>, written into the document)"),
    "nipa": ("write the results as a NIPA (netdev CI) external-executor result file to FILE, one result per "
             "scenario (xfail and xpass as pass, error as fail, inconclusive as skip); needs a branch"),
    "nipa_branch": f"the netdev branch tested (default: ${NIPA_BRANCH_ENV}, as NIPA's exec executor sets it)",
    "nipa_executor": f"the executor's name, as in your NIPA remote's config (default: {DEFAULT_EXECUTOR})",
    "nipa_link": "URL of this run's outputs, linked from each result (default: none)",
}
METAVARS = {"kcidb": "FILE", "kcidb_origin": "ORIGIN", "kcidb_checkout_id": "ID", "kcidb_build_id": "ID",
            "nipa": "FILE", "nipa_branch": "NAME", "nipa_executor": "NAME", "nipa_link": "URL"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the kernel CIs' options on the ``gate`` parser."""
    for name, metavar in METAVARS.items():
        p.add_argument(f"--{name.replace('_', '-')}", metavar=metavar, help=HELP[name],
                       default=DEFAULT_EXECUTOR if name == "nipa_executor" else None)


def check(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Refuse a bad kernel-CI option (InputError, exit 2); returns the files asked for, to check they can be written.

    Fills ``args.nipa_branch`` from ``$BRANCH`` when it is not given."""
    if args.kcidb:
        if not args.kcidb_origin:
            raise InputError("--kcidb needs --kcidb-origin ORIGIN: the name KCIDB's maintainers gave your CI "
                             "(netkit cannot choose one for you)")
        problem = origin_problem(args.kcidb_origin)
        if problem:
            raise InputError(f"--kcidb-origin {args.kcidb_origin!r}: {problem}")
    for name in ("kcidb_checkout_id", "kcidb_build_id"):
        value = getattr(args, name)
        problem = None if value is None else id_problem(value)
        if problem:
            raise InputError(f"--{name.replace('_', '-')} {value!r}: {problem}")
    given = [f"--{n.replace('_', '-')}" for n in ("kcidb_origin", "kcidb_checkout_id", "kcidb_build_id") if getattr(args, n)]
    if given and not args.kcidb:
        raise InputError(f"{given[0]} without --kcidb FILE: say where the KCIDB document goes")
    if args.nipa:
        args.nipa_branch = args.nipa_branch or environ.get(NIPA_BRANCH_ENV) or None
        if not args.nipa_branch:
            raise InputError(f"--nipa needs the netdev branch under test: --nipa-branch NAME (or ${NIPA_BRANCH_ENV}, "
                             "as NIPA's exec executor sets it)")
        for option, value in (("--nipa-branch", args.nipa_branch), ("--nipa-executor", args.nipa_executor)):
            problem = field_problem(option, value)
            if problem:
                raise InputError(problem)
    elif args.nipa_branch or args.nipa_link:
        raise InputError(f"{'--nipa-branch' if args.nipa_branch else '--nipa-link'} without --nipa FILE: "
                         "say where the NIPA file goes")
    return [path for path in (args.kcidb, args.nipa) if path]


def reports(args: argparse.Namespace, doc: GateDocument,
            rename: Callable[[str], str | None] = lambda path: path) -> list[tuple[str, str]]:
    """``(path, text)`` of each kernel-CI file asked for; ``rename`` gives a path per kernel (``--kernel``)."""
    out: list[tuple[str | None, str]] = []
    if getattr(args, "kcidb", None):  # a namespace made without these options asks for neither
        out.append((rename(args.kcidb), to_kcidb(doc, args.kcidb_origin, checkout_id=args.kcidb_checkout_id,
                                                 build_id=args.kcidb_build_id)))
    if getattr(args, "nipa", None):
        out.append((rename(args.nipa), to_nipa(doc, branch=args.nipa_branch, executor=args.nipa_executor,
                                               link=args.nipa_link)))
    return [(path, text) for path, text in out if path]
