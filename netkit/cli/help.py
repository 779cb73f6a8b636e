"""What every ``--help`` shares: the formatter, and each command's examples (the epilog).

Every subcommand has a description and an epilog that starts ``example:``
(tests/test_cli.py walks them all, nested ones too).  The formatter fills each
paragraph of a description or an epilog to the terminal's width and keeps an
indented line as written, so an example command is never wrapped.
"""

from __future__ import annotations

import argparse
import re
import textwrap


class Formatter(argparse.HelpFormatter):
    """argparse's, with paragraphs: each filled on its own, an indented line (an example) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in re.split(r"\n\s*\n", text.strip("\n")):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(textwrap.fill(" ".join(line.strip() for line in lines), width,
                                                initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(paragraphs)


def examples(*lines: str) -> str:
    """An epilog: ``example:`` (or ``examples:``) and each command line indented, kept as written."""
    return ("example:" if len(lines) == 1 else "examples:") + "".join(f"\n  {line}" for line in lines)


__all__ = ["Formatter", "examples"]
