"""Making class labels from models and data sets comparable.

A model may emit int64 labels while the CSV column reads as text ("0", "1")
or as floats (0.0, 1.0 from a Parquet float column); a service form may send
class labels as JSON strings. Everything is brought to one of two kinds
before comparison: ``"int"`` (numpy int64) or ``"str"`` (numpy object array
of Python str).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.errors import EngineError

__all__ = ["LabelKind", "coerce_labels", "infer_label_kind", "kind_of_dtype", "preview"]

LabelKind = str  # "int" or "str"


def kind_of_dtype(dtype: str) -> LabelKind | None:
    """Label kind for a model output element type, or ``None`` if it is not a label type."""
    if dtype == "string":
        return "str"
    if dtype.startswith(("int", "uint")):
        return "int"
    return None


def infer_label_kind(values: Iterable[Any]) -> LabelKind:
    """``"int"`` when every value is an integral number (or its text), else ``"str"``."""
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    try:
        coerce_labels(arr, "int", "labels")
    except EngineError:
        return "str"
    return "int"


def coerce_labels(values: Sequence[Any] | Array, kind: LabelKind, what: str) -> Array:
    """Convert labels to ``kind``.

    Parameters
    ----------
    values:
        Labels as read: numbers, bools, numeric text or arbitrary text.
    kind:
        ``"int"`` or ``"str"``.
    what:
        How to name the values in an error, e.g. ``"label column 'y'"``.

    Returns
    -------
    numpy.ndarray
        int64 for ``"int"``, object array of ``str`` for ``"str"``.

    Raises
    ------
    EngineError
        When a value cannot be read as an integer class label.
    """
    arr = np.asarray(values)
    if kind == "int":
        return _to_int(arr, what)
    if kind == "str":
        return _to_str(arr)
    raise ValueError(f"unknown label kind {kind!r}")


def preview(values: Iterable[Any], limit: int = 10) -> str:
    """Comma-separated reprs of the first ``limit`` values, for messages."""
    items = list(values)
    text = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _to_int(arr: Array, what: str) -> Array:
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        numbers = arr.astype(np.float64, copy=False)
        bad_mask = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    else:
        # Text: parse each distinct value once (columns hold few classes).
        distinct, inverse = np.unique(arr.astype(str), return_inverse=True)
        parsed = pd.to_numeric(pd.Series(distinct), errors="coerce").to_numpy(dtype=np.float64)
        numbers = parsed[inverse.ravel()]
        bad_mask = ~np.isfinite(numbers) | (numbers != np.round(numbers))
        if bad_mask.any():
            bad = distinct[~np.isfinite(parsed) | (parsed != np.round(parsed))]
            raise EngineError(f"{what} holds values that are not integer class labels: {preview(bad)}")
    if bad_mask.any():
        raise EngineError(f"{what} holds values that are not integer class labels: {preview(np.unique(arr[bad_mask]))}")
    if numbers.size and np.abs(numbers).max() > 2**53:
        raise EngineError(f"{what} holds integers too large to compare exactly")
    return numbers.astype(np.int64)


def _to_str(arr: Array) -> Array:
    if arr.dtype.kind in "fiub":
        distinct, inverse = np.unique(arr, return_inverse=True)
        names = np.array([_number_text(v) for v in distinct.tolist()], dtype=object)
        return np.asarray(names[inverse.ravel()].reshape(arr.shape))
    return np.array(
        [v if isinstance(v, str) else str(v.item() if isinstance(v, np.generic) else v) for v in arr.ravel()],
        dtype=object,
    ).reshape(arr.shape)


def _number_text(value: Any) -> str:
    # 1.0 in a float column means the class "1", not "1.0".
    if isinstance(value, float) and np.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)
