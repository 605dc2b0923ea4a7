"""Dataclasses to JSON-ready dicts: the one conversion every latency record uses.

``dataclasses.asdict`` keeps tuples and non-finite floats; stored results
must be plain JSON, and PostgreSQL's ``jsonb`` rejects ``NaN`` and
``Infinity``, so tuples become lists and non-finite floats ``None``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

__all__ = ["json_dict", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists, numpy scalars as Python numbers and NaN/inf as ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return value


def json_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a JSON-ready dict."""
    data = jsonable(asdict(obj))
    assert isinstance(data, dict)
    return data
