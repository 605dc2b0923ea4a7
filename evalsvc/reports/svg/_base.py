"""What the drawing modules share: the look (font, colours, dashes) and value helpers.

Also :class:`UnsupportedFigure` and the trace types that have a static drawing.
"""

from __future__ import annotations

import base64
import math
from html import escape
from typing import Any

import numpy as np

FONT = "DejaVu Sans, Noto Sans CJK SC, Noto Sans CJK JP, sans-serif"
#: plotly_white's colour sequence.
COLORWAY = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880", "#FF97FF"]
AXIS_COLOR = "#444"
GRID_COLOR = "#e5e7eb"
DASHES = {"dash": "6,4", "dot": "2,3", "dashdot": "6,3,2,3", "longdash": "10,4"}
SUPPORTED = {"heatmap", "scatter", "scattergl", "bar", "waterfall", "image"}


class UnsupportedFigure(Exception):
    """The figure uses a trace type or feature that has no static drawing here."""


def _x(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _t(text: Any) -> str:
    return escape(str(text), quote=True)


def _array(value: Any) -> list[Any]:
    """Plotly data arrays: lists, numpy arrays, or plotly's base64 typed arrays."""
    if value is None:
        return []
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
        return arr.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("text") or "")
    return "" if value is None else str(value)


def text_width(text: str, size: float) -> float:
    """About how wide ``text`` is set at ``size`` px in DejaVu Sans (wide glyphs, CJK, count double)."""
    return sum(size * (1.0 if ord(ch) > 0x2E80 else 0.6) for ch in text)


#: Where a long label may break, after the character.
_BREAKS = "/_-., :|"


def wrap(text: str, max_px: float, size: float, *, max_lines: int = 3) -> list[str]:
    """Break ``text`` into lines no wider than ``max_px``, at separators where it can, whole otherwise.

    Only past ``max_lines`` lines is anything cut (with an ellipsis): a label is read, not guessed.
    """
    text = str(text)
    if text_width(text, size) <= max_px:
        return [text]
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if text_width(rest, size) <= max_px:
            lines.append(rest)
            rest = ""
            break
        # the longest prefix that fits, cut after a separator when one is in its second half
        fit = 1
        while fit < len(rest) and text_width(rest[: fit + 1], size) <= max_px:
            fit += 1
        cut = max((i + 1 for i, ch in enumerate(rest[:fit]) if ch in _BREAKS and i + 1 > fit // 2), default=fit)
        lines.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        last = lines[-1]
        while last and text_width(last + "…", size) > max_px:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines
