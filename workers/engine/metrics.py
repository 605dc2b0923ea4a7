"""Classification and regression metrics in plain numpy.

The definitions follow scikit-learn's (``zero_division=0``, ROC AUC from the
Mann-Whitney rank statistic with ties averaged, one-vs-rest macro AUC for
several classes) so the numbers match what users compute themselves, without
putting scikit-learn on the workers. Every value returned is a plain Python
``int``/``float``/``str``/``None`` so the dicts serialise to JSON as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "regression_metrics", "roc_auc_binary", "to_python"]


def to_python(value: Any) -> Any:
    """Turn a numpy scalar into the matching Python scalar; leave others as they are."""
    return value.item() if isinstance(value, np.generic) else value


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None,
    labels: Sequence[Any],
    positive_label: Any = None,
) -> dict[str, Any]:
    """Score class predictions against true labels.

    Parameters
    ----------
    y_true, y_pred:
        True and predicted labels, each one of ``labels``.
    proba:
        Class scores of shape ``(n, len(labels))``, columns in ``labels``
        order, or ``None``.
    labels:
        Every class, in the order used for the confusion matrix and
        ``proba`` columns. Two labels make the problem binary.
    positive_label:
        For binary problems, the class whose precision, recall and F1 are
        reported; defaults to the last of the sorted labels.

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (``None``
        without ``proba`` or when a class is absent from ``y_true``),
        ``average`` (``"binary"`` or ``"macro"``), ``positive_label``,
        ``labels``, ``confusion_matrix`` (rows true, columns predicted),
        ``per_class`` (keyed by ``str(label)``) and ``support``.

    Raises
    ------
    ValueError
        For empty input, mismatched lengths, fewer than two labels, values
        outside ``labels`` or a ``proba`` of the wrong shape.
    """
    labels = [to_python(v) for v in labels]
    k = len(labels)
    if k < 2:
        raise ValueError("classification metrics need at least two labels")
    if len(set(labels)) != k:
        raise ValueError("labels must be distinct")
    t = _indices(y_true, labels, "y_true")
    p = _indices(y_pred, labels, "y_pred")
    n = t.size
    if n == 0:
        raise ValueError("no samples to score")
    if p.size != n:
        raise ValueError(f"y_true has {n} values but y_pred has {p.size}")

    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, actual)
    # 2tp / (2tp + fp + fn) equals 2PR / (P + R) and is 0 exactly where
    # scikit-learn's zero_division=0 makes it 0.
    f1 = _safe_div(2.0 * tp, predicted + actual)

    binary = k == 2
    if binary:
        pos = _positive_label(labels, positive_label)
        pi = labels.index(pos)
        scores = (float(precision[pi]), float(recall[pi]), float(f1[pi]))
    else:
        pos = None
        scores = (float(precision.mean()), float(recall.mean()), float(f1.mean()))

    return {
        "accuracy": float(tp.sum() / n),
        "precision": scores[0],
        "recall": scores[1],
        "f1": scores[2],
        "roc_auc": _roc_auc(t, proba, k, pi if binary else None),
        "average": "binary" if binary else "macro",
        "positive_label": pos,
        "labels": labels,
        "confusion_matrix": cm.tolist(),
        "per_class": {
            str(label): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(actual[i]),
            }
            for i, label in enumerate(labels)
        },
        "support": int(n),
    }


def regression_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Mean absolute error, root mean squared error and R² of ``y_pred``.

    R² follows scikit-learn's ``force_finite`` rule: with a constant
    ``y_true`` it is 1.0 for a perfect fit and 0.0 otherwise.

    Returns
    -------
    dict
        ``{"mae", "rmse", "r2", "support"}``.
    """
    yt = np.asarray(y_true, dtype=np.float64).ravel()
    yp = np.asarray(y_pred, dtype=np.float64).ravel()
    if yt.size == 0:
        raise ValueError("no samples to score")
    if yt.size != yp.size:
        raise ValueError(f"y_true has {yt.size} values but y_pred has {yp.size}")
    err = yt - yp
    ss_res = float(np.dot(err, err))
    centred = yt - yt.mean()
    ss_tot = float(np.dot(centred, centred))
    # A constant y_true makes R² 0/0; scikit-learn's force_finite rule applies.
    r2 = (1.0 if ss_res == 0.0 else 0.0) if ss_tot == 0.0 else 1.0 - ss_res / ss_tot
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt(ss_res / yt.size)),
        "r2": float(r2),
        "support": int(yt.size),
    }


def roc_auc_binary(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve from the Mann-Whitney U statistic.

    Tied scores share their average rank, which counts a positive-negative
    tie as half a correct ordering, as the trapezoidal ROC area does.
    Returns ``None`` when either class is missing or a score is not finite.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(is_positive.sum())
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0 or not np.isfinite(scores).all():
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # mean of ranks end-count+1 .. end
    rank_sum = float(average_rank[inverse.ravel()][is_positive].sum())
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _roc_auc(t: np.ndarray, proba: np.ndarray | None, k: int, positive_index: int | None) -> float | None:
    if proba is None:
        return None
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape != (t.size, k):
        raise ValueError(f"proba must have shape ({t.size}, {k}), got {proba.shape}")
    if positive_index is not None:
        return roc_auc_binary(t == positive_index, proba[:, positive_index])
    aucs = []
    for i in range(k):
        auc = roc_auc_binary(t == i, proba[:, i])
        if auc is None:
            return None  # a class absent from y_true leaves macro AUC undefined
        aucs.append(auc)
    return float(np.mean(aucs))


def _indices(values: Sequence[Any] | np.ndarray, labels: list[Any], name: str) -> np.ndarray:
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


def _positive_label(labels: list[Any], positive_label: Any) -> Any:
    if positive_label is None:
        return sorted(labels)[-1]
    positive_label = to_python(positive_label)
    if positive_label not in labels:
        raise ValueError(f"positive_label {positive_label!r} is not one of the labels {labels!r}")
    return positive_label


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out
