"""Which rows to explain, and importance over many of them.

Local explanations are for chosen rows: by index, or by a filter over the
data set (misclassified rows, rows predicted as a class, rows whose column
has a value). Global importance is the mean |attribution| per feature over a
sample, also per cohort (rows grouped by label, prediction or a column value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError

__all__ = ["RowFilter", "cohorts", "global_importance", "select_rows"]


@dataclass(frozen=True)
class RowFilter:
    #: "indices", "misclassified", "predicted_class" or "column_value".
    kind: str
    indices: tuple[int, ...] = ()
    value: Any = None
    column: str | None = None
    #: At most this many matching rows, the first ones in data set order.
    limit: int = 20


def select_rows(
    rule: RowFilter,
    *,
    n_rows: int,
    predicted: Array | None = None,
    labels: Array | None = None,
    column: Array | None = None,
) -> Array:
    """Indices (0-based, data set order) of the rows a filter picks; a permanent EngineError if it cannot apply."""
    if rule.kind == "indices":
        idx = np.asarray(rule.indices, dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= n_rows)]
        if len(bad):
            raise EngineError(
                f"rows {', '.join(map(str, bad[:5].tolist()))} do not exist: the data set has {n_rows} rows (0-{n_rows - 1})"
            )
        return idx[: rule.limit] if rule.limit else idx
    if rule.kind == "misclassified":
        if predicted is None or labels is None:
            raise EngineError("choosing misclassified rows needs the data set's label column")
        hit = np.asarray(predicted).astype(str) != np.asarray(labels).astype(str)
    elif rule.kind == "predicted_class":
        if predicted is None:
            raise EngineError("choosing rows by predicted class needs a classification model")
        hit = np.asarray(predicted).astype(str) == str(rule.value)
    elif rule.kind == "column_value":
        if column is None:
            raise EngineError(f"the data set has no column {rule.column!r}")
        hit = np.asarray(column).astype(str) == str(rule.value)
    else:
        raise EngineError(
            f"unknown row filter {rule.kind!r}; use indices, misclassified, predicted_class or column_value"
        )
    return np.flatnonzero(hit)[: rule.limit]


def global_importance(values: Array) -> Array:
    """Mean |attribution| per feature over the rows."""
    return np.abs(values).mean(axis=0) if len(values) else np.zeros(values.shape[1:])


def cohorts(values: Array, keys: Array) -> dict[str, dict[str, Any]]:
    """Global importance and row count per cohort (rows sharing a label, prediction or column value)."""
    out: dict[str, dict[str, Any]] = {}
    keys = np.asarray(keys).astype(str)
    for key in sorted(set(keys.tolist())):
        part = values[keys == key]
        out[key] = {"rows": len(part), "importance": global_importance(part).tolist()}
    return out
