"""Distribution-shift detection: is today's data still like the reference?

:func:`detect_drift` compares current data with a reference, column by
column (exact Kolmogorov–Smirnov against a presorted reference, or
Cramér–von Mises, for numeric columns; chi-square for categorical ones;
Fisher's exact test for binary ones), corrects the p-values for the number
of columns (Bonferroni or Benjamini–Hochberg), measures how much each
column moved (Wasserstein, PSI, Jensen–Shannon) and optionally runs
multivariate detectors on capped samples (MMD, LSDD, a classifier test).
:class:`ReferenceProfile` is the reference computed once and cached.
:func:`prediction_drift` and :func:`embedding_drift` cover a model's
predicted classes and its embeddings.

Every detector returns evalsvc's own frozen dataclasses
(:class:`DriftReport`); the univariate tests, MMD and the classifier test
are scipy/numpy/scikit-learn code; only LSDD runs alibi-detect (Business
Source License 1.1 from 0.12 on), so a licence-clean implementation can
stand in behind the same interface.

Modules: :mod:`.reference`, :mod:`.ks`, :mod:`.univariate`, :mod:`.effect`,
:mod:`.correction`, :mod:`.mmd`, :mod:`.multivariate`, :mod:`.detect`,
:mod:`.report`.
"""

from __future__ import annotations

from workers.engine.drift.correction import CORRECTIONS, adjust
from workers.engine.drift.detect import MULTIVARIATE, DriftConfig, detect_drift, finish_report, prediction_drift
from workers.engine.drift.effect import jensen_shannon, psi, wasserstein_presorted
from workers.engine.drift.ks import KSCounts, KSGrid, ks_presorted, ks_pvalue
from workers.engine.drift.mmd import mmd_test, sigma_median
from workers.engine.drift.multivariate import classifier_test, embedding_drift, lsdd_test, random_projection
from workers.engine.drift.reference import ColumnProfile, ReferenceProfile, infer_kind
from workers.engine.drift.report import DriftReport, FeatureDrift, Histogram, MultivariateDrift
from workers.engine.drift.univariate import CurrentAccumulator, UnivariateOptions

__all__ = [
    "CORRECTIONS",
    "MULTIVARIATE",
    "ColumnProfile",
    "CurrentAccumulator",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "Histogram",
    "KSCounts",
    "KSGrid",
    "MultivariateDrift",
    "ReferenceProfile",
    "UnivariateOptions",
    "adjust",
    "classifier_test",
    "detect_drift",
    "embedding_drift",
    "finish_report",
    "infer_kind",
    "jensen_shannon",
    "ks_presorted",
    "ks_pvalue",
    "lsdd_test",
    "mmd_test",
    "prediction_drift",
    "psi",
    "random_projection",
    "sigma_median",
    "wasserstein_presorted",
]
