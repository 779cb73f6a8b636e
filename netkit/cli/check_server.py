"""``netkit check-server``: the command line; the check is :mod:`netkit.check.server`, its text :mod:`netkit.report.check`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..check import server
from ..check.result import CHECK_CLIENT_SCHEMA, CHECK_SERVER_SCHEMA
from ..check.server import check_server
from ..errors import EnvironmentUnusable, NetkitError
from ..exitcodes import EXIT_BAD_INPUT, EXIT_CANNOT_RUN_HERE
from ..report.check import ended, print_check
from .help import examples

EXAMPLES = examples(
    "netkit check-server --port 6379 --expect-s 6 -- redis-server --bind 198.18.0.1 --port 6379 --protected-mode no "
    "--tcp-keepalive 3 --save '' --appendonly no --daemonize no",
    "netkit check-server --port 8000 --json -- python3 -m http.server 8000   # no keepalive: verdict no-keepalive",
)
STATUS_HELP = ("Exit status: 0 the death matched --expect-s (or was measured without it), 1 it did not, or the server "
               "never drops a dead client; 2 bad input (the program would not start or listen); 4 cannot run here "
               "(not root, a kernel feature missing).")

HELP = {
    "port": "the TCP port the server listens on (inside the lab)",
    "expect_s": "the death you expect, in seconds after the last segment the server received "
                "(e.g. idle + intvl x cnt); exit 0 only if the measured death matches it",
    "ipv6": "connect over IPv6 (server 2001:2::1) instead of IPv4 (198.18.0.1)",
    "json": "print exactly one JSON object (the result) on stdout",
    "listen_timeout": "seconds to wait for the program to listen (default 10)",
    "timeout": "seconds to wait for the death after the link drop (default 600)",
    "command": "the server program and its arguments, after `--`; it must listen on the lab's server "
               "address (198.18.0.1 / 2001:2::1) or on any address, in the foreground",
}


def command_after_dashes(words: list[str]) -> list[str]:
    """The program's argv from argparse's REMAINDER (which keeps a leading ``--``)."""
    return list(words[1:] if words and words[0] == "--" else words)


SCHEMAS = {"check-server": CHECK_SERVER_SCHEMA, "check-client": CHECK_CLIENT_SCHEMA}


def report_error(command: str, exc: Exception, argv: list[str], as_json: bool) -> int:
    """An audit's problem on stderr (and as the one JSON object with ``--json``); re-raise what is not ours.

    Exit 4 where this machine cannot run the check (EnvironmentUnusable: not root, a kernel feature missing), else
    2: the program, its arguments or the options (ProgramProblem, SettingError, a connect that failed...).
    """
    if not isinstance(exc, (NetkitError, OSError)):
        raise exc
    code = EXIT_CANNOT_RUN_HERE if isinstance(exc, EnvironmentUnusable) else EXIT_BAD_INPUT
    if as_json:
        print(json.dumps({"schema": SCHEMAS[command], "verdict": "error", "error": str(exc), "command": argv,
                          "exit_code": code}))
    print(f"netkit {command}: {exc}", file=sys.stderr)
    return code


def cmd_check_server(args: argparse.Namespace) -> int:
    argv = command_after_dashes(args.command)
    out = sys.stdout
    family = "ipv6" if args.ipv6 else "ipv4"

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        result = check_server(argv, args.port, family, args.expect_s, args.listen_timeout, args.timeout,
                              on_event=None if args.json else say)
    except Exception as exc:  # noqa: BLE001 - report_error decides what is netkit's to report (exit 2 or 4)
        return report_error("check-server", exc, argv, args.json)
    if args.json:
        print(result.to_json(), file=out)
    else:
        print_check(result, out)
        print(f"server stopped ({ended(result.program_exit)}); lab torn down", file=out)
    return result.exit_code


def add_parser(sub: Any) -> None:
    """Register ``check-server`` on the CLI's subparsers."""
    p = sub.add_parser("check-server", help="does a real server's keepalive drop a dead client? (runs it in a lab)",
                       description=(server.__doc__ or "").split("\n\n")[0] + "\n\n" + STATUS_HELP, epilog=EXAMPLES)
    p.add_argument("--port", type=int, required=True, help=HELP["port"])
    p.add_argument("--expect-s", type=float, metavar="S", help=HELP["expect_s"])
    p.add_argument("--ipv6", action="store_true", help=HELP["ipv6"])
    p.add_argument("--json", action="store_true", help=HELP["json"])
    p.add_argument("--listen-timeout", type=float, default=10.0, metavar="S", help=HELP["listen_timeout"])
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help=HELP["timeout"])
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]", help=HELP["command"])
    p.set_defaults(func=cmd_check_server)
