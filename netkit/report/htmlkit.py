"""What the HTML report and its SVG timelines share: escaping, tolerant readers of the document, outcome colours."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Optional

from .markdown import as_number

STYLE = {
    "pass": ("#1e7b34", "#d7f0dc", "PASS"),
    "fail": ("#c0262d", "#fbd3d3", "FAIL"),
    "error": ("#7b1fa2", "#ecd8f4", "ERROR"),
    "skip": ("#666b70", "#e7e8ea", "SKIP"),
    "xfail": ("#a65f00", "#fde7c2", "XFAIL"),
    "xpass": ("#1259b0", "#d5e4f8", "XPASS"),
}
_UNKNOWN_STYLE = ("#444444", "#eeeeee", "?")

# SVG geometry (px)


def _e(value: Any) -> str:
    """Escape any document value for HTML text or an attribute (quotes included).

    URL schemes are dropped too (``https://host/x`` -> ``host/x``): the page
    promises no URL at all, whatever a reason or an explain text quotes.
    """
    return html.escape(_without_scheme("" if value is None else str(value)), quote=True)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pair(window: Any) -> tuple[Optional[float], Optional[float]]:
    """``[low, high]`` as two floats, (None, None) when it is null or malformed."""
    if isinstance(window, (list, tuple)) and len(window) == 2:
        return as_number(window[0]), as_number(window[1])
    return None, None


def _style(outcome: Optional[str]) -> tuple[str, str, str]:
    return STYLE.get(outcome or "", _UNKNOWN_STYLE)


def _without_scheme(text: str) -> str:
    """``https://host/path`` -> ``host/path``: still readable and pasteable, but no URL in the page."""
    return re.sub(r"\b[A-Za-z][A-Za-z0-9+.-]*://", "", text)
