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
SUPPORTED = {"heatmap", "scatter", "scattergl", "bar"}


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
