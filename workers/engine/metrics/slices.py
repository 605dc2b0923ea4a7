"""Metrics per slice: the rows grouped by one column's value (numbers binned into quantiles).

Every slice's counts come from ``numpy.bincount`` over slice codes (one pass
per statistic, whatever the number of slices); only the per-slice ROC AUC
loops, over at most :data:`MAX_SLICES` slices. A slice with fewer than
:data:`MIN_SLICE_ROWS` rows is flagged ``small``: its numbers rest on too
few rows to compare with the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.metrics._common import safe_div
from workers.engine.metrics.auc import roc_auc_binary
from workers.engine.metrics.intervals import wilson_interval

__all__ = [
    "MAX_SLICES",
    "MIN_SLICE_ROWS",
    "QUANTILE_BINS",
    "classification_slices",
    "regression_slices",
    "slice_codes",
]

#: Fewer rows than this and a slice is flagged small.
MIN_SLICE_ROWS = 30
#: Quantile bins of a numeric column.
QUANTILE_BINS = 4
#: A numeric column with at most this many distinct values is sliced by value, not binned.
MAX_DISTINCT_NUMBERS = 10
#: Most slices per column: the most frequent values, the rest together as "(other)".
MAX_SLICES = 20

MISSING = "(missing)"
OTHER = "(other)"


def _number(value: float) -> str:
    return f"{value:.6g}"


def slice_codes(values: Array) -> tuple[Array, list[str], dict[str, Any]]:
    """Each row's slice index, the slices' names, and how the slices were made.

    Numbers with more than :data:`MAX_DISTINCT_NUMBERS` distinct values are
    binned at their quantiles (``numpy.quantile`` at 0, 1/4, ... 1; bins
    ``[low, high)``, the last closed); anything else is sliced by value, the
    :data:`MAX_SLICES` - 1 most frequent kept and the rest grouped. Missing
    values are a slice of their own.
    """
    arr = np.asarray(values)
    numeric = arr.dtype.kind in "iuf"
    if arr.dtype.kind == "O":
        converted = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(dtype=np.float64)
        given = np.array([v is not None and v == v for v in arr.tolist()], dtype=bool)
        numeric = bool(given.any()) and bool(np.isfinite(converted[given]).all())
        if numeric:
            arr = converted
    if numeric:
        numbers = arr.astype(np.float64)
        finite = np.isfinite(numbers)
        distinct = np.unique(numbers[finite])
        if distinct.size > MAX_DISTINCT_NUMBERS:
            edges = np.unique(np.quantile(numbers[finite], np.linspace(0.0, 1.0, QUANTILE_BINS + 1)))
            inner = edges[1:-1]
            codes = np.searchsorted(inner, numbers, side="right")
            names = [
                f"[{_number(edges[i])}, {_number(edges[i + 1])}{']' if i == edges.size - 2 else ')'}"
                for i in range(edges.size - 1)
            ]
            how: dict[str, Any] = {"binned": "quantiles", "edges": edges.tolist()}
        else:
            codes = np.searchsorted(distinct, numbers)
            names = [_number(v) for v in distinct.tolist()]
            how = {"binned": None}
        if not finite.all():
            codes = np.where(finite, codes, len(names))
            names.append(MISSING)
        return codes.astype(np.int64), names, how
    text = np.array([MISSING if v is None or v != v else str(v) for v in arr.tolist()], dtype=object)
    codes, uniques = pd.factorize(text, sort=True)
    names = [str(u) for u in uniques]
    counts = np.bincount(codes, minlength=len(names))
    if len(names) > MAX_SLICES:
        kept = np.argsort(-counts, kind="stable")[: MAX_SLICES - 1]
        kept.sort()
        remap = np.full(len(names), MAX_SLICES - 1, dtype=np.int64)
        remap[kept] = np.arange(kept.size)
        codes = remap[codes]
        names = [names[i] for i in kept] + [OTHER]
    return np.asarray(codes, dtype=np.int64), names, {"binned": None}


def _rows(names: list[str], counts: Array) -> list[dict[str, Any]]:
    return [
        {"slice": name, "rows": int(n), "small": bool(n < MIN_SLICE_ROWS)}
        for name, n in zip(names, counts.tolist(), strict=True)
    ]


def classification_slices(
    column: str,
    values: Array,
    t: Array,
    p: Array,
    proba: Array | None,
    k: int,
    positive_index: int | None,
) -> dict[str, Any]:
    """Rows, accuracy (with its Wilson interval), and precision/recall/F1/ROC AUC of the positive class
    (binary) or macro F1 over the classes present in the slice (several classes), per slice of ``values``.

    ``t`` and ``p`` are the true and predicted class indices, ``proba`` the
    class scores in the same order.
    """
    codes, names, how = slice_codes(values)
    m = len(names)
    counts = np.bincount(codes, minlength=m)
    cm = np.bincount((codes * k + t) * k + p, minlength=m * k * k).reshape(m, k, k).astype(np.float64)
    correct = np.trace(cm, axis1=1, axis2=2)
    rows = _rows(names, counts)
    for i, row in enumerate(rows):
        row["accuracy"] = float(correct[i] / counts[i]) if counts[i] else None
        row["accuracy_interval"] = wilson_interval(int(correct[i]), int(counts[i]))
    if positive_index is not None:
        tp = cm[:, positive_index, positive_index]
        predicted = cm[:, :, positive_index].sum(axis=1)
        actual = cm[:, positive_index, :].sum(axis=1)
        precision, recall, f1 = safe_div(tp, predicted), safe_div(tp, actual), safe_div(2 * tp, predicted + actual)
        for i, row in enumerate(rows):
            row.update(
                precision=float(precision[i]),
                recall=float(recall[i]),
                f1=float(f1[i]),
                positives=int(actual[i]),
            )
            if proba is not None:
                mask = codes == i
                row["roc_auc"] = roc_auc_binary(t[mask] == positive_index, proba[mask, positive_index])
    else:
        tp = np.diagonal(cm, axis1=1, axis2=2)
        predicted, actual = cm.sum(axis=1), cm.sum(axis=2)
        f1 = safe_div(2 * tp, predicted + actual)
        present = (predicted + actual) > 0
        for i, row in enumerate(rows):
            row["macro_f1"] = float(f1[i][present[i]].mean()) if present[i].any() else None
    return {"column": column, **how, "min_rows": MIN_SLICE_ROWS, "slices": rows}


def regression_slices(column: str, values: Array, y_true: Array, y_pred: Array) -> dict[str, Any]:
    """Rows, MAE, RMSE and R² (``None`` for a constant target in the slice) per slice of ``values``."""
    codes, names, how = slice_codes(values)
    m = len(names)
    counts = np.bincount(codes, minlength=m).astype(np.float64)
    err = y_true - y_pred
    abs_sum = np.bincount(codes, weights=np.abs(err), minlength=m)
    sq_sum = np.bincount(codes, weights=err * err, minlength=m)
    t_sum = np.bincount(codes, weights=y_true, minlength=m)
    t_mean = safe_div(t_sum, counts)
    centred = y_true - t_mean[codes]
    ss_tot = np.bincount(codes, weights=centred * centred, minlength=m)
    rows = _rows(names, counts.astype(np.int64))
    for i, row in enumerate(rows):
        n = counts[i]
        row.update(
            mae=float(abs_sum[i] / n) if n else None,
            rmse=float(np.sqrt(sq_sum[i] / n)) if n else None,
            r2=float(1.0 - sq_sum[i] / ss_tot[i]) if ss_tot[i] > 0 else None,
        )
    return {"column": column, **how, "min_rows": MIN_SLICE_ROWS, "slices": rows}
