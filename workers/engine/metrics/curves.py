"""ROC and precision-recall curves, a threshold sweep and a calibration curve, from every stored score.

The curves follow scikit-learn's definitions so users can recompute them:
``roc_curve(drop_intermediate=False)`` (one point per distinct score, a
row predicted positive when its score is ``>= threshold``, the first point
at threshold ``inf``), ``precision_recall_curve`` (the same thresholds, a
last point at recall 0 and precision 1), ``roc_auc_score`` (trapezoids over
the full curve) and ``average_precision_score`` (``sum (R_n - R_{n-1}) P_n``),
and ``calibration_curve(strategy="uniform")`` for the reliability diagram.

Areas are computed from the full curves; the points stored for drawing are
at most ``max_points`` of them (:func:`downsample`), the first and last
always kept, so a stored result stays small for any number of rows. All of
it is vectorised: one sort and two cumulative sums per curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workers.engine.arrays import Array

__all__ = [
    "CALIBRATION_BINS",
    "MAX_CURVE_POINTS",
    "binary_curves",
    "calibration",
    "downsample",
    "threshold_counts",
    "threshold_sweep",
]

#: Most points stored per curve (the areas come from every point).
MAX_CURVE_POINTS = 200

#: Equal-width bins of the reliability diagram.
CALIBRATION_BINS = 10


def threshold_counts(is_positive: Array, scores: Array) -> tuple[Array, Array, Array]:
    """Distinct thresholds (descending) and the true and false positives at each (``score >= threshold``)."""
    positive = np.asarray(is_positive, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(s)[::-1]  # rows of equal score are grouped below, so their order does not matter
    s, positive = s[order], positive[order]
    # The last row of each run of equal scores: every row with that score is on the same side.
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(positive, dtype=np.int64)[ends]
    fps = (ends + 1) - tps
    return s[ends], tps, fps


def downsample(n: int, max_points: int = MAX_CURVE_POINTS) -> Array:
    """Indices of at most ``max_points`` of ``n`` points, evenly spaced, first and last included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _rounded(values: Array) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in values.tolist()]


def binary_curves(
    is_positive: Array,
    scores: Array,
    *,
    max_points: int = MAX_CURVE_POINTS,
    counts: tuple[Array, Array, Array] | None = None,
) -> dict[str, Any] | None:
    """ROC and precision-recall curves of one class's scores, with their exact areas.

    Returns ``None`` when either class is missing or a score is not finite
    (no curve exists). Otherwise ``{"roc": {"fpr", "tpr", "thresholds",
    "auc"}, "pr": {"precision", "recall", "thresholds", "average_precision"},
    "positives", "negatives", "points"}`` where ``points`` is how many points
    the full ROC curve has; the lists hold at most ``max_points`` of them.
    A threshold of ``inf`` is stored as ``None``. ``counts``:
    :func:`threshold_counts` of the same arrays, when the caller has them.
    """
    positive = np.asarray(is_positive, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0 or not np.isfinite(s).all():
        return None
    thresholds, tps, fps = counts if counts is not None else threshold_counts(positive, s)
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    roc_thresholds = np.r_[np.inf, thresholds]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)  # trapezoids
    precision = tps / (tps + fps)
    recall = tps / n_pos
    # scikit-learn's average precision: the step integral over decreasing thresholds.
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    # precision_recall_curve: recall decreasing, then a last point (recall 0, precision 1).
    pr_precision = np.r_[precision[::-1], 1.0]
    pr_recall = np.r_[recall[::-1], 0.0]
    pr_thresholds = thresholds[::-1]
    roc_keep = downsample(tpr.size, max_points)
    pr_keep = downsample(pr_precision.size, max_points)
    return {
        "roc": {
            "fpr": fpr[roc_keep].tolist(),
            "tpr": tpr[roc_keep].tolist(),
            "thresholds": _rounded(roc_thresholds[roc_keep]),
            "auc": auc,
        },
        "pr": {
            "precision": pr_precision[pr_keep].tolist(),
            "recall": pr_recall[pr_keep].tolist(),
            # The last point (recall 0) has no threshold.
            "thresholds": _rounded(np.r_[pr_thresholds, np.inf][pr_keep]),
            "average_precision": average_precision,
        },
        "positives": n_pos,
        "negatives": n_neg,
        "points": int(tpr.size),
    }


def threshold_sweep(
    is_positive: Array,
    scores: Array,
    *,
    max_points: int = MAX_CURVE_POINTS,
    counts: tuple[Array, Array, Array] | None = None,
) -> dict[str, Any] | None:
    """Precision, recall, F1 and false positive rate at each distinct score used as the threshold.

    A row is predicted positive when its score is ``>= threshold``. The
    stored thresholds are at most ``max_points`` of them, ascending; the
    threshold of best F1 is found among all of them. ``None`` when a class is
    missing or a score is not finite.
    """
    positive = np.asarray(is_positive, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0 or not np.isfinite(s).all():
        return None
    thresholds, tps, fps = counts if counts is not None else threshold_counts(positive, s)
    precision = tps / (tps + fps)
    recall = tps / n_pos
    f1 = 2.0 * tps / (tps + fps + n_pos)
    fpr = fps / n_neg
    best = int(np.argmax(f1))
    keep = downsample(thresholds.size, max_points)[::-1]  # ascending thresholds
    return {
        "thresholds": thresholds[keep].tolist(),
        "precision": precision[keep].tolist(),
        "recall": recall[keep].tolist(),
        "f1": f1[keep].tolist(),
        "fpr": fpr[keep].tolist(),
        "best_f1": {
            "threshold": float(thresholds[best]),
            "precision": float(precision[best]),
            "recall": float(recall[best]),
            "f1": float(f1[best]),
            "fpr": float(fpr[best]),
        },
        "points": int(thresholds.size),
    }


def calibration(is_positive: Array, scores: Array, *, bins: int = CALIBRATION_BINS) -> dict[str, Any] | None:
    """Reliability diagram over ``bins`` equal-width bins of [0, 1], Brier score and expected calibration error.

    ``mean_predicted`` and ``fraction_positive`` are those of the non-empty
    bins, as ``sklearn.calibration.calibration_curve(strategy="uniform")``
    returns them; ``counts`` is the rows in each. ``brier`` is
    ``mean((score - is_positive)**2)`` (``brier_score_loss``); ``ece`` is
    ``sum(count/n * |fraction_positive - mean_predicted|)`` over those bins.
    ``None`` when a score is outside [0, 1] or not finite (not a probability).
    """
    positive = np.asarray(is_positive, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0 or not np.isfinite(s).all() or s.min() < 0.0 or s.max() > 1.0:
        return None
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], s)
    total = np.bincount(ids, minlength=bins)
    sums = np.bincount(ids, weights=s, minlength=bins)
    hits = np.bincount(ids, weights=positive, minlength=bins)
    used = total > 0
    mean_predicted = sums[used] / total[used]
    fraction_positive = hits[used] / total[used]
    ece = float(np.sum(total[used] / s.size * np.abs(fraction_positive - mean_predicted)))
    return {
        "bins": bins,
        "strategy": "uniform",
        "edges": edges.tolist(),
        "bin_low": edges[:-1][used].tolist(),
        "bin_high": edges[1:][used].tolist(),
        "mean_predicted": mean_predicted.tolist(),
        "fraction_positive": fraction_positive.tolist(),
        "counts": total[used].astype(int).tolist(),
        "brier": float(np.mean((s - positive) ** 2)),
        "ece": ece,
        "rows": int(s.size),
    }
