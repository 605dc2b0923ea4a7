"""What a drift check returns: frozen dataclasses whose ``to_dict()`` is the stored JSON.

A :class:`DriftReport` carries one :class:`FeatureDrift` per column (the test,
its raw and corrected p-value, effect sizes and the histograms the dashboard
draws) and one :class:`MultivariateDrift` per multivariate detector (with the
sample it ran on). Detectors sit behind these types, so the service never
sees which library computed a number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ColumnKind = Literal["numeric", "categorical", "binary"]
Correction = Literal["bonferroni", "fdr", "none"]


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: store them as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class Histogram:
    """Reference and current counts over the same bins, for the dashboard.

    Numeric columns: ``edges`` has one more entry than the counts; the first and
    last bins are open-ended (values beyond the reference's range land there).
    Categorical columns: ``categories`` names each bar.
    """

    reference: tuple[int, ...]
    current: tuple[int, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureDrift:
    """One column's test, p-values and effect sizes.

    ``p_value`` is the test's own; ``p_adjusted`` is after the multiple-testing
    correction across all columns, and ``drift`` is ``p_adjusted < alpha``.
    ``sample_size`` is the number of current values the sampled statistics
    (Cramér–von Mises, Wasserstein) used, ``reference_sample_size`` the number
    of reference values; the exact ones (KS, chi-square, Fisher, PSI,
    Jensen–Shannon) use every row.
    """

    name: str
    kind: ColumnKind
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    drift: bool
    n_reference: int
    n_current: int
    missing_reference: int = 0
    missing_current: int = 0
    wasserstein: float | None = None
    psi: float | None = None
    js_distance: float | None = None
    sample_size: int | None = None
    reference_sample_size: int | None = None
    new_categories: tuple[str, ...] = ()
    histogram: Histogram | None = None
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class MultivariateDrift:
    """A multivariate detector's verdict on samples of both sides.

    ``p_value`` is the permutation p-value ``(k + 1) / (n + 1)`` where ``k`` of
    ``n`` permuted statistics reached the observed one; ``p_value_k_over_n`` is
    ``k / n`` as alibi-detect reports it (alibi-detect issue 960), kept for
    comparison. Both samples are capped per side and the sizes recorded.
    """

    detector: str
    statistic: float
    p_value: float
    drift: bool
    n_reference_sample: int
    n_current_sample: int
    p_value_k_over_n: float | None = None
    permutations: int | None = None
    columns: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one drift check.

    ``drift`` is true when any column's corrected p-value or any multivariate
    detector's p-value is below ``alpha``. ``drifted_features`` lists the
    drifted columns ordered by effect size (PSI, largest first).
    """

    alpha: float
    correction: Correction
    n_reference: int
    n_current: int
    features: tuple[FeatureDrift, ...]
    multivariate: tuple[MultivariateDrift, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    @property
    def drifted_features(self) -> tuple[str, ...]:
        drifted = [f for f in self.features if f.drift]
        drifted.sort(key=lambda f: -(f.psi or 0.0))
        return tuple(f.name for f in drifted)

    @property
    def drift(self) -> bool:
        return bool(self.drifted_features) or any(m.drift for m in self.multivariate)

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["drift"] = self.drift
        data["drifted_features"] = list(self.drifted_features)
        finite: dict[str, Any] = _finite(data)
        return finite
