"""ROC AUC from ranks: binary, and one-vs-rest macro for several classes."""

from __future__ import annotations

import numpy as np

from workers.engine.arrays import Array

__all__ = ["roc_auc", "roc_auc_binary"]


def roc_auc_binary(is_positive: Array, scores: Array) -> float | None:
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


def roc_auc(t: Array, proba: Array | None, k: int, positive_index: int | None) -> float | None:
    """Binary AUC of column ``positive_index``, or the unweighted mean of the one-vs-rest AUCs."""
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
