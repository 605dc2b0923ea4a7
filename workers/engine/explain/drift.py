"""Attribution drift: has what drives the model changed between two data sets?

Global importance (mean |attribution| per feature) of a reference data set
(the training data) and a current one (last month's) are compared by rank
with nDCG, as Amazon SageMaker Clarify's model monitor does: features are
ordered by their current importance and scored with their reference
importance, ``DCG = sum_i F(f'_i) / log2(i + 1)`` over the ideal ordering's
``iDCG`` (1.0: the same order; Clarify alerts below 0.90), and by value
(the change of each feature's importance, and of its share of the total).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workers.engine.arrays import Array

__all__ = ["attribution_drift", "ndcg"]

#: Clarify's default alert threshold for nDCG.
NDCG_THRESHOLD = 0.90


def ndcg(reference: Array, current: Array, *, top_k: int | None = None) -> float:
    """nDCG of the current ranking, with the reference importances as relevance."""
    ref = np.abs(np.asarray(reference, dtype=np.float64))
    cur = np.abs(np.asarray(current, dtype=np.float64))
    k = len(ref) if top_k is None else min(top_k, len(ref))
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    # Stable ordering so ties rank by feature order, the same on both sides.
    dcg = float((ref[np.argsort(-cur, kind="stable")[:k]] * discount).sum())
    idcg = float((ref[np.argsort(-ref, kind="stable")[:k]] * discount).sum())
    return 1.0 if idcg == 0 else dcg / idcg


def attribution_drift(
    reference: Array,
    current: Array,
    features: list[str],
    *,
    top_k: int | None = None,
    threshold: float = NDCG_THRESHOLD,
) -> dict[str, Any]:
    """Compare two global importance vectors (mean |attribution| per feature)."""
    ref = np.abs(np.asarray(reference, dtype=np.float64))
    cur = np.abs(np.asarray(current, dtype=np.float64))
    share_ref = ref / (ref.sum() or 1.0)
    share_cur = cur / (cur.sum() or 1.0)
    score = ndcg(ref, cur, top_k=top_k)
    rank_ref = np.argsort(np.argsort(-ref, kind="stable"), kind="stable") + 1
    rank_cur = np.argsort(np.argsort(-cur, kind="stable"), kind="stable") + 1
    # Largest change in share first (a stable sort: ties keep the feature order).
    order = sorted(range(len(features)), key=lambda i: -abs(float(share_cur[i] - share_ref[i])))
    per_feature = [
        {
            "feature": features[i],
            "reference": float(ref[i]),
            "current": float(cur[i]),
            "difference": float(cur[i] - ref[i]),
            "share_difference": float(share_cur[i] - share_ref[i]),
            "reference_rank": int(rank_ref[i]),
            "current_rank": int(rank_cur[i]),
        }
        for i in order
    ]
    return {
        "ndcg": score,
        "top_k": top_k,
        "threshold": threshold,
        "drifted": score < threshold,
        "max_share_difference": float(np.abs(share_cur - share_ref).max()) if len(ref) else 0.0,
        "l1_share_difference": float(np.abs(share_cur - share_ref).sum()),
        "features": per_feature,
    }
