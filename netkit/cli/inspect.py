"""``netkit inspect PID | --port PORT [--json]``: what dead-peer detection a live process's TCP sockets get.

Read-only and without a lab.  Exit status: 0 the report was printed; 2 bad
input (no such process, no TCP sockets, a port no process uses), the message
on stderr.  The reading is :mod:`netkit.inspect`, the text
:mod:`netkit.report.inspect`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import InputError
from ..exitcodes import EXIT_BAD_INPUT, EXIT_PASS
from ..inspect.assess import ProcessAssessment, assess
from ..inspect.gather import gather, pids_on_port
from ..kernel import kernel_info
from ..privileges import effective_capabilities
from ..report.inspect import process_lines
from .help import examples

SCHEMA = "netkit.inspect/1"
DESCRIPTION = ("For each TCP socket of a live process, in whatever network namespace it lives: SO_KEEPALIVE, "
               "TCP_KEEPIDLE/INTVL/CNT and TCP_USER_TIMEOUT as set on the socket (borrowed with pidfd_getfd; needs "
               "CAP_SYS_PTRACE), else its namespace's sysctls, and the worst-case time to notice a dead peer while "
               "idle and with data in flight. Read-only; exit 0 report printed, 2 bad input.")
EXAMPLES = examples("netkit inspect $(pidof redis-server)", "netkit inspect --port 5432 --json")
HELP = {
    "pid": "the process to inspect (any network namespace)",
    "port": "instead of PID: every process with a TCP socket whose local or remote port is PORT, in any network "
            "namespace a process is in (only those sockets are shown)",
    "json": "print exactly one JSON object on stdout",
}


CAP_SYS_PTRACE = 19


def has_sys_ptrace() -> bool:
    return bool(effective_capabilities() >> CAP_SYS_PTRACE & 1)


def inspect(pid: int | None, port: int | None) -> list[ProcessAssessment]:
    """The assessments, or InputError (exit 2) naming what is wrong with the input."""
    if (pid is None) == (port is None):
        raise InputError("give a PID or --port PORT (one of them)")
    if port is not None and not 1 <= port <= 65535:
        raise InputError(f"invalid port {port}: a TCP port is 1..65535")
    if pid is not None and pid <= 0:
        raise InputError(f"invalid pid {pid}: a process id is a whole number > 0")
    kernel = kernel_info()
    if port is not None:
        found, hidden = pids_on_port(port)
        if not found:
            fix = "" if has_sys_ptrace() else ": run it as root with CAP_SYS_PTRACE to see them"
            unseen = f"; the network namespaces of {hidden} processes were hidden from netkit{fix}" if hidden else ""
            raise InputError(f"no process has a TCP socket on port {port} (listening or connected, in any network "
                             f"namespace netkit can see){unseen}")
        return [assess(gather(p, port), kernel) for p in found]
    assert pid is not None
    facts = gather(pid)
    if not facts.sockets:
        raise InputError(f"pid {pid} ({facts.comm}) has no TCP sockets")
    return [assess(facts, kernel)]


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        found = inspect(args.pid, args.port)
    except InputError as exc:
        if args.json:
            print(json.dumps({"schema": SCHEMA, "error": str(exc), "exit_code": EXIT_BAD_INPUT}))
        print(f"netkit inspect: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        kernel = kernel_info()
        print(json.dumps({"schema": SCHEMA, "kernel": kernel.release, "hz": kernel.hz,
                          "processes": [a.to_dict() for a in found], "exit_code": EXIT_PASS}))
        return EXIT_PASS
    for i, a in enumerate(found):
        if i:
            print()
        for line in process_lines(a):
            print(line)
    return EXIT_PASS


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="what dead-peer detection a live process's TCP sockets get (read-only)",
                       description=DESCRIPTION, epilog=EXAMPLES)
    p.add_argument("pid", type=int, nargs="?", metavar="PID", help=HELP["pid"])
    p.add_argument("--port", type=int, help=HELP["port"])
    p.add_argument("--json", action="store_true", help=HELP["json"])
    p.set_defaults(func=cmd_inspect)
