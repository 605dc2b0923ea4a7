"""The interval of every metric: which method, on how many rows, from which resamples.

Proportions (accuracy, binary precision and recall, and each class's
precision and recall) get Wilson score intervals; F1, macro averages, ROC
AUC, MAE, RMSE and R² get percentile intervals from a bootstrap (stratified
by true class for classifiers) whose seed and size are recorded. See
:mod:`workers.engine.metrics.intervals` for how to redraw the resamples.
Above ``analytic_above`` rows (default ``ANALYTIC_ROWS``) those get analytic
intervals instead — DeLong for ROC AUC, the delta method for F1 and macro
averages, normal theory for MAE, RMSE and R² (see
:mod:`workers.engine.metrics.analytic`) — recorded under
``interval_method["analytic"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.metrics import analytic
from workers.engine.metrics._common import safe_div
from workers.engine.metrics.intervals import (
    ANALYTIC_ROWS,
    CONFIDENCE,
    bootstrap_interval,
    bootstrap_stats,
    wilson_interval,
)

__all__ = ["classification_intervals", "regression_intervals"]

#: Above this many row-resample-class visits the ROC AUC interval is skipped (say, 1,000 classes on a
#: million rows): it would cost more than the evaluation itself.
_AUC_BUDGET = 4_000_000_000
#: Rows × resamples × passes a bootstrap may take before it uses fewer resamples, never under
#: ``_MIN_RESAMPLES``: on large data sets the intervals are narrow and 200 resamples place them well.
_WORK_BUDGET = 50_000_000
_MIN_RESAMPLES = 200
#: Row-class visits above which the analytic macro ROC AUC interval is skipped (a sort per class).
_ANALYTIC_AUC_BUDGET = 500_000_000


def _planned(requested: int, n: int, passes: int) -> int:
    if requested <= 0:
        return 0
    return min(requested, max(_MIN_RESAMPLES, _WORK_BUDGET // max(1, n * passes)))


def _method(resamples: int, requested: int, seed: int, strata: str | None) -> dict[str, Any]:
    bootstrap = {"resamples": resamples, "seed": seed, "stratified_by": strata, "interval": "percentile"}
    if resamples != requested:
        bootstrap["requested"] = requested
    return {"confidence": CONFIDENCE, "proportions": "wilson", "bootstrap": bootstrap}


def classification_intervals(
    t: Array,
    p: Array,
    proba: Array | None,
    labels: list[Any],
    positive_index: int | None,
    *,
    resamples: int,
    seed: int,
    analytic_above: int | None = ANALYTIC_ROWS,
) -> dict[str, Any]:
    """``{"intervals", "per_class_intervals", "interval_method"}`` for :func:`classification_metrics`."""
    k, n = len(labels), t.size
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp, predicted, actual = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    intervals: dict[str, Any] = {"accuracy": wilson_interval(int(tp.sum()), n)}
    if positive_index is not None:
        intervals["precision"] = wilson_interval(int(tp[positive_index]), int(predicted[positive_index]))
        intervals["recall"] = wilson_interval(int(tp[positive_index]), int(actual[positive_index]))
    per_class: dict[str, dict[str, Any]] = {
        str(label): {
            "precision": wilson_interval(int(tp[i]), int(predicted[i])),
            "recall": wilson_interval(int(tp[i]), int(actual[i])),
        }
        for i, label in enumerate(labels)
    }
    notes: list[str] = []
    requested = resamples
    auc_columns = _auc_columns(t, proba, k, positive_index)
    if requested > 0 and analytic_above is not None and n > analytic_above:
        assert proba is not None or not auc_columns
        _analytic_classification(cm, t, proba, labels, positive_index, auc_columns, intervals, per_class, notes)
        method = _analytic_method(analytic_above, classification=True)
        if notes:
            method["notes"] = notes
        return {
            "intervals": {name: value for name, value in intervals.items() if value is not None},
            "per_class_intervals": per_class,
            "interval_method": method,
        }
    resamples = _planned(requested, n, 1 + len(auc_columns))
    if resamples > 0:
        if auc_columns and len(auc_columns) * n * resamples > _AUC_BUDGET:
            notes.append(f"ROC AUC interval not computed: {len(auc_columns)} classes × {n} rows is too many")
            auc_columns = []
        stats = bootstrap_stats(n, t, resamples, seed, _classification_statistic(t, p, proba, k, auc_columns))
        f1 = stats["f1"]  # (resamples, k)
        if positive_index is not None:
            intervals["f1"] = bootstrap_interval(f1[:, positive_index], n)
        else:
            for name in ("precision", "recall", "f1"):
                intervals[name] = bootstrap_interval(stats[f"macro_{name}"], n)
        for i, label in enumerate(labels):
            if actual[i] + predicted[i] > 0:
                per_class[str(label)]["f1"] = bootstrap_interval(f1[:, i], n)
        if auc_columns:
            intervals["roc_auc"] = bootstrap_interval(stats["roc_auc"], n)
    method = _method(resamples, requested, seed, "true class")
    if notes:
        method["notes"] = notes
    return {
        "intervals": {name: value for name, value in intervals.items() if value is not None},
        "per_class_intervals": per_class,
        "interval_method": method,
    }


def regression_intervals(
    err: Array, y_true: Array, *, resamples: int, seed: int, analytic_above: int | None = ANALYTIC_ROWS
) -> dict[str, Any]:
    """``{"intervals", "interval_method"}`` for :func:`regression_metrics`."""
    n = y_true.size
    if resamples > 0 and analytic_above is not None and n > analytic_above:
        return {
            "intervals": analytic.regression_analytic(err, y_true),
            "interval_method": _analytic_method(analytic_above, classification=False),
        }
    intervals: dict[str, Any] = {}
    requested, resamples = resamples, _planned(resamples, n, 2)
    if resamples > 0:

        def statistic(idx: Array) -> dict[str, Array]:
            e, y = err[idx], y_true[idx]
            ss_res = np.einsum("ij,ij->i", e, e)
            centred = y - y.mean(axis=1, keepdims=True)
            ss_tot = np.einsum("ij,ij->i", centred, centred)
            r2 = np.full(len(idx), np.nan)
            np.subtract(1.0, ss_res / np.where(ss_tot > 0, ss_tot, 1.0), out=r2, where=ss_tot > 0)
            return {"mae": np.abs(e).mean(axis=1), "rmse": np.sqrt(ss_res / n), "r2": r2}

        stats = bootstrap_stats(n, None, resamples, seed, statistic)
        for name in ("mae", "rmse", "r2"):
            record = bootstrap_interval(stats[name], n)
            if record is not None:
                intervals[name] = record
    return {"intervals": intervals, "interval_method": _method(resamples, requested, seed, None)}


def _analytic_method(above: int, *, classification: bool) -> dict[str, Any]:
    if classification:
        methods = {"f1_and_averages": "delta", "roc_auc": "delong", "stratified_by": "true class"}
    else:
        methods = {"mae": "normal", "rmse": "normal", "r2": "delta"}
    return {"confidence": CONFIDENCE, "proportions": "wilson", "analytic": {"above_rows": above, **methods}}


def _analytic_classification(
    cm: Array,
    t: Array,
    proba: Array | None,
    labels: list[Any],
    positive_index: int | None,
    auc_columns: list[int],
    intervals: dict[str, Any],
    per_class: dict[str, dict[str, Any]],
    notes: list[str],
) -> None:
    k, n = cm.shape[0], t.size
    f1 = analytic.per_class_intervals(cm, "f1")
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    if positive_index is not None:
        intervals["f1"] = f1[positive_index]
    else:
        intervals.update(analytic.macro_intervals(cm))
    for i, label in enumerate(labels):
        if actual[i] + predicted[i] > 0 and f1[i] is not None:
            per_class[str(label)]["f1"] = f1[i]
    if not auc_columns or proba is None:
        return
    if positive_index is not None:
        intervals["roc_auc"] = analytic.binary_auc_interval(t == positive_index, proba[:, positive_index])
    elif k * n > _ANALYTIC_AUC_BUDGET:
        notes.append(f"ROC AUC interval not computed: {k} classes × {n} rows is too many")
    else:
        intervals["roc_auc"] = analytic.macro_auc_interval(t, proba, k)


def _auc_columns(t: Array, proba: Array | None, k: int, positive_index: int | None) -> list[int]:
    if proba is None or not np.isfinite(proba).all():
        return []
    if (np.bincount(t, minlength=k) == 0).any():
        return []  # undefined on the data, hence on every resample
    return [positive_index] if positive_index is not None else list(range(k))


def _classification_statistic(
    t: Array, p: Array, proba: Array | None, k: int, auc_columns: list[int]
) -> Callable[[Array], dict[str, Array]]:
    n = t.size
    correct = t == p
    sorted_columns = [_SortedScores(proba[:, c], t == c) for c in auc_columns] if proba is not None else []

    def statistic(idx: Array) -> dict[str, Array]:
        b = len(idx)
        offsets = (np.arange(b) * k)[:, None]
        tt, pp = t[idx] + offsets, p[idx] + offsets
        tp = np.bincount(tt[correct[idx]], minlength=b * k).reshape(b, k).astype(np.float64)
        predicted = np.bincount(pp.ravel(), minlength=b * k).reshape(b, k).astype(np.float64)
        actual = np.bincount(tt.ravel(), minlength=b * k).reshape(b, k).astype(np.float64)
        precision, recall = safe_div(tp, predicted), safe_div(tp, actual)
        f1 = safe_div(2.0 * tp, predicted + actual)
        present = (predicted + actual) > 0
        count = present.sum(axis=1)
        out = {"f1": f1}
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[f"macro_{name}"] = (values * present).sum(axis=1) / count
        if sorted_columns:
            weights = np.bincount((idx + (np.arange(b) * n)[:, None]).ravel(), minlength=b * n).reshape(b, n)
            weights = weights.astype(np.int64, copy=False)
            out["roc_auc"] = np.mean([s.auc(weights) for s in sorted_columns], axis=0)
        return out

    return statistic


class _SortedScores:
    """One class's scores sorted once, so each resample's AUC is a weighted count over the sorted rows.

    With resampling weights ``w`` (how often each row was drawn), twice the
    Mann-Whitney U is ``sum(w_pos * (2 * negatives below + negatives tied))``,
    all in integers, which is what the ROC area of the resampled rows is.
    """

    def __init__(self, scores: Array, positive: Array) -> None:
        self.order = np.argsort(scores, kind="stable")
        ranked = scores[self.order]
        self.starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        self.ties = self.starts.size < ranked.size
        if self.ties:
            self.ends = np.r_[self.starts[1:], ranked.size] - 1
            self.group = np.repeat(np.arange(self.starts.size), np.diff(np.r_[self.starts, ranked.size]))
        self.positive = positive[self.order]

    def auc(self, weights: Array) -> Array:
        w = weights[:, self.order]
        pos = np.where(self.positive, w, 0)
        neg = w - pos
        cumulative = np.cumsum(neg, axis=1)
        below = cumulative - neg
        if self.ties:
            first = below[:, self.starts]
            tied = cumulative[:, self.ends] - first
            twice = 2 * first[:, self.group] + tied[:, self.group]
        else:
            twice = 2 * below
        wins = np.einsum("ij,ij->i", pos, twice) / 2.0
        return np.asarray(wins / (pos.sum(axis=1).astype(np.float64) * neg.sum(axis=1)))
