"""``netkit gate --kernel IMAGE|SPEC|host`` (repeatable): the gate inside other kernels, then side by side.

The gate's own command calls :func:`gate_on_kernels` when ``--kernel`` is
given.  Each kernel runs the same gate (the same ``--only``, ``--matrix``,
``--repeat``, ``--known``, ``--baseline``, ``--slow-machine``, ``--jobs``, ``--shard``) through
:func:`run_gate_on_kernel`, one kernel after another, booted by
:mod:`netkit.kernels.guest`.  Its document goes to ``--json FILE`` (with
several kernels: ``FILE`` with the kernel's label before the extension,
``gate.debian-6.1.json``), and so do ``--junit`` and ``--html``;
``--markdown`` prints each kernel's table; ``--tap`` takes exactly one kernel
(one TAP stream).  Then the kernel x scenario table
(:mod:`netkit.report.side_by_side`) goes to stdout.

A guest's gate document is the gate's own, with a ``guest`` entry saying how
it ran; that entry is added in one place, :func:`_with_guest`.

Exit status: 1 if any kernel's gate failed (as the gate's own); 4 (cannot run
here) if a kernel could not be fetched or booted or a tool is missing, 2 if a
kernel was asked for wrongly (the other kernels still run; the message names
it); else 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from ..document.codec import dump, load
from ..document.records import GateDocument, GuestRecord
from ..errors import EnvironmentUnusable, InputError
from ..exitcodes import EXIT_BAD_INPUT, EXIT_CANNOT_RUN_HERE, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS
from ..kernels.guest import CLI, GUEST_TIMEOUT_S, REPO_ROOT, WORKDIR, GuestFailed, run_in_kernel
from ..kernels.spec import parse_spec
from ..kernels.tools import kvm_failed_earlier
from ..report.side_by_side import format_table
from . import kernel_ci

GUEST_JOBS = 2  # scenarios at once in a guest: under emulation more made scenarios miss their fault deadline
# What emulation does to the deaths, written into a guest's document (docs/rules.md, "Other kernels under
# emulation"): no window is widened for it.
TCG_PERTURBATION = ("measured 2026-11-29, the same 20 scenarios x3 runs, 2 at a time, host 6.18 vs Debian 6.1 under "
                    "TCG: keepalive deaths' median lateness equal within 16 ms (the timer wheel's step for 1 s "
                    "timers is 32 ms), retransmission (TCP_USER_TIMEOUT) deaths 4-9 ms later; the guest's timers "
                    "run on its own jiffies. Emulation slows the guest's user space instead (applying a fault, "
                    "building labs): hence at most GUEST_JOBS scenarios at once, and KSFT_MACHINE_SLOW=yes, which "
                    "only turns late-only misses without a ledger into XFAIL; windows are not widened")

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
    if getattr(args, "shard", None):
        out += ["--shard", args.shard]
    return out


def gate_on_kernels(args: argparse.Namespace, *, render: Callable[[str, GateDocument], str],
                    summary: Callable[[GateDocument], str] | None = None) -> int:
    """Run the gate in every ``args.kernel``; ``render(name, doc)`` is the gate's report renderer."""
    kernels: list[str] = args.kernel
    if args.tap and len(kernels) > 1:
        raise InputError("--tap with several --kernel: one TAP stream per run; give one kernel per --tap run")
    for spec in kernels:  # every spec is read before any kernel runs: a typo costs nothing
        parse_spec(spec)
    several = len(kernels) > 1
    gate_args = inner_gate_args(args)
    docs, problems, bad_input = [], [], False
    for spec in kernels:
        json_path = per_kernel(args.json, spec, several) or os.path.join(
            os.environ.get("TMPDIR", "/tmp"), f"netkit-gate.{label(spec)}.json")
        try:
            doc = run_gate_on_kernel(spec, gate_args, json_path)
        except (EnvironmentUnusable, InputError) as exc:
            problems.append(f"--kernel {spec}: {exc}")
            bad_input = bad_input or not isinstance(exc, EnvironmentUnusable)
            print(f"netkit gate: --kernel {spec}: {exc}", file=sys.stderr)
            continue
        docs.append(doc)
        rename = functools.partial(per_kernel, spec=spec, several=several)
        texts = [(path, render(name, doc)) for name in ("junit", "html") if (path := rename(getattr(args, name)))]
        texts += kernel_ci.reports(args, doc, rename)  # --kcidb, --nipa
        for path, text in texts:
            with open(path, "w") as f:
                f.write(text)
        if args.tap or args.markdown:
            sys.stdout.write(render("tap" if args.tap else "markdown", doc))
        if summary:
            print(summary(doc), file=sys.stderr if args.tap or args.markdown else sys.stdout)
    if docs and not args.tap:
        print(format_table(docs), file=sys.stderr if args.markdown else sys.stdout)
    if problems:
        print("netkit gate: not run: " + "; ".join(problems), file=sys.stderr)
        return EXIT_BAD_INPUT if bad_input else EXIT_CANNOT_RUN_HERE  # 4: a kernel cannot run here (no qemu, no boot)
    failed = any(d.totals.get("fail") or d.totals.get("error") or (d.guest is not None and d.guest.exit_status == 1)
                 for d in docs)
    inconclusive = any(d.totals.get("inconclusive") for d in docs)
    return EXIT_FAIL if failed else EXIT_INCONCLUSIVE if inconclusive else EXIT_PASS


def gate_command(gate_args: list[str], json_path: str, jobs: int | None) -> list[str]:
    """Python arguments running ``netkit gate --json json_path gate_args``, at most ``jobs`` scenarios at once."""
    gate = ["gate", "--json", json_path, *gate_args]
    if jobs is None or "--jobs" in gate_args:
        return ["-c", CLI, *gate]
    return ["-c", CLI, *gate, "--jobs", str(jobs)]


def run_gate_on_kernel(kernel: str, gate_args: list[str], out_json: str, *, echo: Any = sys.stderr,
                       timeout_s: float = GUEST_TIMEOUT_S, jobs: int | None = GUEST_JOBS) -> GateDocument:
    """Run ``netkit gate --json <out_json> <gate_args>`` in ``kernel`` (a spec, an image path, or "host").

    In a guest at most ``jobs`` scenarios run at once (``gate --jobs``): emulation slows the guest's user space,
    not its kernel's timers (docs/rules.md, "Other kernels under emulation"); on the host the gate runs as it
    always does.

    Returns the loaded gate document with a ``guest`` entry added (also written to ``out_json``):
    {kernel, release, image, accel ("kvm" | "tcg" | "none" for the host), boot_s, wall_s, slow, exit_status}.
    Raises EnvironmentUnusable (a tool is missing, the kernel did not boot) or InputError (unknown spec).
    """
    out_json = os.path.abspath(out_json)
    if kernel == "host":
        started = time.monotonic()
        done = subprocess.run([sys.executable, *gate_command(gate_args, out_json, None)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        if not os.path.exists(out_json):
            raise GuestFailed(f"the gate on the host wrote no document (exit {done.returncode})")
        return _with_guest(out_json, lambda doc: GuestRecord(
            kernel="host", release=os.uname().release, image=None, accel="none", boot_s=0.0,
            wall_s=round(time.monotonic() - started, 2), slow=bool(doc.machine.slow), exit_status=done.returncode))

    copied: dict[str, bool] = {}

    def collect(workdir: str) -> None:
        src = os.path.join(workdir, "gate.json")
        if os.path.exists(src):
            shutil.copyfile(src, out_json)
            copied["json"] = True

    info = run_in_kernel(kernel, gate_command(gate_args, f"{WORKDIR}/gate.json", jobs), echo=echo,
                         timeout_s=timeout_s, collect=collect)
    if not copied:
        raise GuestFailed(f"the gate in kernel {info['release']} ({info['accel']}) wrote no document "
                          f"(exit {info['exit_status']}); its output:\n{info['stdout'][-2000:]}")
    earlier = kvm_failed_earlier()
    guest = GuestRecord(
        kernel=info["kernel"], release=info["release"], image=info["image"], hz=info["hz"], accel=info["accel"],
        boot_s=info["boot_s"], wall_s=info["wall_s"], slow=bool(info["slow"]), exit_status=info["exit_status"],
        jobs=jobs,
        kvm_failure=info["tried"][0] if info["tried"] else (
            f"not tried: KVM failed earlier in this process ({earlier.strip()})" if earlier and
            info["accel"] == "tcg" else None),
        perturbation=TCG_PERTURBATION.replace("GUEST_JOBS", str(jobs)) if info["slow"] else None)
    return _with_guest(out_json, lambda doc: guest)


def _with_guest(path: str, guest: Callable[[GateDocument], GuestRecord]) -> GateDocument:
    """The gate document at ``path`` with its ``guest`` entry (made from the document) added, written back.

    The one place this module reads and writes a gate document (through :mod:`netkit.document.codec`)."""
    doc = load(path)
    doc = dataclasses.replace(doc, guest=guest(doc))
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(dump(doc))
    os.replace(tmp, path)
    return doc
