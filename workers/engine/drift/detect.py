"""One drift check: per-column tests with correction, effect sizes, multivariate detectors.

:func:`detect_drift` takes a :class:`ReferenceProfile` (or a reference data
frame, profiled on the spot) and the current data as one data frame or an
iterable of blocks, and returns a :class:`DriftReport`. Each detector's
time is recorded; a detector that fails records its error and the others
still finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.drift.correction import CORRECTIONS, adjust
from workers.engine.drift.mmd import mmd_test
from workers.engine.drift.multivariate import classifier_test, lsdd_test
from workers.engine.drift.reference import ReferenceProfile
from workers.engine.drift.report import Correction, DriftReport, FeatureDrift, MultivariateDrift
from workers.engine.drift.univariate import ColumnResult, CurrentAccumulator, UnivariateOptions
from workers.engine.errors import EngineError

__all__ = ["MULTIVARIATE", "DriftConfig", "detect_drift", "finish_report", "prediction_drift"]

MULTIVARIATE = ("mmd", "lsdd", "classifier")


@dataclass(frozen=True)
class DriftConfig:
    """Every parameter of a drift check; the defaults suit tables of any size."""

    alpha: float = 0.05
    correction: Correction = "bonferroni"
    univariate: UnivariateOptions = field(default_factory=UnivariateOptions)
    multivariate: tuple[str, ...] = ()
    #: Rows per side the multivariate detectors run on (their cost grows with its square).
    max_per_side: int = 2000
    n_permutations: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise EngineError("alpha must be between 0 and 1")
        if self.correction not in CORRECTIONS:
            raise EngineError(f"correction must be one of {', '.join(CORRECTIONS)}, not {self.correction!r}")
        unknown = [d for d in self.multivariate if d not in MULTIVARIATE]
        if unknown:
            raise EngineError(f"unknown multivariate detectors {unknown}; choose from {', '.join(MULTIVARIATE)}")
        if not 10 <= self.max_per_side <= 20000:
            raise EngineError("max_per_side must be between 10 and 20000")
        if not 0 <= self.n_permutations <= 10000:
            raise EngineError("n_permutations must be between 0 and 10000")

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "correction": self.correction,
            "numeric_test": self.univariate.numeric_test,
            "binary_test": self.univariate.binary_test,
            "ks_method": self.univariate.ks_method,
            "sample_rows": self.univariate.sample_rows,
            "multivariate": list(self.multivariate),
            "max_per_side": self.max_per_side,
            "n_permutations": self.n_permutations,
            "seed": self.seed,
        }


Current: TypeAlias = pd.DataFrame | Callable[[], Iterable[pd.DataFrame]] | Iterable[pd.DataFrame]


def _reader(current: Current) -> Callable[[], Iterable[pd.DataFrame]]:
    """Something that yields the current blocks afresh each time it is called (the KS test reads twice)."""
    if isinstance(current, pd.DataFrame):
        return lambda: (current,)
    if callable(current):
        return current
    blocks = list(current)  # a one-shot iterator: kept, since it cannot be read again
    return lambda: blocks


def finish_report(
    results: list[ColumnResult],
    *,
    alpha: float,
    correction: Correction,
    n_reference: int,
    n_current: int,
    multivariate: tuple[MultivariateDrift, ...] = (),
    timings: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
) -> DriftReport:
    """Apply the multiple-testing correction across columns and assemble the report."""
    tested = [r for r in results if not r.error]
    adjusted = dict(
        zip([r.name for r in tested], adjust(np.array([r.p_value for r in tested]), correction), strict=True)
    )
    features = []
    for r in results:
        p_adj = float(adjusted.get(r.name, float("nan")))
        features.append(
            FeatureDrift(
                name=r.name,
                kind=r.kind,
                test=r.test,
                statistic=r.statistic,
                p_value=r.p_value,
                p_adjusted=p_adj,
                drift=bool(p_adj < alpha),
                n_reference=r.n_reference,
                n_current=r.n_current,
                missing_reference=r.missing_reference,
                missing_current=r.missing_current,
                wasserstein=r.wasserstein,
                psi=r.psi,
                js_distance=r.js_distance,
                sample_size=r.sample_size,
                reference_sample_size=r.reference_sample_size,
                new_categories=r.new_categories,
                histogram=r.histogram,
                seconds=r.seconds,
                error=r.error,
            )
        )
    errors = tuple(f"{r.name}: {r.error}" for r in results if r.error)
    errors += tuple(f"{m.detector}: {m.error}" for m in multivariate if m.error)
    return DriftReport(
        alpha=alpha,
        correction=correction,
        n_reference=n_reference,
        n_current=n_current,
        features=tuple(features),
        multivariate=multivariate,
        timings=dict(timings or {}),
        params=dict(params or {}),
        errors=errors,
    )


def _standardised(profile: ReferenceProfile, frame: pd.DataFrame) -> tuple[Array, tuple[str, ...]]:
    names = tuple(n for n, c in profile.columns.items() if c.kind == "numeric")
    if not names:
        return np.empty((frame.shape[0], 0)), names
    x = frame[list(names)].to_numpy(dtype=np.float64, na_value=np.nan)
    means = np.array([profile.columns[n].mean for n in names])
    stds = np.array([profile.columns[n].std for n in names])
    x = np.where(np.isnan(x), means, x)
    return (x - means) / stds, names


def _run_multivariate(profile: ReferenceProfile, sample: pd.DataFrame, config: DriftConfig) -> list[MultivariateDrift]:
    x_ref, names = _standardised(profile, profile.row_sample)
    x_cur, _ = _standardised(profile, sample)
    out = []
    for name in config.multivariate:
        start = time.perf_counter()
        try:
            if not names:
                raise EngineError("no numeric columns to compare")
            alpha, per_side, seed, perms = config.alpha, config.max_per_side, config.seed, config.n_permutations
            if name == "mmd":
                result = mmd_test(
                    x_ref, x_cur, alpha=alpha, n_permutations=perms, max_per_side=per_side, seed=seed, columns=names
                )
            elif name == "lsdd":
                result = lsdd_test(
                    x_ref, x_cur, alpha=alpha, n_permutations=perms, max_per_side=per_side, seed=seed, columns=names
                )
            else:
                result = classifier_test(x_ref, x_cur, alpha=alpha, max_per_side=per_side, seed=seed, columns=names)
            out.append(result)
        except (EngineError, ValueError, RuntimeError, MemoryError) as exc:
            message = exc.message if isinstance(exc, EngineError) else str(exc)
            out.append(
                MultivariateDrift(
                    name,
                    float("nan"),
                    float("nan"),
                    False,
                    0,
                    0,
                    columns=names,
                    seconds=time.perf_counter() - start,
                    error=message,
                )
            )
    return out


def detect_drift(
    reference: ReferenceProfile | pd.DataFrame,
    current: Current,
    config: DriftConfig | None = None,
) -> DriftReport:
    """Compare current data with the reference; see the module docstring.

    ``current`` is a data frame, or a function that returns an iterable of
    blocks each time it is called (it is read twice, and only what the tests
    need is held), or an iterable of blocks (kept in memory).
    """
    config = config or DriftConfig()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if isinstance(reference, pd.DataFrame):
        reference = ReferenceProfile.from_frame(reference, seed=config.seed)
        timings["reference_profile"] = time.perf_counter() - start
    accumulator = CurrentAccumulator(reference, config.univariate)
    try:
        if isinstance(current, pd.DataFrame):
            accumulator.update_all(current)
        else:
            read = _reader(current)
            for block in read():
                accumulator.update(block)
            if accumulator.rows and accumulator.needs_second_pass:
                for block in read():
                    accumulator.refine(block)
    finally:
        accumulator.close()
    if accumulator.rows == 0:
        raise EngineError("the current data has no rows")
    results = accumulator.results()
    for r in results:
        timings[f"column:{r.name}"] = r.seconds
    timings["univariate"] = time.perf_counter() - start
    multivariate = tuple(_run_multivariate(reference, accumulator.sample, config)) if config.multivariate else ()
    for m in multivariate:
        timings[m.detector] = m.seconds
    timings["total"] = time.perf_counter() - start
    return finish_report(
        results,
        alpha=config.alpha,
        correction=config.correction,
        n_reference=reference.rows,
        n_current=accumulator.rows,
        multivariate=multivariate,
        timings=timings,
        params=config.to_dict(),
    )


def prediction_drift(reference_predictions: Array, current_predictions: Array, *, alpha: float = 0.05) -> DriftReport:
    """Drift of the predicted-class distribution (chi-square over classes, PSI, Jensen–Shannon)."""
    ref = pd.DataFrame({"predicted_class": pd.Series(np.asarray(reference_predictions).ravel()).astype(str)})
    cur = pd.DataFrame({"predicted_class": pd.Series(np.asarray(current_predictions).ravel()).astype(str)})
    profile = ReferenceProfile.from_frame(ref, kinds={"predicted_class": "categorical"})
    return detect_drift(profile, cur, DriftConfig(alpha=alpha, correction="none"))
