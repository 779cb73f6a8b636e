"""``netkit check-client``: the command line; the check is :mod:`netkit.check.client`, its text :mod:`netkit.report.check`.

Progress goes to stderr as it happens; stdout carries the report, whose first
line is the verdict (or, with ``--json``, exactly one JSON object).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..check import client
from ..check.client import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_MAX_WAIT_S, check_client
from ..enums import FaultName
from ..faults import NOTICEABLE_FAULTS
from ..report.check import print_client_check
from .check_server import command_after_dashes, report_error
from .help import examples

EXAMPLES = examples(
    "netkit check-client --expect-s 4 -- socat -u 'TCP:{host}:{port},keepalive,keepidle=1,keepintvl=1,keepcnt=3' -",
    "netkit check-client --json -- curl -sS --keepalive-time 1 http://{host}:{port}/",
)
STATUS_HELP = ("Exit status: 0 the client noticed as --expect-s says (or was measured without it), 1 it did not; 2 bad "
               "input (the program would not start or connect); 4 cannot run here (not root, a kernel feature missing).")

HELP = {
    "expect_s": "the time you expect the client to notice, in seconds after the last segment it received "
                "(e.g. idle + intvl x cnt); exit 0 only if it matches",
    "ipv6": "the silent server at 2001:2::1 instead of 198.18.0.1 (write [{host}] where a URL needs brackets)",
    "json": "print exactly one JSON object (the result) on stdout",
    "fault": "how the path breaks (default link-down: the server's veth end goes down)",
    "max_wait": f"seconds to wait after the break for the client to notice (default {DEFAULT_MAX_WAIT_S:g})",
    "connect_timeout": f"seconds the client may take to connect (default {DEFAULT_CONNECT_TIMEOUT_S:g})",
    "middlebox_timeout": "put a router between the client and the silent server that forgets a flow idle for S whole "
                         "seconds (conntrack), as a cloud load balancer or NAT gateway does, instead of a --fault: "
                         "a keepalive shorter than S keeps the flow (verdict SURVIVED), a longer one finds it gone",
    "port": "the silent server's port (default: any free port; {port} says which)",
    "command": "the client program and its arguments, after `--`; {host} and {port} in them become the silent "
               "server's address and port",
}


def cmd_check_client(args: argparse.Namespace) -> int:
    argv = command_after_dashes(args.command)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = check_client(argv, "ipv6" if args.ipv6 else "ipv4", args.expect_s, args.fault, args.max_wait,
                              args.port, args.connect_timeout, on_event=None if args.json else progress,
                              middlebox_timeout_s=args.middlebox_timeout)
    except Exception as exc:  # noqa: BLE001 - report_error decides what is netkit's to report (exit 2 or 4)
        return report_error("check-client", exc, argv, args.json)
    if args.json:
        print(result.to_json())
    else:
        print_client_check(result, sys.stdout)
    return result.exit_code


def add_parser(sub: Any) -> None:
    """Register ``check-client`` on the CLI's subparsers."""
    p = sub.add_parser("check-client", help="how, and when, does a real client notice a dead server? (runs it in a lab)",
                       description=(client.__doc__ or "").split("\n\n")[0] + "\n\n" + STATUS_HELP, epilog=EXAMPLES)
    p.add_argument("--expect-s", type=float, metavar="S", help=HELP["expect_s"])
    p.add_argument("--ipv6", action="store_true", help=HELP["ipv6"])
    p.add_argument("--json", action="store_true", help=HELP["json"])
    p.add_argument("--fault", default=FaultName.LINK_DOWN, choices=list(NOTICEABLE_FAULTS), help=HELP["fault"])
    p.add_argument("--max-wait", type=float, default=DEFAULT_MAX_WAIT_S, metavar="S", help=HELP["max_wait"])
    p.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT_S, metavar="S",
                   help=HELP["connect_timeout"])
    p.add_argument("--port", type=int, default=0, help=HELP["port"])
    p.add_argument("--middlebox-timeout", type=int, metavar="S", help=HELP["middlebox_timeout"])
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]", help=HELP["command"])
    p.set_defaults(func=cmd_check_client)
