"""Analytic intervals for large data sets: DeLong for ROC AUC, the delta method for F1 and averages, normal theory for errors.

On many rows the bootstrap's resamples cost far more than the evaluation
itself, while these large-sample intervals are as good and take one pass.
Every interval is a Wald interval ``estimate ± z·se`` at ``CONFIDENCE``
(``z`` = 1.96 for 95 %), clipped to the metric's range, and the record keeps
its ``standard_error``.

**ROC AUC — DeLong's method** (DeLong, DeLong & Clarke-Pearson 1988), in the
O(n log n) form of Sun & Xu (2014, IEEE Signal Processing Letters 21(11)):
from the midranks of the scores among the positives, among the negatives and
among all rows, each positive's placement ``V10`` (the share of negatives
scored below it, ties counting one half) and each negative's ``V01`` (the
share of positives scored above it); the AUC is the mean of ``V10`` and its
variance ``var(V10)/m + var(V01)/n`` (sample variances, ``m`` positives and
``n`` negatives). The one-vs-rest macro AUC of several classes averages the
classes' linearised AUCs row by row, each row contributing
``(V10 − AUC)/m`` to its own class's AUC and ``(V01 − AUC)/n`` to every other
class's, and its variance is that of the sum within each true class (the
stratified form below); for two classes this is DeLong's variance exactly.

**F1, precision and recall, per class and macro — the delta method**: each
is a smooth function of the confusion matrix, so its linearisation gives
every cell (true ``s``, predicted ``q``) an influence value, e.g.
``(2·[s = q = c] − F1_c·[q = c]) / (predicted_c + actual_c)`` for ``F1_c``
and the mean over the averaged classes for a macro average. With the true
class counts held fixed, as in the stratified bootstrap this replaces, the
rows of each true class are a multinomial sample over its cells, and the
variance is ``Σ_s n_s/(n_s − 1) · Σ_q count_sq · (value_sq − mean_s)²``.

**MAE, RMSE and R² — normal theory** (central limit theorem, no assumption
on the errors' distribution): MAE ± z·sd(|e|)/√n; RMSE from the interval of
the mean squared error, ``mean(e²) ± z·sd(e²)/√n``, square-rooted at both
ends (negative lower ends become 0); R² = 1 − MSE/Var(y) ± z·se with se the
standard deviation over √n of its influence values
``−(e² − MSE)/Var(y) + MSE·((y − ȳ)² − Var(y))/Var(y)²`` (the delta method).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.metrics._common import safe_div
from workers.engine.metrics.intervals import CONFIDENCE

__all__ = [
    "binary_auc_interval",
    "delong",
    "delong_variance",
    "macro_auc_interval",
    "macro_cell_values",
    "macro_intervals",
    "midranks",
    "per_class_intervals",
    "regression_analytic",
    "stratified_cell_variance",
    "wald",
]


def _z(confidence: float = CONFIDENCE) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wald(
    estimate: float, variance: float, n: int, method: str, low: float = 0.0, high: float = 1.0
) -> dict[str, Any] | None:
    """``estimate ± z·√variance`` clipped to ``[low, high]`` as the stored record; ``None`` if undefined."""
    if not (math.isfinite(estimate) and math.isfinite(variance)) or variance < 0:
        return None
    se = math.sqrt(variance)
    half = _z() * se
    return {
        "low": max(low, estimate - half),
        "high": min(high, estimate + half),
        "method": method,
        "n": int(n),
        "standard_error": se,
    }


# ------------------------------------------------------------------ ROC AUC


def midranks(values: Array) -> Array:
    """1-based ranks of ``values``, tied values sharing the mean of their ranks (Sun & Xu's midranks)."""
    order = np.argsort(values)
    out = np.empty(values.size, dtype=np.float64)
    out[order] = _sorted_midranks(values[order])
    return out


def _sorted_midranks(ranked: Array) -> Array:
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], ranked.size]
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


def delong(is_positive: Array, scores: Array) -> tuple[float, Array, Array]:
    """``(auc, v10, v01)``: the AUC and the placement values of the positives and of the negatives.

    One sort serves the three midrank vectors: the positives' (and the
    negatives') scores in the order of all scores are already sorted.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores)
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)  # a model's float32 scores are sorted as they are: the ranks are the same
    order = np.argsort(scores)  # ties get their mean rank whatever their order, so any sort will do
    ranked, positive = scores[order], is_positive[order]
    overall = _sorted_midranks(ranked)
    m = int(positive.sum())
    n = positive.size - m
    placement = np.empty(positive.size, dtype=np.float64)
    placement[positive] = (overall[positive] - _sorted_midranks(ranked[positive])) / n
    placement[~positive] = 1.0 - (overall[~positive] - _sorted_midranks(ranked[~positive])) / m
    by_row = np.empty_like(placement)
    by_row[order] = placement
    v10, v01 = by_row[is_positive], by_row[~is_positive]
    return float(v10.mean()), v10, v01


def delong_variance(v10: Array, v01: Array) -> float:
    """DeLong's variance of the AUC from the placement values."""
    return float(np.var(v10, ddof=1) / v10.size + np.var(v01, ddof=1) / v01.size)


def binary_auc_interval(is_positive: Array, scores: Array) -> dict[str, Any] | None:
    is_positive = np.asarray(is_positive, dtype=bool)
    m = int(is_positive.sum())
    if m < 2 or is_positive.size - m < 2:
        return None
    auc, v10, v01 = delong(is_positive, scores)
    return wald(auc, delong_variance(v10, v01), is_positive.size, "delong")


def macro_auc_interval(t: Array, proba: Array, k: int) -> dict[str, Any] | None:
    """One-vs-rest macro AUC over ``k`` classes with the stratified DeLong variance (module docstring)."""
    n = t.size
    counts = np.bincount(t, minlength=k)
    if (counts < 2).any() or (n - counts < 2).any():
        return None
    influence = np.zeros(n, dtype=np.float64)
    aucs = []
    for c in range(k):
        positive = t == c
        auc, v10, v01 = delong(positive, proba[:, c])
        aucs.append(auc)
        influence[positive] += (v10 - auc) / v10.size
        influence[~positive] += (v01 - auc) / v01.size
    influence /= k
    return wald(float(np.mean(aucs)), _stratified_rows_variance(influence, t, k), n, "delong")


def _stratified_rows_variance(values: Array, strata: Array, k: int) -> float:
    counts = np.bincount(strata, minlength=k).astype(np.float64)
    means = safe_div(np.bincount(strata, weights=values, minlength=k), counts)
    centred = values - means[strata]
    squares = np.bincount(strata, weights=centred * centred, minlength=k)
    return float((safe_div(counts, counts - 1) * squares).sum())


# ---------------------------------------------------- confusion-matrix metrics


def stratified_cell_variance(cm: Array, values: Array) -> Array:
    """Variance of ``Σ rows' influence`` when each true class's rows are resampled among its cells.

    ``cm`` is the confusion matrix (rows true), ``values`` the influence value
    of each cell, shape ``(..., k, k)``; returns shape ``(...)``.
    """
    cm = cm.astype(np.float64)
    n_s = cm.sum(axis=1)
    means = safe_div((cm * values).sum(axis=-1), n_s)
    squares = (cm * (values - means[..., None]) ** 2).sum(axis=-1)
    return np.asarray((safe_div(n_s, n_s - 1) * squares).sum(axis=-1))


def _rates(cm: Array) -> tuple[dict[str, Array], Array, Array]:
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0).astype(np.float64), cm.sum(axis=1).astype(np.float64)
    estimates = {
        "precision": safe_div(tp, predicted),
        "recall": safe_div(tp, actual),
        "f1": safe_div(2.0 * tp, predicted + actual),
    }
    return estimates, predicted, actual


def per_class_intervals(cm: Array, metric: str) -> list[dict[str, Any] | None]:
    """The delta-method interval of each class's ``metric`` (``precision``, ``recall`` or ``f1``).

    Class ``c``'s influence is ``a`` on the cell (c, c), ``b`` on the other
    cells of column ``c`` and 0 elsewhere, so within each true class the
    values are two-valued and the variance is
    ``W[c, c]·a² + b²·Σ_{s≠c} W[s, c]`` with ``W[s, q] = n_s/(n_s − 1)·count_sq·(n_s − count_sq)/n_s``.
    """
    estimates, predicted, actual = _rates(cm)
    estimate = estimates[metric]
    if metric == "precision":
        a, b = safe_div(1.0 - estimate, predicted), safe_div(-estimate, predicted)
    elif metric == "recall":
        a, b = safe_div(np.ones_like(actual), actual), np.zeros_like(actual)
    else:
        a, b = safe_div(2.0 - estimate, predicted + actual), safe_div(-estimate, predicted + actual)
    counts = cm.astype(np.float64)
    n_s = counts.sum(axis=1, keepdims=True)
    w = safe_div(n_s, n_s - 1) * safe_div(counts * (n_s - counts), n_s)
    diagonal = np.diag(w)
    variance = diagonal * a * a + b * b * (w.sum(axis=0) - diagonal)
    n = int(cm.sum())
    return [wald(float(estimate[c]), float(variance[c]), n, "delta") for c in range(cm.shape[0])]


def macro_cell_values(cm: Array) -> dict[str, Array]:
    """Each macro average's influence value per cell (true ``s``, predicted ``q``): the mean of the classes'."""
    estimates, predicted, actual = _rates(cm)
    present = (predicted + actual) > 0
    k = cm.shape[0]
    diagonal = np.eye(k)
    row = (slice(None), None)
    column = (None, slice(None))
    values = {
        "precision": safe_div(diagonal - estimates["precision"][column], predicted[column]),
        "recall": safe_div(diagonal, actual[row]),
        "f1": safe_div(2.0 * diagonal - estimates["f1"][column], (predicted + actual)[column]),
    }
    return {name: v / present.sum() for name, v in values.items()}


def macro_intervals(cm: Array) -> dict[str, dict[str, Any] | None]:
    """Delta-method intervals of the macro precision, recall and F1 over the classes present."""
    estimates, predicted, actual = _rates(cm)
    present = (predicted + actual) > 0
    n = int(cm.sum())
    out: dict[str, dict[str, Any] | None] = {}
    for name, values in macro_cell_values(cm).items():
        variance = float(stratified_cell_variance(cm, values))
        out[name] = wald(float(estimates[name][present].mean()), variance, n, "delta")
    return out


# ---------------------------------------------------------------- regression


def regression_analytic(err: Array, y_true: Array) -> dict[str, Any]:
    """Normal-theory intervals of MAE, RMSE and R² (module docstring); a metric left out if undefined."""
    n = err.size
    out: dict[str, Any] = {}
    if n < 2:
        return out
    absolute = np.abs(err)
    record = wald(float(absolute.mean()), float(np.var(absolute, ddof=1)) / n, n, "normal", high=math.inf)
    if record is not None:
        out["mae"] = record
    squared = err * err
    mse = float(squared.mean())
    mse_record = wald(mse, float(np.var(squared, ddof=1)) / n, n, "normal", high=math.inf)
    if mse_record is not None:
        out["rmse"] = {
            **mse_record,
            "low": math.sqrt(mse_record["low"]),
            "high": math.sqrt(mse_record["high"]),
            # the delta method's standard error of the RMSE, for reference; the bounds are the MSE's, rooted
            "standard_error": mse_record["standard_error"] / (2.0 * math.sqrt(mse)) if mse > 0 else 0.0,
        }
    centred = y_true - y_true.mean()
    spread = centred * centred
    variance_y = float(spread.mean())
    if variance_y > 0:
        influence = -(squared - mse) / variance_y + mse * (spread - variance_y) / variance_y**2
        record = wald(1.0 - mse / variance_y, float(np.var(influence, ddof=1)) / n, n, "delta", low=-math.inf)
        if record is not None:
            out["r2"] = record
    return out
