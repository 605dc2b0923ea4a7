"""Multivariate detectors beside MMD: LSDD, a classifier two-sample test, embeddings.

* **LSDD** (least-squares density difference) runs alibi-detect's
  ``LSDDDrift`` (PyTorch backend) on capped samples; its permutation p-value
  ``k / n`` is reported corrected to ``(k + 1) / (n + 1)``.
* **Classifier**: a gradient-boosted tree classifier (scikit-learn's
  ``HistGradientBoostingClassifier``) learns to tell reference rows from
  current rows; every row is scored by a model that did not train on it
  (stratified ``folds``-fold cross-validation). The statistic is the ROC AUC
  of those out-of-fold scores (0.5: indistinguishable). Since AUC is the
  Mann–Whitney U statistic divided by ``n·m``, the p-value is the one-sided
  Mann–Whitney U test that current rows score higher
  (``scipy.stats.mannwhitneyu``, ``alternative="greater"``). Folds share
  training rows, so the p-value is approximate; the AUC is the number to read.
* **Embeddings**: image or text model outputs (penultimate layer or logits)
  are projected to ``dim`` dimensions by a fixed Gaussian random projection
  (Johnson–Lindenstrauss: pairwise distances kept within a small factor) and
  tested with MMD.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import stats

from workers.engine.arrays import Array
from workers.engine.drift.mmd import cap_rows, mmd_test
from workers.engine.drift.report import MultivariateDrift
from workers.engine.errors import EngineError

__all__ = ["classifier_test", "embedding_drift", "lsdd_test", "random_projection"]


def lsdd_test(
    x_ref: Array,
    x_cur: Array,
    *,
    alpha: float = 0.05,
    n_permutations: int = 100,
    max_per_side: int = 2000,
    seed: int = 0,
    columns: tuple[str, ...] = (),
) -> MultivariateDrift:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = cap_rows(np.asarray(x_ref, dtype=np.float32), max_per_side, rng)
    y = cap_rows(np.asarray(x_cur, dtype=np.float32), max_per_side, rng)
    try:
        import torch
        from alibi_detect.cd import LSDDDrift
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise EngineError(f"LSDD needs alibi-detect and torch: {exc}") from exc
    torch.manual_seed(seed)
    detector = LSDDDrift(x, backend="pytorch", p_val=alpha, n_permutations=n_permutations, device="cpu")
    result = detector.predict(y)["data"]
    k = round(float(result["p_val"]) * n_permutations)
    p = (k + 1) / (n_permutations + 1)
    return MultivariateDrift(
        detector="lsdd",
        statistic=float(result["distance"]),
        p_value=p,
        drift=p < alpha,
        n_reference_sample=int(x.shape[0]),
        n_current_sample=int(y.shape[0]),
        p_value_k_over_n=k / n_permutations,
        permutations=n_permutations,
        columns=columns,
        params={"implementation": "alibi-detect LSDDDrift (pytorch)", "max_per_side": max_per_side},
        seconds=time.perf_counter() - start,
    )


def classifier_test(
    x_ref: Array,
    x_cur: Array,
    *,
    alpha: float = 0.05,
    folds: int = 5,
    max_per_side: int = 2000,
    seed: int = 0,
    columns: tuple[str, ...] = (),
) -> MultivariateDrift:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = cap_rows(np.asarray(x_ref, dtype=np.float64), max_per_side, rng)
    y = cap_rows(np.asarray(x_cur, dtype=np.float64), max_per_side, rng)
    if min(x.shape[0], y.shape[0]) < folds:
        raise EngineError(f"the classifier test needs at least {folds} rows on each side")
    data = np.concatenate([x, y])
    labels = np.r_[np.zeros(x.shape[0]), np.ones(y.shape[0])]
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # One thread: on a shared worker OpenMP oversubscription makes the fit many times slower.
    with threadpool_limits(1):
        scores = cross_val_predict(model, data, labels, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(labels, scores))
    p = float(stats.mannwhitneyu(scores[labels == 1], scores[labels == 0], alternative="greater").pvalue)
    return MultivariateDrift(
        detector="classifier",
        statistic=auc,
        p_value=p,
        drift=p < alpha,
        n_reference_sample=int(x.shape[0]),
        n_current_sample=int(y.shape[0]),
        columns=columns,
        params={
            "model": "HistGradientBoostingClassifier",
            "folds": folds,
            "statistic": "roc_auc",
            "max_per_side": max_per_side,
        },
        seconds=time.perf_counter() - start,
    )


def random_projection(x: Array, dim: int = 32, seed: int = 0) -> Array:
    """Project rows of ``x`` (flattened) to ``dim`` dimensions with a fixed Gaussian matrix."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if x.shape[1] <= dim:
        return x
    w = np.random.default_rng(seed).normal(0.0, 1.0 / np.sqrt(dim), size=(x.shape[1], dim))
    return x @ w


def embedding_drift(
    ref_embeddings: Array,
    cur_embeddings: Array,
    *,
    dim: int = 32,
    alpha: float = 0.05,
    n_permutations: int = 100,
    max_per_side: int = 2000,
    seed: int = 0,
) -> MultivariateDrift:
    """MMD on randomly projected model outputs (the same projection for both sides)."""
    ref = np.asarray(ref_embeddings).reshape(len(ref_embeddings), -1)
    cur = np.asarray(cur_embeddings).reshape(len(cur_embeddings), -1)
    if ref.shape[1] != cur.shape[1]:
        raise EngineError(f"the embeddings have {ref.shape[1]} and {cur.shape[1]} dimensions")
    result = mmd_test(
        random_projection(ref, dim, seed),
        random_projection(cur, dim, seed),
        alpha=alpha,
        n_permutations=n_permutations,
        max_per_side=max_per_side,
        seed=seed,
        detector="embedding_mmd",
    )
    params = {**result.params, "projection": "gaussian", "dim": min(dim, ref.shape[1]), "input_dim": ref.shape[1]}
    return MultivariateDrift(**{**result.__dict__, "params": params})
