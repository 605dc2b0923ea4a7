"""Regression check between two profiles: is the candidate slower, cell by cell?

For each cell both profiles measured, the raw latency samples are compared
with a one-sided Mann–Whitney U test (``scipy.stats.mannwhitneyu``,
alternative ``"greater"``: candidate latencies tend to be larger) and two
effect sizes:

* the **ratio of medians** candidate / baseline, with a percentile
  bootstrap confidence interval, which is what a user reads ("12 % slower");
* **Cliff's delta**, ``P(cand > base) - P(cand < base)`` in ``[-1, 1]``,
  computed from the U statistic.

A cell is flagged as a regression when ``p < alpha`` **and** the median
ratio exceeds ``1 + threshold``. Both are needed: with thousands of samples
the test finds differences far too small to matter, and consecutive
latencies are not independent (caches, frequency scaling, neighbours on the
machine), so the p-value alone is optimistic; the threshold is the user's
statement of what matters. An improvement is the mirror image (``p < alpha``
for "less" and a ratio below ``1 / (1 + threshold)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from workers.engine.errors import EngineError
from workers.engine.latency._json import json_dict
from workers.engine.latency.results import CellKey, ProfileResult

__all__ = [
    "CellComparison",
    "RegressionReport",
    "SampleComparison",
    "cliffs_delta",
    "compare_profiles",
    "compare_samples",
]

#: Fewest samples per side for a comparison to be made at all.
MIN_SAMPLES = 20


@dataclass(frozen=True)
class SampleComparison:
    """Candidate latencies against baseline latencies.

    ``verdict`` is ``"regression"``, ``"improvement"`` or ``"no_change"``;
    ``flagged`` is true for a regression. ``p_value`` is the one-sided
    ``"greater"`` p-value, ``p_value_less`` the ``"less"`` one.
    """

    baseline_count: int
    candidate_count: int
    baseline_p50_ms: float
    candidate_p50_ms: float
    median_ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    confidence: float
    u_statistic: float
    p_value: float
    p_value_less: float
    cliffs_delta: float
    alpha: float
    threshold: float
    verdict: str
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


def cliffs_delta(candidate: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray) -> float:
    """``P(c > b) - P(c < b)`` over all pairs, in ``[-1, 1]`` (exact, via ranks)."""
    c = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if c.size == 0 or b.size == 0:
        raise EngineError("Cliff's delta needs samples on both sides", permanent=False)
    b_sorted = np.sort(b)
    below = np.searchsorted(b_sorted, c, side="left").sum()  # pairs with b < c
    above = (b.size - np.searchsorted(b_sorted, c, side="right")).sum()  # pairs with b > c
    return float((below - above) / (c.size * b.size))


def _bootstrap_ratio(
    base: np.ndarray, cand: np.ndarray, n_boot: int, confidence: float, rng: np.random.Generator
) -> tuple[float, float]:
    ratios = np.empty(n_boot)
    # Chunks bound the memory of the resampling index arrays.
    chunk = max(1, min(n_boot, 2_000_000 // max(base.size, cand.size)))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        b = np.median(base[rng.integers(0, base.size, (size, base.size))], axis=1)
        c = np.median(cand[rng.integers(0, cand.size, (size, cand.size))], axis=1)
        ratios[start : start + size] = c / b
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def compare_samples(
    baseline_ns: Sequence[int] | np.ndarray,
    candidate_ns: Sequence[int] | np.ndarray,
    *,
    alpha: float = 0.01,
    threshold: float = 0.10,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> SampleComparison:
    """Test whether ``candidate_ns`` latencies are larger than ``baseline_ns``.

    Parameters
    ----------
    baseline_ns, candidate_ns:
        Raw per-call latencies (any unit, both the same).
    alpha:
        Significance level of the one-sided test.
    threshold:
        Smallest slowdown that counts, as a fraction (0.10 = 10 % slower medians).
    n_boot:
        Bootstrap resamples for the ratio's confidence interval.
    confidence:
        Level of that interval.
    seed:
        Seed of the bootstrap, so a comparison is reproducible.

    Raises
    ------
    EngineError
        With fewer than :data:`MIN_SAMPLES` samples on either side.
    """
    base = np.asarray(baseline_ns, dtype=np.float64).ravel()
    cand = np.asarray(candidate_ns, dtype=np.float64).ravel()
    if base.size < MIN_SAMPLES or cand.size < MIN_SAMPLES:
        raise EngineError(
            f"a regression test needs at least {MIN_SAMPLES} samples on each side "
            f"(baseline {base.size}, candidate {cand.size})"
        )
    if not 0 < alpha < 1 or threshold < 0 or not 0 < confidence < 1:
        raise EngineError("alpha and confidence must be in (0, 1) and threshold non-negative")
    greater = stats.mannwhitneyu(cand, base, alternative="greater")
    less = stats.mannwhitneyu(cand, base, alternative="less")
    u = float(greater.statistic)
    base_p50 = float(np.median(base))
    cand_p50 = float(np.median(cand))
    ratio = cand_p50 / base_p50 if base_p50 > 0 else float("inf")
    low, high = _bootstrap_ratio(base, cand, n_boot, confidence, np.random.default_rng(seed))
    # U counts pairs with cand > base (ties as half): delta = 2U / (n1 n2) - 1.
    delta = 2.0 * u / (cand.size * base.size) - 1.0
    p_greater = float(greater.pvalue)
    p_less = float(less.pvalue)
    if p_greater < alpha and ratio > 1.0 + threshold:
        verdict = "regression"
    elif p_less < alpha and ratio < 1.0 / (1.0 + threshold):
        verdict = "improvement"
    else:
        verdict = "no_change"
    return SampleComparison(
        baseline_count=int(base.size),
        candidate_count=int(cand.size),
        baseline_p50_ms=base_p50 / 1e6,
        candidate_p50_ms=cand_p50 / 1e6,
        median_ratio=ratio,
        ratio_ci_low=low,
        ratio_ci_high=high,
        confidence=confidence,
        u_statistic=u,
        p_value=p_greater,
        p_value_less=p_less,
        cliffs_delta=delta,
        alpha=alpha,
        threshold=threshold,
        verdict=verdict,
        flagged=verdict == "regression",
    )


@dataclass(frozen=True)
class CellComparison:
    """One cell of the two profiles: compared, or why not (``status`` other than ``"compared"``)."""

    key: CellKey
    label: str
    status: str
    reason: str = ""
    comparison: SampleComparison | None = None


@dataclass(frozen=True)
class RegressionReport:
    """Every cell compared, and which ones regressed."""

    variant: str
    alpha: float
    threshold: float
    cells: list[CellComparison]
    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """Whether any cell regressed."""
        return bool(self.regressions)

    def to_dict(self) -> dict[str, Any]:
        data = json_dict(self)
        data["flagged"] = self.flagged
        return data


def _as_result(value: ProfileResult | dict[str, Any]) -> ProfileResult:
    return value if isinstance(value, ProfileResult) else ProfileResult.from_dict(value)


def compare_profiles(
    baseline: ProfileResult | dict[str, Any],
    candidate: ProfileResult | dict[str, Any],
    *,
    alpha: float = 0.01,
    threshold: float = 0.10,
    variant: str = "model",
    n_boot: int = 1000,
    seed: int = 0,
) -> RegressionReport:
    """Compare two profiles (two model versions, or two runs) cell by cell.

    Parameters
    ----------
    baseline, candidate:
        Results, or their stored ``to_dict()`` JSON.
    alpha, threshold:
        See :func:`compare_samples`.
    variant:
        ``"model"`` or ``"with_preprocessing"``.

    Notes
    -----
    Cells are matched by backend, device, precision, batch size and threads;
    a cell only one profile has, or one that did not run in both, is listed
    with the reason and not compared.
    """
    if variant not in ("model", "with_preprocessing"):
        raise EngineError(f"variant must be 'model' or 'with_preprocessing', got {variant!r}")
    base = _as_result(baseline)
    cand = _as_result(candidate)
    base_cells = {c.key: c for c in base.cells}
    cand_cells = {c.key: c for c in cand.cells}
    keys = list(base_cells) + [k for k in cand_cells if k not in base_cells]
    out: list[CellComparison] = []
    regressions: list[str] = []
    improvements: list[str] = []
    for key in keys:
        b, c = base_cells.get(key), cand_cells.get(key)
        if b is None or c is None:
            which = "baseline" if b is None else "candidate"
            out.append(CellComparison(key, key.label, "missing", f"the {which} profile has no such cell"))
            continue
        bv, cv = b.variant(variant), c.variant(variant)
        if bv is None or cv is None:
            reason = "; ".join(
                f"{name}: {cell.status}{' (' + cell.error + ')' if cell.error else ''}"
                for name, cell, v in (("baseline", b, bv), ("candidate", c, cv))
                if v is None
            )
            out.append(CellComparison(key, key.label, "not_measured", reason))
            continue
        try:
            result = compare_samples(
                bv.samples_ns, cv.samples_ns, alpha=alpha, threshold=threshold, n_boot=n_boot, seed=seed
            )
        except EngineError as exc:
            out.append(CellComparison(key, key.label, "not_compared", exc.message))
            continue
        out.append(CellComparison(key, key.label, "compared", "", result))
        if result.verdict == "regression":
            regressions.append(key.label)
        elif result.verdict == "improvement":
            improvements.append(key.label)
    return RegressionReport(variant, alpha, threshold, out, regressions, improvements)
