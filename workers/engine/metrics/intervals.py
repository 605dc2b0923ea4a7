"""Confidence intervals: Wilson score for proportions, percentile bootstrap for the rest on up to ``ANALYTIC_ROWS`` rows.

Every interval is two-sided at ``CONFIDENCE`` (95 %) and stored as
``{"low", "high", "method", "n"}``, ``n`` being the rows (or, for a class's
precision, the predictions) it rests on.

The bootstrap is reproducible from the recorded seed with numpy alone:
``rng = numpy.random.default_rng(seed)``; then for each of the ``resamples``
resamples in turn, a classification draws, for each class in label order
that has true rows, ``rng.integers(0, n_c, n_c)`` positions among that
class's rows (file order) — a stratified bootstrap that keeps every class's
count — and a regression draws ``rng.integers(0, n, n)`` rows. The metric is
recomputed on each resample exactly as on the full data, and the interval is
``numpy.percentile(values, [2.5, 97.5])`` (linear interpolation) over the
resamples where it is defined.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from statistics import NormalDist
from typing import Any

import numpy as np

from workers.engine.arrays import Array

__all__ = [
    "ANALYTIC_ROWS",
    "CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MIN_ROWS",
    "bootstrap_interval",
    "resample_indices",
    "wilson",
    "wilson_interval",
]

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
#: Above this many rows F1, macro averages, ROC AUC and regression metrics get analytic intervals
#: (:mod:`workers.engine.metrics.analytic`) instead of the bootstrap.
ANALYTIC_ROWS = 100_000
#: Below this many rows a threshold verdict is reported as resting on too few rows.
MIN_ROWS = 30
#: Rows drawn per block of resamples held in memory at once.
_BLOCK_CELLS = 4_000_000


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval for ``successes`` out of ``n`` (no continuity correction); ``None`` for ``n == 0``."""
    if n <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_interval(successes: int, n: int) -> dict[str, Any] | None:
    """:func:`wilson` as the stored interval record."""
    bounds = wilson(successes, n)
    if bounds is None:
        return None
    return {"low": bounds[0], "high": bounds[1], "method": "wilson", "n": int(n)}


def resample_indices(n: int, strata: Array | None, resamples: int, seed: int) -> Iterator[Array]:
    """Blocks of resampled row indices, shape ``(block, n)``, drawn as the module docstring says.

    ``strata`` holds each row's stratum (a class index); ``None`` draws from all rows.
    """
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [g for g in _groups(strata) if g.size]
    block = max(1, min(resamples, _BLOCK_CELLS // max(n, 1)))
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        out = np.empty((size, n), dtype=np.int64)
        for r in range(size):
            start = 0
            for rows in groups:
                out[r, start : start + rows.size] = rows[rng.integers(0, rows.size, rows.size)]
                start += rows.size
        yield out
        done += size


def bootstrap_interval(values: Array, n: int, confidence: float = CONFIDENCE) -> dict[str, Any] | None:
    """Percentile interval over the resampled values that are defined (finite)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    record: dict[str, Any] = {"low": float(low), "high": float(high), "method": "bootstrap", "n": int(n)}
    if finite.size < values.size:
        record["undefined_resamples"] = int(values.size - finite.size)
    return record


def bootstrap_stats(
    n: int,
    strata: Array | None,
    resamples: int,
    seed: int,
    statistic: Callable[[Array], dict[str, Array]],
) -> dict[str, Array]:
    """Apply ``statistic`` (a block of index rows → named arrays, one value per row) to every resample."""
    parts: dict[str, list[Array]] = {}
    for block in resample_indices(n, strata, resamples, seed):
        for name, values in statistic(block).items():
            parts.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _groups(strata: Array) -> list[Array]:
    strata = np.asarray(strata)
    k = int(strata.max()) + 1 if strata.size else 0
    order = np.argsort(strata, kind="stable")
    bounds = np.searchsorted(strata[order], np.arange(k + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(k)]
