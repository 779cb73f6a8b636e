"""What the HTML pages and their SVG timelines share: escaping (no URL survives) and the outcome colours."""

from __future__ import annotations

import html
import re
from typing import Any

STYLE = {
    "pass": ("#1e7b34", "#d7f0dc", "PASS"),
    "fail": ("#c0262d", "#fbd3d3", "FAIL"),
    "error": ("#7b1fa2", "#ecd8f4", "ERROR"),
    "skip": ("#666b70", "#e7e8ea", "SKIP"),
    "xfail": ("#a65f00", "#fde7c2", "XFAIL"),
    "xpass": ("#1259b0", "#d5e4f8", "XPASS"),
    "inconclusive": ("#8a6d00", "#fff5c2", "INCONCLUSIVE"),  # amber on pale yellow: neither a pass nor a failure
}
_UNKNOWN_STYLE = ("#444444", "#eeeeee", "?")


def _e(value: Any) -> str:
    """Escape any document value for HTML text or an attribute (quotes included).

    URL schemes are dropped too (``https://host/x`` -> ``host/x``): the page
    promises no URL at all, whatever a reason or an explain text quotes.
    """
    return html.escape(_without_scheme("" if value is None else str(value)), quote=True)


def _style(outcome: str | None) -> tuple[str, str, str]:
    return STYLE.get(outcome or "", _UNKNOWN_STYLE)


def _without_scheme(text: str) -> str:
    """``https://host/path`` -> ``host/path``: still readable and pasteable, but no URL in the page."""
    return re.sub(r"\b[A-Za-z][A-Za-z0-9+.-]*://", "", text)


def badge(outcome: str, text: str | None = None, zero: bool = False) -> str:
    """An outcome as a coloured pill (the header's totals, each section's title)."""
    colour, _, label = _style(outcome)
    classes = "badge" + (" zero" if zero else "")
    return f'<span class="{classes}" style="background:{colour}">{_e(text or label)}</span>'
