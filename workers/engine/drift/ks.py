"""Exact two-sample Kolmogorov–Smirnov test against a presorted reference, in two cheap passes.

``scipy.stats.ks_2samp`` sorts both samples and binary-searches every value
of both in both, on every call. A monitor compares new data with the same
reference again and again, so the reference is sorted once and a coarse
grid of about 4,096 of its values (its quantiles, plus the PSI and
histogram edges) is kept with the exact reference counts below and at each
edge (:class:`KSGrid`).

**Pass 1** sorts each block of current values and counts them per grid
interval and at each edge (a search per edge, not per value). That gives
the exact ECDF difference at every edge — a lower bound on the statistic —
and, per interval, an upper bound on how far the difference can go inside it
(both ECDFs are monotone). **Pass 2** collects the current values of the
few intervals whose upper bound reaches the lower bound and evaluates the
difference at every sample point inside them. The statistic is the largest
of these values, each computed with the same floating-point operations as
scipy (``count_ref / n_ref - count_cur / n_cur``), so it is bit-identical,
and the p-value comes from the same code path as scipy's (exact below
10,000 rows per side, else the asymptotic Kolmogorov distribution). Memory
is the grid and the collected values, whatever the size of the current data.

Why the values are the right ones: the ECDF difference ``F_ref - F_cur``
only changes at sample points; its maximum is reached just before a
current point (where ``F_cur`` is about to step up) and its minimum at a
current point. "Just before ``x``" is the largest sample point below ``x``,
where the counts are ``#ref < x`` and ``#cur < x``; where there is no such
point the value is 0, which never exceeds the statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.stats import _stats_py

from workers.engine.arrays import Array

__all__ = ["COARSE_EDGES", "KSCounts", "KSGrid", "ks_presorted", "ks_pvalue"]

#: scipy's switch from the exact to the asymptotic distribution (``method="auto"``).
MAX_AUTO_N = 10000
#: Quantile edges of the reference in the coarse grid.
COARSE_EDGES = 4096
#: Slack when comparing bounds computed in floating point.
_EPS = 1e-12


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
        # Private, so in neither scipy's public API nor its type stubs: looked up by name.
        attempt_exact = vars(_stats_py)["_attempt_exact_2kssamp"]
        success, d, prob = attempt_exact(n1, n2, g, d, "two-sided")
        if not success:
            mode = "asymp"
    if mode == "asymp":
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = m * n / (m + n)
        prob = stats.kstwo.sf(d, np.round(en))
    return float(d), float(np.clip(prob, 0, 1))


@dataclass(frozen=True, eq=False)
class KSGrid:
    """Coarse edges of a sorted reference with the exact reference counts at each."""

    edges: Array
    ref_lt: Array
    ref_le: Array
    n: int

    @classmethod
    def from_sorted(cls, sorted_values: Array, *, extra: Array | None = None) -> KSGrid:
        r = sorted_values
        points = r[np.linspace(0, r.size - 1, min(COARSE_EDGES, r.size)).astype(np.intp)] if r.size else r
        edges = np.unique(np.concatenate([points, extra if extra is not None else np.empty(0)]))
        return cls(
            edges=edges,
            ref_lt=np.searchsorted(r, edges, side="left").astype(np.int64),
            ref_le=np.searchsorted(r, edges, side="right").astype(np.int64),
            n=int(r.size),
        )

    def intervals(self, values: Array) -> Array:
        """Interval ``t`` of each value: ``edges[t-1] <= v < edges[t]`` (0 below the first edge)."""
        return np.searchsorted(self.edges, values, side="right")


@dataclass
class KSCounts:
    """Current values per grid interval (``G + 1``) and at each edge (``G``), plus pass-2 values."""

    interval: Array
    at_edge: Array
    n: int = 0
    collected: list[Array] | None = None

    @classmethod
    def empty(cls, grid: KSGrid) -> KSCounts:
        g = grid.edges.size
        return cls(np.zeros(g + 1, dtype=np.int64), np.zeros(g, dtype=np.int64))

    def add(self, grid: KSGrid, values: Array) -> None:
        """Pass 1: count a block of current values (no NaN)."""
        if values.size == 0:
            return
        # Sorting the block (vectorised) and searching the few edges in it is far
        # cheaper than searching every value among the edges.
        self.add_sorted(grid, np.sort(values))

    def add_sorted(self, grid: KSGrid, xs: Array) -> None:
        """Pass 1 for a block already sorted."""
        lt = np.searchsorted(xs, grid.edges, side="left")
        self.interval += np.diff(lt, prepend=0, append=xs.size)
        self.at_edge += np.searchsorted(xs, grid.edges, side="right") - lt
        self.n += int(xs.size)

    def cur_lt(self) -> Array:
        """``#cur < edges[t]`` for each edge."""
        return np.cumsum(self.interval)[:-1]

    # --- bounds and pass 2 -----------------------------------------------------------------

    def bounds(self, grid: KSGrid) -> tuple[float, Array]:
        """The statistic's lower bound and the intervals that may hold a larger value."""
        n, m = grid.n, self.n
        c_lt = self.cur_lt()
        c_le = c_lt + self.at_edge
        at = grid.ref_le / n - c_le / m  # the difference at each edge
        before = grid.ref_lt / n - c_lt / m  # just before each edge
        lower = max(0.0, float(np.abs(at).max(initial=0.0)), float(np.abs(before).max(initial=0.0)))
        # Inside interval t = [e_{t-1}, e_t): F_ref <= #ref < e_t, F_cur >= #cur <= e_{t-1}, and so on.
        ref_lt_next = np.append(grid.ref_lt, n)
        ref_le_prev = np.insert(grid.ref_le, 0, 0)
        cur_lt_next = np.append(c_lt, m)
        cur_le_prev = np.insert(c_le, 0, 0)
        up_plus = ref_lt_next / n - cur_le_prev / m
        up_minus = cur_lt_next / m - ref_le_prev / n
        # Without a current value inside, an interval's extremes are the edge values already in `lower`.
        candidates = (np.maximum(up_plus, up_minus) >= lower - _EPS) & (self.interval > 0)
        return lower, candidates

    def collect(self, grid: KSGrid, values: Array, candidates: Array) -> None:
        """Pass 2: keep the current values (no NaN) that fall in candidate intervals."""
        if self.collected is None:
            self.collected = []
        if values.size == 0:
            return
        lows, highs = self.ranges(grid, candidates)
        if lows.size <= 8:
            keep = np.zeros(values.size, dtype=bool)
            for lo, hi in zip(lows, highs, strict=True):
                keep |= (values >= lo) & (values < hi)
            self.collected.append(values[keep])
        else:
            self.collect_sorted(np.sort(values), lows, highs)

    def collect_sorted(self, xs: Array, lows: Array, highs: Array) -> None:
        """Pass 2 for a sorted block: the candidate ranges are slices of it."""
        if self.collected is None:
            self.collected = []
        a, b = np.searchsorted(xs, lows, side="left"), np.searchsorted(xs, highs, side="left")
        self.collected.extend(xs[i:j] for i, j in zip(a, b, strict=True) if j > i)

    @staticmethod
    def ranges(grid: KSGrid, candidates: Array) -> tuple[Array, Array]:
        """Runs of adjacent candidate intervals as value ranges ``[low, high)``."""
        flags = np.concatenate([[False], candidates, [False]]).astype(np.int8)
        bounds = np.concatenate([[-np.inf], grid.edges, [np.inf]])
        return bounds[np.flatnonzero(np.diff(flags) == 1)], bounds[np.flatnonzero(np.diff(flags) == -1)]

    def statistic(self, grid: KSGrid, reference_sorted: Array, lower: float) -> float:
        """The exact statistic from the lower bound and the collected values."""
        n, m = grid.n, self.n
        v = np.sort(np.concatenate(self.collected)) if self.collected else np.empty(0)
        if v.size == 0:
            return lower
        idx = grid.intervals(v)
        # Rank of each value within its interval (the first of equal values gets the count below it).
        k = np.arange(v.size) - np.searchsorted(idx, idx, side="left")
        below = np.insert(self.cur_lt(), 0, 0)[idx] + k  # #cur < v
        ref_lt = np.searchsorted(reference_sorted, v, side="left")
        ref_le = np.searchsorted(reference_sorted, v, side="right")
        plus = ref_lt / n - below / m
        minus = (below + 1) / m - ref_le / n
        return max(lower, float(plus.max()), float(minus.max()))


def ks_presorted(reference_sorted: Array, current: Array, method: str = "auto") -> tuple[float, float]:
    """``ks_2samp(reference, current)`` for a sorted reference (both passes over one array)."""
    grid = KSGrid.from_sorted(reference_sorted)
    values = np.asarray(current, dtype=np.float64)
    counts = KSCounts.empty(grid)
    counts.add(grid, values)
    if grid.n == 0 or counts.n == 0:
        raise ValueError("both samples need at least one value")
    lower, candidates = counts.bounds(grid)
    counts.collect(grid, values, candidates)
    return ks_pvalue(counts.statistic(grid, reference_sorted, lower), grid.n, counts.n, method)
