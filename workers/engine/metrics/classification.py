"""Classification metrics: accuracy, precision, recall, F1, ROC AUC, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.metrics._common import indices, names, safe_div, to_python
from workers.engine.metrics.auc import roc_auc
from workers.engine.metrics.intervals import ANALYTIC_ROWS, DEFAULT_RESAMPLES, DEFAULT_SEED
from workers.engine.metrics.uncertainty import classification_intervals

__all__ = ["classification_metrics"]


def classification_metrics(
    y_true: Sequence[Any] | Array,
    y_pred: Sequence[Any] | Array,
    proba: Array | None,
    labels: Sequence[Any],
    positive_label: Any = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    analytic_above: int | None = ANALYTIC_ROWS,
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
    resamples, seed:
        Size and seed of the stratified bootstrap behind the intervals of
        F1, macro averages and ROC AUC; ``resamples=0`` leaves them out.
    analytic_above:
        Above this many rows those intervals are analytic instead (DeLong
        for ROC AUC, the delta method for F1 and macro averages; see
        :mod:`workers.engine.metrics.analytic`); ``None`` always bootstraps.

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (``None``
        without ``proba`` or when a class is absent from ``y_true``),
        ``average`` (``"binary"`` or ``"macro"``), ``positive_label``,
        ``labels``, ``confusion_matrix`` (rows true, columns predicted),
        ``per_class`` (keyed by ``str(label)``), ``support``,
        ``averaged_over`` and ``absent_classes`` (macro: the labels present
        in the truth or the predictions, which the averages cover, and the
        rest), ``flags`` (metric → why it is undefined or degenerate), and
        ``intervals``, ``per_class_intervals`` and ``interval_method`` (see
        :mod:`workers.engine.metrics.uncertainty`).

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
    t = indices(y_true, labels, "y_true")
    p = indices(y_pred, labels, "y_pred")
    n = t.size
    if n == 0:
        raise ValueError("no samples to score")
    if p.size != n:
        raise ValueError(f"y_true has {n} values but y_pred has {p.size}")

    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    precision = safe_div(tp, predicted)
    recall = safe_div(tp, actual)
    # 2tp / (2tp + fp + fn) equals 2PR / (P + R) and is 0 exactly where
    # scikit-learn's zero_division=0 makes it 0.
    f1 = safe_div(2.0 * tp, predicted + actual)

    binary = k == 2
    flags: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if binary:
        pos = _positive_label(labels, positive_label)
        pi = labels.index(pos)
        scores = (float(precision[pi]), float(recall[pi]), float(f1[pi]))
        if predicted[pi] == 0:
            flags["precision"] = f"no row was predicted {pos!r}: precision is 0/0, reported as 0 as scikit-learn does"
        if actual[pi] == 0:
            flags["recall"] = f"no row is labelled {pos!r}: recall is 0/0, reported as 0 as scikit-learn does"
        if predicted[pi] + actual[pi] == 0:
            flags["f1"] = f"{pos!r} occurs in neither the labels nor the predictions: F1 is 0/0, reported as 0"
    else:
        pos = None
        # scikit-learn's macro average: the labels present in y_true or y_pred.
        present = (predicted + actual) > 0
        scores = (float(precision[present].mean()), float(recall[present].mean()), float(f1[present].mean()))
        extra["averaged_over"] = [label for label, here in zip(labels, present, strict=True) if here]
        extra["absent_classes"] = [label for label, here in zip(labels, present, strict=True) if not here]
        never_predicted = [label for i, label in enumerate(labels) if present[i] and predicted[i] == 0]
        never_true = [label for i, label in enumerate(labels) if present[i] and actual[i] == 0]
        if never_predicted:
            flags["precision"] = (
                f"never predicted: {names(never_predicted)}; their precision is 0/0 and counts as 0 in the "
                "macro average, as in scikit-learn"
            )
        if never_true:
            flags["recall"] = (
                f"not in the labels: {names(never_true)}; their recall is 0/0 and counts as 0 in the macro "
                "average, as in scikit-learn"
            )
        if extra["absent_classes"]:
            flags["average"] = (
                f"classes in neither the labels nor the predictions are left out of the macro averages: "
                f"{names(extra['absent_classes'])}"
            )

    auc = roc_auc(t, proba, k, pi if binary else None)
    if proba is not None and auc is None:
        missing = [label for i, label in enumerate(labels) if actual[i] == 0]
        flags["roc_auc"] = (
            f"undefined: no row is labelled {names(missing)} (absent classes have no ROC curve)"
            if missing
            else "undefined: the scores are not all finite"
        )

    return {
        "accuracy": float(tp.sum() / n),
        "precision": scores[0],
        "recall": scores[1],
        "f1": scores[2],
        "roc_auc": auc,
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
        **extra,
        "flags": flags,
        **classification_intervals(
            t, p, proba, labels, pi if binary else None, resamples=resamples, seed=seed, analytic_above=analytic_above
        ),
    }


def _positive_label(labels: list[Any], positive_label: Any) -> Any:
    if positive_label is None:
        return sorted(labels)[-1]
    positive_label = to_python(positive_label)
    if positive_label not in labels:
        raise ValueError(f"positive_label {positive_label!r} is not one of the labels {labels!r}")
    return positive_label
