"""Small helpers shared by the metric modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workers.engine.arrays import Array


def to_python(value: Any) -> Any:
    """Turn a numpy scalar into the matching Python scalar; leave others as they are."""
    return value.item() if isinstance(value, np.generic) else value


def safe_div(num: Array, den: Array) -> Array:
    """``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def indices(values: Sequence[Any] | Array, labels: list[Any], name: str) -> Array:
    """Map each value to its position in ``labels``; reject unknown values."""
    lookup = {label: i for i, label in enumerate(labels)}
    arr = np.asarray(values).ravel()
    uniques, inverse = np.unique(arr, return_inverse=True)
    try:
        positions = np.array([lookup[to_python(u)] for u in uniques], dtype=np.int64)
    except KeyError as exc:
        unknown = sorted({repr(to_python(u)) for u in uniques if to_python(u) not in lookup})
        raise ValueError(f"{name} holds values that are not in labels: {', '.join(unknown[:10])}") from exc
    return positions[inverse.ravel()] if uniques.size else np.zeros(0, dtype=np.int64)


def names(values: Sequence[Any]) -> str:
    """``'a', 'b'`` for messages."""
    return ", ".join(repr(v) for v in values)
