"""``python -m netkit.kernels get|list|remove``: the same as ``netkit kernels``, usable before the CLI wires it."""

from __future__ import annotations

import argparse
import sys

from ..errors import EnvironmentUnusable, InputError
from ..exitcodes import EXIT_BAD_INPUT, EXIT_CANNOT_RUN_HERE, EXIT_INTERRUPTED
from .command import add_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netkit")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["kernels", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except (EnvironmentUnusable, InputError) as exc:
        print(f"netkit kernels: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN_HERE if isinstance(exc, EnvironmentUnusable) else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\nnetkit kernels: interrupted; nothing was left half-fetched", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
