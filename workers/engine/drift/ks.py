"""Exact two-sample Kolmogorov–Smirnov test against a presorted reference.

``scipy.stats.ks_2samp`` sorts both samples and binary-searches every value of
both in both, on every call. A monitor compares new data with the same
reference again and again, so the reference is sorted once
(:class:`~workers.engine.drift.reference.ColumnProfile`: distinct values
``u`` and ``cum_le[k] = #{ref <= u[k]}``) and the current sample is reduced
to counts on that grid, block by block:

* ``eq[k]``, current values equal to ``u[k]``;
* ``between[k]``, current values strictly between ``u[k-1]`` and ``u[k]``
  (``between[0]`` below ``u[0]``, ``between[K]`` above ``u[K-1]``).

The empirical CDFs are step functions that change only at sample points,
so the supremum of ``F_ref - F_cur`` is reached at a reference point, and
that of ``F_cur - F_ref`` at a reference point or at the largest current
value of an interval. Those values are computed with the same floating-point
operations as scipy (``count_ref / n_ref - count_cur / n_cur``), so the
statistic is bit-identical, and the p-value is computed by the same code
path as scipy's (exact below 10,000 rows per side, else the asymptotic
Kolmogorov distribution). Memory is the grid, whatever the size of the
current data; each block costs a sort and one binary search of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.stats import _stats_py

__all__ = ["KSCounts", "ks_from_counts", "ks_pvalue", "ks_presorted"]

#: scipy's switch from the exact to the asymptotic distribution (``method="auto"``).
MAX_AUTO_N = 10000


def ks_pvalue(d: float, n1: int, n2: int, method: str = "auto") -> tuple[float, float]:
    """Two-sided p-value of statistic ``d`` for sizes ``n1``, ``n2``, as ``ks_2samp`` computes it.

    Returns ``(statistic, p)``: the exact method rounds ``d`` to a multiple of
    ``1 / lcm(n1, n2)`` first, as scipy does.
    """
    mode = method
    g = math.gcd(n1, n2)
    if mode == "auto":
        mode = "exact" if max(n1, n2) <= MAX_AUTO_N else "asymp"
    elif mode == "exact" and (n1 // g) >= np.iinfo(np.int32).max / (n2 // g):
        mode = "asymp"
    prob = -np.inf
    if mode == "exact":
        # The same private helper ks_2samp calls, so both agree to the bit.
        success, d, prob = _stats_py._attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
        if not success:
            mode = "asymp"
    if mode == "asymp":
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        prob = stats.kstwo.sf(d, np.round(en))
    return float(d), float(np.clip(prob, 0, 1))


@dataclass
class KSCounts:
    """Current-sample counts on a reference grid of ``K`` distinct values."""

    eq: np.ndarray
    between: np.ndarray
    n: int = 0

    @classmethod
    def empty(cls, grid_size: int) -> KSCounts:
        return cls(np.zeros(grid_size, dtype=np.int64), np.zeros(grid_size + 1, dtype=np.int64))

    def add(self, grid: np.ndarray, values: np.ndarray, *, presorted: bool = False) -> None:
        """Count a block of current values (no NaN) on ``grid``."""
        if values.size == 0:
            return
        # Sorted keys make the binary searches walk the grid in order (cache friendly).
        xs = values if presorted else np.sort(values)
        left = np.searchsorted(grid, xs, side="left")
        if grid.size:
            equal = grid[np.minimum(left, grid.size - 1)] == xs
            equal &= left < grid.size
        else:
            equal = np.zeros(xs.size, dtype=bool)
        eq_idx = left[equal]
        between_idx = left[~equal]
        if eq_idx.size:
            self.eq += np.bincount(eq_idx, minlength=grid.size)
        if between_idx.size:
            self.between += np.bincount(between_idx, minlength=grid.size + 1)
        self.n += int(values.size)


def ks_from_counts(cum_le: np.ndarray, counts: KSCounts, method: str = "auto") -> tuple[float, float]:
    """KS statistic and p-value from the reference grid's cumulative counts and the current counts."""
    n_ref = int(cum_le[-1]) if cum_le.size else 0
    n_cur = counts.n
    if n_ref == 0 or n_cur == 0:
        raise ValueError("both samples need at least one value")
    cum_eq = np.cumsum(counts.eq)
    cum_between = np.cumsum(counts.between)
    cur_le = cum_between[:-1] + cum_eq  # current values <= u[k]
    cur_lt = cur_le - counts.eq  # current values < u[k]
    ref_lt = cum_le - np.diff(cum_le, prepend=0)  # reference values < u[k]
    # At each reference point (both directions).
    at_ref = cum_le / n_ref - cur_le / n_cur
    max_s = at_ref.max()
    min_s = at_ref.min()
    # At the largest current value below u[k], where there is one: there
    # #ref <= x is #ref < u[k] and #cur <= x is #cur < u[k].
    occupied = counts.between[:-1] > 0
    if occupied.any():
        below = ref_lt[occupied] / n_ref - cur_lt[occupied] / n_cur
        min_s = min(min_s, below.min())
        max_s = max(max_s, below.max())
    if counts.between[-1] > 0:  # above every reference value both CDFs reach 1
        min_s = min(min_s, n_ref / n_ref - n_cur / n_cur)
    d = max(float(max_s), float(np.clip(-min_s, 0, 1)))
    return ks_pvalue(d, n_ref, n_cur, method)


def ks_presorted(
    grid: np.ndarray, cum_le: np.ndarray, current: np.ndarray, method: str = "auto"
) -> tuple[float, float]:
    """``ks_2samp(reference, current)`` for a reference given by its grid; returns ``(statistic, p)``."""
    counts = KSCounts.empty(grid.size)
    counts.add(grid, np.asarray(current, dtype=np.float64))
    return ks_from_counts(cum_le, counts, method)
