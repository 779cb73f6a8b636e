"""``netkit check-server``: the command line; the check is :mod:`netkit.check.server`, its text :mod:`netkit.report.check`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..check import server
from ..check.server import check_server
from ..errors import NetkitError
from ..exitcodes import EXIT_UNUSABLE
from ..report.check import ended, print_check

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


def report_error(command: str, exc: Exception, argv: list[str], as_json: bool) -> int:
    """An audit's exit-2 problem on stderr (and as the one JSON object with ``--json``); re-raise what is not ours."""
    if not isinstance(exc, (NetkitError, OSError)):  # ProgramProblem, SettingError, EnvironmentUnusable, a connect...
        raise exc
    if as_json:
        print(json.dumps({"verdict": "error", "error": str(exc), "command": argv, "exit_code": EXIT_UNUSABLE}))
    print(f"netkit {command}: {exc}", file=sys.stderr)
    return EXIT_UNUSABLE


def cmd_check_server(args: argparse.Namespace) -> int:
    argv = command_after_dashes(args.command)
    out = sys.stdout
    family = "ipv6" if args.ipv6 else "ipv4"

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        result = check_server(argv, args.port, family, args.expect_s, args.listen_timeout, args.timeout,
                              on_event=None if args.json else say)
    except Exception as exc:  # noqa: BLE001 - report_error decides what is netkit's to report (exit 2)
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
                       description=(server.__doc__ or "").split("\n\n")[0])
    p.add_argument("--port", type=int, required=True, help=HELP["port"])
    p.add_argument("--expect-s", type=float, metavar="S", help=HELP["expect_s"])
    p.add_argument("--ipv6", action="store_true", help=HELP["ipv6"])
    p.add_argument("--json", action="store_true", help=HELP["json"])
    p.add_argument("--listen-timeout", type=float, default=10.0, metavar="S", help=HELP["listen_timeout"])
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help=HELP["timeout"])
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]", help=HELP["command"])
    p.set_defaults(func=cmd_check_server)
