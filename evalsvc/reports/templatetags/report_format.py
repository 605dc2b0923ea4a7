"""Formatting of stored values in reports: the same text in the PDF and the HTML."""

from __future__ import annotations

import json
import math
from datetime import UTC
from typing import Any

from django import template
from django.utils.dateparse import parse_datetime

register = template.Library()


@register.filter
def fmt(value: Any) -> str:
    """Numbers to 4 decimals (or 4 significant digits when tiny or huge); None as an em dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if 1e-3 <= abs(value) < 1e6:
            return f"{value:.4f}"
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2)


@register.filter
def when(value: Any) -> str:
    """An ISO timestamp as "YYYY-MM-DD HH:MM:SS UTC"."""
    if not value:
        return "—"
    moment = parse_datetime(str(value))
    if moment is None:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def shape(dims: Any) -> str:
    if dims is None:
        return "unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
