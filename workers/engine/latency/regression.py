"""Regression check between two profiles: is the candidate slower, cell by cell?

Successive latencies are correlated (caches, frequency scaling, neighbours
on the machine), so tests that treat every call as independent are far too
confident: on autocorrelated samples a Mann–Whitney test on the raw calls
flags identical processes again and again, and a bootstrap of single calls
gives intervals that miss the true ratio most of the time. The comparison
therefore rests on **blocks**: each side's samples, in the order they were
measured, are cut into ``blocks`` contiguous runs of (nearly) equal length
(``numpy.array_split``; :func:`block_count` chooses how many), and each block
contributes its median. Blocks much longer than the correlation time have
nearly independent medians (the batch-means method of simulation output
analysis), and ``block_lag1`` reports how far that holds.

* **Test**: one-sided Mann–Whitney U on the block medians
  (``scipy.stats.mannwhitneyu(cand_medians, base_medians,
  alternative="greater", method="exact")``; ``"less"`` for an improvement;
  ``method="asymptotic"`` when block medians tie).
* **Ratio of medians** candidate / baseline over all samples, with a
  ``confidence`` interval ``ratio × exp(± t · se)``, ``se² = var(log cand
  block medians) / m_c + var(log base block medians) / m_b`` (sample
  variances) and Student's t with Welch–Satterthwaite degrees of freedom.
* **Cliff's delta** over all sample pairs, ``P(cand > base) − P(cand <
  base)``, as a description of the overlap (not a test).

A cell is flagged as a regression when ``p < alpha`` **and** the median
ratio exceeds ``1 + threshold``: with enough samples the test finds
differences far too small to matter, and the threshold is the user's
statement of what matters. An improvement is the mirror image (``p < alpha``
for "less" and a ratio below ``1 / (1 + threshold)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.latency._json import json_dict
from workers.engine.latency.results import CellKey, ProfileResult

__all__ = [
    "CellComparison",
    "RegressionReport",
    "SampleComparison",
    "block_count",
    "block_medians",
    "cliffs_delta",
    "compare_profiles",
    "compare_samples",
]

#: Fewest samples per side for a comparison to be made at all.
MIN_SAMPLES = 20
#: Blocks per side: at least MIN_BLOCKS (so the exact one-sided p-value can go below 0.01), at most
#: MAX_BLOCKS, and otherwise one per BLOCK_TARGET samples, so blocks stay long.
MIN_BLOCKS = 5
MAX_BLOCKS = 20
BLOCK_TARGET = 50
#: Correlation times per block.
TAU_BLOCKS = 20
METHOD = "block medians: Mann-Whitney U (exact), batch-means interval on the ratio of medians"


@dataclass(frozen=True)
class SampleComparison:
    """Candidate latencies against baseline latencies.

    ``verdict`` is ``"regression"``, ``"improvement"`` or ``"no_change"``;
    ``flagged`` is true for a regression. ``p_value`` is the one-sided
    ``"greater"`` p-value of the block medians, ``p_value_less`` the
    ``"less"`` one; ``u_statistic`` is their U. ``baseline_blocks`` and
    ``candidate_blocks`` say how many blocks each side was cut into;
    ``block_lag1`` is the largest lag-1 autocorrelation of either side's
    block medians (near 0 when the blocks are long enough).
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
    baseline_blocks: int = 0
    candidate_blocks: int = 0
    block_lag1: float | None = None
    method: str = METHOD

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


def cliffs_delta(candidate: Sequence[float] | Array, baseline: Sequence[float] | Array) -> float:
    """``P(c > b) - P(c < b)`` over all pairs, in ``[-1, 1]`` (exact, via ranks)."""
    c = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if c.size == 0 or b.size == 0:
        raise EngineError("Cliff's delta needs samples on both sides", permanent=False)
    b_sorted = np.sort(b)
    below = np.searchsorted(b_sorted, c, side="left").sum()  # pairs with b < c
    above = (b.size - np.searchsorted(b_sorted, c, side="right")).sum()  # pairs with b > c
    return float((below - above) / (c.size * b.size))


def correlation_time(samples: Array) -> float:
    """``(1 + r) / (1 - r)`` from the lag-1 autocorrelation ``r`` of the samples' ranks (1 when ``r <= 0``).

    For an AR(1) process this is its integrated autocorrelation time: how
    many consecutive calls carry about as much information as one
    independent call. Ranks keep a few huge outliers from deciding it.
    """
    values = np.asarray(samples, dtype=np.float64).ravel()
    if values.size < 3:
        return 1.0
    r = _lag1(stats.rankdata(values))
    if r is None or r <= 0:
        return 1.0
    r = min(r, 0.999)
    return float((1.0 + r) / (1.0 - r))


def block_count(n: int, tau: float = 1.0) -> int:
    """How many contiguous blocks ``n`` samples with correlation time ``tau`` are cut into.

    Blocks hold at least ``BLOCK_TARGET`` calls and ``TAU_BLOCKS`` correlation
    times, so neighbouring block medians are nearly independent; there are
    at least ``MIN_BLOCKS`` and at most ``MAX_BLOCKS`` of them.
    """
    length = max(BLOCK_TARGET, TAU_BLOCKS * tau)
    return int(min(MAX_BLOCKS, max(MIN_BLOCKS, int(n // length)), n))


def block_medians(samples: Array, blocks: int | None = None) -> Array:
    """Medians of ``numpy.array_split(samples, blocks)``, in measurement order.

    ``blocks`` defaults to :func:`block_count` of the samples' :func:`correlation_time`.
    """
    samples = np.asarray(samples, dtype=np.float64).ravel()
    if blocks is None:
        blocks = block_count(samples.size, correlation_time(samples))
    return np.array([np.median(p) for p in np.array_split(samples, blocks)])


def _lag1(values: Array) -> float | None:
    centred = values - values.mean()
    denominator = float(np.dot(centred, centred))
    return float(np.dot(centred[1:], centred[:-1]) / denominator) if denominator > 0 else None


def _ratio_interval(ratio: float, base: Array, cand: Array, confidence: float) -> tuple[float, float]:
    lb, lc = np.log(base), np.log(cand)
    vb, vc = lb.var(ddof=1) / lb.size, lc.var(ddof=1) / lc.size
    se = float(np.sqrt(vb + vc))
    if se == 0.0 or not np.isfinite(ratio) or ratio <= 0:
        return ratio, ratio
    df = (vb + vc) ** 2 / (vb**2 / (lb.size - 1) + vc**2 / (lc.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * se
    return float(ratio * np.exp(-half)), float(ratio * np.exp(half))


def compare_samples(
    baseline_ns: Sequence[int] | Array,
    candidate_ns: Sequence[int] | Array,
    *,
    alpha: float = 0.01,
    threshold: float = 0.10,
    confidence: float = 0.95,
) -> SampleComparison:
    """Test whether ``candidate_ns`` latencies are larger than ``baseline_ns``.

    Parameters
    ----------
    baseline_ns, candidate_ns:
        Raw per-call latencies (any unit, both the same), in the order they
        were measured: the blocks are contiguous runs of calls.
    alpha:
        Significance level of the one-sided test.
    threshold:
        Smallest slowdown that counts, as a fraction (0.10 = 10 % slower medians).
    confidence:
        Level of the interval on the ratio of medians.

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
    base_blocks, cand_blocks = block_medians(base), block_medians(cand)
    pooled = np.concatenate([base_blocks, cand_blocks])
    exact: Literal["exact", "asymptotic"] = "exact" if np.unique(pooled).size == pooled.size else "asymptotic"
    greater = stats.mannwhitneyu(cand_blocks, base_blocks, alternative="greater", method=exact)
    less = stats.mannwhitneyu(cand_blocks, base_blocks, alternative="less", method=exact)
    base_p50 = float(np.median(base))
    cand_p50 = float(np.median(cand))
    ratio = cand_p50 / base_p50 if base_p50 > 0 else float("inf")
    low, high = _ratio_interval(ratio, base_blocks, cand_blocks, confidence)
    p_greater = float(greater.pvalue)
    p_less = float(less.pvalue)
    if p_greater < alpha and ratio > 1.0 + threshold:
        verdict = "regression"
    elif p_less < alpha and ratio < 1.0 / (1.0 + threshold):
        verdict = "improvement"
    else:
        verdict = "no_change"
    lags = [v for v in (_lag1(base_blocks), _lag1(cand_blocks)) if v is not None]
    return SampleComparison(
        baseline_count=int(base.size),
        candidate_count=int(cand.size),
        baseline_p50_ms=base_p50 / 1e6,
        candidate_p50_ms=cand_p50 / 1e6,
        median_ratio=ratio,
        ratio_ci_low=low,
        ratio_ci_high=high,
        confidence=confidence,
        u_statistic=float(greater.statistic),
        p_value=p_greater,
        p_value_less=p_less,
        cliffs_delta=cliffs_delta(cand, base),
        alpha=alpha,
        threshold=threshold,
        verdict=verdict,
        flagged=verdict == "regression",
        baseline_blocks=int(base_blocks.size),
        candidate_blocks=int(cand_blocks.size),
        block_lag1=max(lags) if lags else None,
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
            result = compare_samples(bv.all_samples_ns(), cv.all_samples_ns(), alpha=alpha, threshold=threshold)
        except EngineError as exc:
            out.append(CellComparison(key, key.label, "not_compared", exc.message))
            continue
        out.append(CellComparison(key, key.label, "compared", "", result))
        if result.verdict == "regression":
            regressions.append(key.label)
        elif result.verdict == "improvement":
            improvements.append(key.label)
    return RegressionReport(variant, alpha, threshold, out, regressions, improvements)
