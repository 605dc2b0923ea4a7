"""What an evaluation stores beyond its headline metrics: curves, calibration, a threshold sweep, slices.

Computed once, from every row's stored scores, after the rows are
collected: a single pass and merged chunks (:mod:`.partial`) hand the very
same arrays here, so the curves of a chunked run equal a single pass's.
Slice columns are read on their own (only those columns, in row order, the
same rows the feed read), so they need not be model inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.feed.reader import read_blocks
from workers.engine.metrics._common import indices
from workers.engine.metrics.curves import binary_curves, calibration, threshold_counts, threshold_sweep
from workers.engine.metrics.slices import classification_slices, regression_slices
from workers.engine.types import DatasetRef

__all__ = ["MAX_CLASS_CURVES", "classification_breakdown", "read_slice_values", "regression_breakdown"]

#: One-vs-rest curves are stored for at most this many classes (the most frequent).
MAX_CLASS_CURVES = 10


def read_slice_values(
    data: DatasetRef,
    columns: list[str],
    *,
    select: Array | None = None,
    start: int = 0,
    stop: int | None = None,
) -> dict[str, Array]:
    """The values of ``columns`` for the rows an evaluation scored (``select`` mask, or ``start`` to ``stop``)."""
    if not columns:
        return {}
    parts: dict[str, list[Array]] = {c: [] for c in columns}
    for block in read_blocks(data, list(columns), dict.fromkeys(columns, "any"), start=start, stop=stop):
        keep = None
        if select is not None:
            keep = np.zeros(block.rows, dtype=bool)
            part = select[block.offset : block.offset + block.rows]
            keep[: len(part)] = part
        for c in columns:
            values = block.columns[c]
            missing = block.missing.get(c)
            if missing is not None and missing.any():
                values = values.astype(object)
                values[missing] = None
            parts[c].append(values if keep is None else values[keep])
    return {c: _concat(v) for c, v in parts.items()}


def _concat(arrays: list[Array]) -> Array:
    if not arrays:
        return np.empty(0, dtype=object)
    if len({a.dtype for a in arrays}) > 1:
        arrays = [a.astype(object) for a in arrays]
    return np.concatenate(arrays)


def _operating_point(t: Array, p: Array, scores: Array, pi: int, declared: float | None) -> dict[str, Any]:
    """The point the model's own predictions sit at, from its confusion counts (not read off the sweep)."""
    predicted, actual = p == pi, t == pi
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    positives, negatives = int(actual.sum()), int((~actual).sum())
    point: dict[str, Any] = {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / positives if positives else 0.0,
        "f1": 2 * tp / (tp + fp + positives) if tp + fp + positives else 0.0,
        "fpr": fp / negatives if negatives else 0.0,
    }
    if declared is not None:
        point.update(threshold=float(declared), source="the processing spec's threshold")
    elif (
        np.isfinite(scores).all()
        and scores.min() >= 0.0
        and scores.max() <= 1.0
        and bool(np.all(scores[predicted] >= 0.5))
        and bool(np.all(scores[~predicted] <= 0.5))
    ):
        point.update(threshold=0.5, source="the predictions are the positive class exactly where its score is ≥ 0.5")
    else:
        point.update(threshold=None, source="the model's predictions are not a threshold on the positive class's score")
    return point


def classification_breakdown(
    y_true: Array,
    y_pred: Array,
    proba: Array | None,
    labels: list[Any],
    positive_label: Any,
    *,
    threshold: float | None = None,
    slices: dict[str, Array] | None = None,
) -> dict[str, Any]:
    """Curves, calibration and threshold sweep (binary) or one-vs-rest curves (several classes), and slices.

    ``positive_label`` is the binary problem's positive class (``None`` for
    several classes); ``threshold`` the one the processing spec declares.
    """
    k = len(labels)
    t = indices(y_true, labels, "y_true")
    p = indices(y_pred, labels, "y_pred")
    pi = labels.index(positive_label) if positive_label is not None and k == 2 else None
    out: dict[str, Any] = {}
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        if pi is not None:
            positive, scores = t == pi, proba[:, pi]
            counts = threshold_counts(positive, scores) if np.isfinite(scores).all() else None
            curves = binary_curves(positive, scores, counts=counts)
            classes = [{"label": labels[pi], **curves}] if curves else []
            out["curves"] = {"average": "binary", "classes": classes, "omitted": []}
            sweep = threshold_sweep(positive, scores, counts=counts)
            if sweep is not None:
                sweep["positive_label"] = labels[pi]
                sweep["operating"] = _operating_point(t, p, proba[:, pi], pi, threshold)
                out["threshold_sweep"] = sweep
            reliability = calibration(t == pi, proba[:, pi])
            if reliability is not None:
                reliability.update(of="positive class", positive_label=labels[pi])
                out["calibration"] = reliability
        else:
            support = np.bincount(t, minlength=k)
            order = sorted(range(k), key=lambda i: (-support[i], i))
            drawn = sorted(order[:MAX_CLASS_CURVES])
            classes = []
            for i in drawn:
                curves = binary_curves(t == i, proba[:, i])
                if curves is not None:
                    classes.append({"label": labels[i], **curves})
            out["curves"] = {
                "average": "ovr",
                "classes": classes,
                "omitted": [labels[i] for i in order[MAX_CLASS_CURVES:]],
            }
            # Top-label calibration: how often the most probable class is right, by its probability.
            top = np.argmax(proba, axis=1)
            reliability = calibration(top == t, proba[np.arange(t.size), top])
            if reliability is not None:
                onehot = np.zeros_like(proba)
                onehot[np.arange(t.size), t] = 1.0
                reliability.update(
                    of="top label",
                    brier=float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
                )
                out["calibration"] = reliability
    if slices:
        out["slices"] = [classification_slices(column, values, t, p, proba, k, pi) for column, values in slices.items()]
    return out


def regression_breakdown(y_true: Array, y_pred: Array, slices: dict[str, Array] | None) -> dict[str, Any]:
    if not slices:
        return {}
    return {"slices": [regression_slices(column, values, y_true, y_pred) for column, values in slices.items()]}
