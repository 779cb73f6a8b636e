"""``netkit gate --kernel IMAGE|SPEC|host`` (repeatable): the gate inside other kernels, then side by side.

The gate's own command calls :func:`gate_on_kernels` when ``--kernel`` is
given.  Each kernel runs the same gate (the same ``--only``, ``--matrix``,
``--repeat``, ``--known``, ``--baseline``, ``--slow-machine``, ``--jobs``) through
:func:`netkit.kernels.guest.run_gate_on_kernel`, one kernel after another.
Its document goes to ``--json FILE`` (with several kernels: ``FILE`` with the
kernel's label before the extension, ``gate.debian-6.1.json``), and so do
``--junit`` and ``--html``; ``--markdown`` prints each kernel's table;
``--tap`` takes exactly one kernel (one TAP stream).  Then the kernel x
scenario table (:mod:`netkit.report.side_by_side`) goes to stdout.

Exit status: 1 if any kernel's gate failed (as the gate's own), 2 if a kernel
could not be fetched or booted or a tool is missing (the other kernels still
run; the message names it), else 0.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from ..errors import EnvironmentUnusable, InputError
from ..report.side_by_side import format_table
from .cache import parse_spec
from .guest import run_gate_on_kernel

HELP = ("run the gate inside this kernel (repeatable; then a kernel x scenario table): a spec such as "
        "debian:6.1, bookworm-6.12, debian:7.x, a kernel image path, or host; booted with virtme-ng, "
        "KVM if it works else emulation (see `netkit kernels --help`)")


def label(spec: str) -> str:
    """A file-name-safe name for a kernel spec: debian:6.1 -> debian-6.1."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", spec).strip("-") or "kernel"


def per_kernel(path: str | None, spec: str, several: bool) -> str | None:
    if path is None or not several:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.{label(spec)}{ext}"


def inner_gate_args(args: argparse.Namespace) -> list[str]:
    """The options every kernel's gate gets; paths made absolute (the guest runs in the repository)."""
    out: list[str] = []
    for pattern in args.only:
        out += ["--only", pattern]
    for name in ("matrix", "known", "baseline", "pcap_dir"):
        value = getattr(args, name, None)
        if value:
            out += [f"--{name.replace('_', '-')}", os.path.abspath(value)]
    if args.repeat != 1:
        out += ["--repeat", str(args.repeat)]
    if args.slow_machine:
        out.append("--slow-machine")
    if getattr(args, "jobs", None):
        out += ["--jobs", str(args.jobs)]
    return out


def gate_on_kernels(args: argparse.Namespace, *, render: Callable[[str, dict[str, Any]], str],
                    summary: Callable[[dict[str, Any]], str] | None = None) -> int:
    """Run the gate in every ``args.kernel``; ``render(name, doc)`` is the gate's report renderer."""
    kernels: list[str] = args.kernel
    if args.tap and len(kernels) > 1:
        raise InputError("--tap with several --kernel: one TAP stream per run; give one kernel per --tap run")
    for spec in kernels:  # every spec is read before any kernel runs: a typo costs nothing
        parse_spec(spec)
    several = len(kernels) > 1
    gate_args = inner_gate_args(args)
    docs, problems = [], []
    for spec in kernels:
        json_path = per_kernel(args.json, spec, several) or os.path.join(
            os.environ.get("TMPDIR", "/tmp"), f"netkit-gate.{label(spec)}.json")
        try:
            doc = run_gate_on_kernel(spec, gate_args, json_path)
        except (EnvironmentUnusable, InputError) as exc:
            problems.append(f"--kernel {spec}: {exc}")
            print(f"netkit gate: --kernel {spec}: {exc}", file=sys.stderr)
            continue
        docs.append(doc)
        for name in ("junit", "html"):
            path = per_kernel(getattr(args, name), spec, several)
            if path:
                with open(path, "w") as f:
                    f.write(render(name, doc))
        if args.tap or args.markdown:
            sys.stdout.write(render("tap" if args.tap else "markdown", doc))
        if summary:
            print(summary(doc), file=sys.stderr if args.tap or args.markdown else sys.stdout)
    if docs and not args.tap:
        print(format_table(docs), file=sys.stderr if args.markdown else sys.stdout)
    if problems:
        print("netkit gate: not run: " + "; ".join(problems), file=sys.stderr)
        return 2
    failed = any(d["totals"].get("fail") or d["totals"].get("error") or (d.get("guest") or {}).get("exit_status") == 1
                 for d in docs)
    return 1 if failed else 0
