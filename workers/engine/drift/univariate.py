"""Per-column drift tests over current data that arrives in blocks.

:class:`CurrentAccumulator` takes the current data block by block (a data
frame at a time, in any number of blocks) and keeps only what the tests
need: for numeric columns the counts on the reference grid (exact KS), PSI
and display-histogram counts; for categorical ones the category counts; and
one uniform sample of whole rows (``sample_rows``, by random keys, so it is
the same whatever the block sizes) for the sampled statistics —
Cramér–von Mises, Wasserstein — and the multivariate detectors. Memory is
bounded by the reference grid and the sample, not by the current data's size.

The exact KS test takes two passes over the current data (:mod:`.ks`):
:meth:`CurrentAccumulator.update` for every block, then, if
:attr:`CurrentAccumulator.needs_second_pass`, :meth:`CurrentAccumulator.refine`
for every block again.

Tests: numeric ``"ks"`` (exact, every row, :mod:`.ks`) or ``"cvm"``
(``scipy.stats.cramervonmises_2samp`` on the row sample); categorical
``"chi2"`` (``scipy.stats.chi2_contingency`` on the 2 × categories table,
without Yates' correction; categories only the current side has are
included and named); binary ``"fisher"`` (``scipy.stats.fisher_exact`` on
the 2 × 2 table; a binary column that grows a third category falls back to
chi-square).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workers.engine.arrays import Array
from workers.engine.drift.effect import jensen_shannon, psi, wasserstein_presorted
from workers.engine.drift.ks import KSCounts, ks_pvalue
from workers.engine.drift.reference import ColumnProfile, ReferenceProfile, categorical_values
from workers.engine.drift.report import ColumnKind, Histogram
from workers.engine.errors import EngineError

__all__ = ["NUMERIC_TESTS", "ColumnResult", "CurrentAccumulator", "UnivariateOptions"]

NUMERIC_TESTS = ("ks", "cvm")
CATEGORICAL_TESTS = ("chi2",)
BINARY_TESTS = ("fisher", "chi2")


@dataclass(frozen=True)
class UnivariateOptions:
    numeric_test: str = "ks"
    binary_test: str = "fisher"
    ks_method: str = "auto"
    #: Current rows kept (uniformly) for Cramér–von Mises, Wasserstein and the multivariate detectors.
    sample_rows: int = 100_000
    effect_sizes: bool = True
    seed: int = 0
    #: Threads counting numeric columns (numpy releases the GIL while sorting and searching).
    threads: int = 0

    def __post_init__(self) -> None:
        if self.numeric_test not in NUMERIC_TESTS:
            raise EngineError(f"numeric_test must be one of {', '.join(NUMERIC_TESTS)}, not {self.numeric_test!r}")
        if self.binary_test not in BINARY_TESTS:
            raise EngineError(f"binary_test must be one of {', '.join(BINARY_TESTS)}, not {self.binary_test!r}")
        if self.ks_method not in ("auto", "exact", "asymp"):
            raise EngineError(f"ks_method must be auto, exact or asymp, not {self.ks_method!r}")
        if self.sample_rows < 10:
            raise EngineError("sample_rows must be at least 10")


@dataclass(frozen=True)
class ColumnResult:
    """A column's raw test outcome, before the multiple-testing correction."""

    name: str
    kind: ColumnKind
    test: str
    statistic: float
    p_value: float
    n_reference: int
    n_current: int
    missing_reference: int
    missing_current: int
    wasserstein: float | None
    psi: float | None
    js_distance: float | None
    sample_size: int | None
    reference_sample_size: int | None
    new_categories: tuple[str, ...]
    histogram: Histogram | None
    seconds: float
    error: str = ""


class _NumericState:
    def __init__(self, profile: ColumnProfile) -> None:
        self.profile = profile
        self.grid = profile.ks_grid
        self.ks = KSCounts.empty(self.grid)
        self.missing = 0
        self.seconds = 0.0
        self.lower = 0.0
        self.candidates: Array | None = None

    def add(self, raw: Array) -> None:
        start = time.perf_counter()
        nan = np.isnan(raw)
        values = raw[~nan] if nan.any() else raw
        self.missing += int(nan.sum())
        self.ks.add(self.grid, values)
        self.seconds += time.perf_counter() - start

    def add_whole(self, raw: Array) -> None:
        """Both passes at once, when this block is all the current data: one sort serves both."""
        start = time.perf_counter()
        nan = np.isnan(raw)
        xs = np.sort(raw[~nan] if nan.any() else raw)
        self.missing += int(nan.sum())
        self.ks.add_sorted(self.grid, xs)
        candidates = self.candidates if self.plan() else None
        if candidates is not None:
            lows, highs = KSCounts.ranges(self.grid, candidates)
            self.ks.collect_sorted(xs, lows, highs)
        self.seconds += time.perf_counter() - start

    def plan(self) -> bool:
        """After pass 1: the KS bounds; whether pass 2 has anything to collect."""
        if self.grid.n == 0 or self.ks.n == 0:
            return False
        self.lower, self.candidates = self.ks.bounds(self.grid)
        return bool(self.candidates.any())

    def collect(self, raw: Array) -> None:
        if self.candidates is None or not self.candidates.any():
            return
        start = time.perf_counter()
        self.ks.collect(self.grid, raw[~np.isnan(raw)], self.candidates)
        self.seconds += time.perf_counter() - start

    def bin_counts(self, edges: Array) -> Array:
        """Current counts between ``edges`` (all on the grid), outer bins open-ended."""
        cur_lt = self.ks.cur_lt()[np.searchsorted(self.grid.edges, edges)]
        return np.diff(cur_lt, prepend=0, append=self.ks.n)


class _CategoricalState:
    def __init__(self, profile: ColumnProfile) -> None:
        self.profile = profile
        self.counts: dict[str, int] = {}
        self.missing = 0
        self.seconds = 0.0

    def add(self, series: pd.Series) -> None:
        start = time.perf_counter()
        self.missing += int(series.isna().sum())
        values, counts = np.unique(categorical_values(series), return_counts=True)
        for v, c in zip(values, counts, strict=True):
            self.counts[v] = self.counts.get(v, 0) + int(c)
        self.seconds += time.perf_counter() - start


class CurrentAccumulator:
    """Accumulates current data against a :class:`ReferenceProfile`, block by block."""

    def __init__(self, profile: ReferenceProfile, options: UnivariateOptions | None = None) -> None:
        self.profile = profile
        self.options = options or UnivariateOptions()
        self.rows = 0
        self._pass = 1
        self._refine: list[str] = []
        self._refined = False
        self._rng = np.random.default_rng(self.options.seed)
        self._sample: pd.DataFrame | None = None
        self._sample_keys = np.empty(0)
        self._numeric = {n: _NumericState(c) for n, c in profile.columns.items() if c.kind == "numeric"}
        self._categorical = {n: _CategoricalState(c) for n, c in profile.columns.items() if c.kind != "numeric"}
        threads = self.options.threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(threads) if threads > 1 and len(self._numeric) > 1 else None

    def _numeric_arrays(self, block: pd.DataFrame, names: list[str]) -> dict[str, Array]:
        arrays = {}
        for name in names:
            series = block[name]
            if not (isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiu"):
                raise EngineError(f"column {name!r} is numeric in the reference but not in the current data")
            # float64 columns are read in place; others are converted (NaN for missing).
            arrays[name] = (
                series.to_numpy() if series.dtype == np.float64 else series.to_numpy(dtype=np.float64, na_value=np.nan)
            )
        return arrays

    def _each_numeric(self, method: str, arrays: dict[str, Array]) -> None:
        if self._pool is not None:
            list(self._pool.map(lambda n: getattr(self._numeric[n], method)(arrays[n]), arrays))
        else:
            for name, values in arrays.items():
                getattr(self._numeric[name], method)(values)

    def update_all(self, frame: pd.DataFrame) -> None:
        """All the current data in one frame: both passes, one column at a time (one sort per column)."""
        self.update(frame, whole=True)

    def update(self, block: pd.DataFrame, *, whole: bool = False) -> None:
        """Pass 1: count a block of current rows."""
        if self._pass != 1 or (whole and self.rows):
            raise EngineError("all current data must be counted before the second pass starts")
        if not all(isinstance(c, str) for c in block.columns):
            block = block.rename(columns=str)
        missing = [n for n in self.profile.names if n not in block.columns]
        if missing:
            raise EngineError(f"the current data lacks the reference's columns: {', '.join(missing)}")
        if block.shape[0] == 0:
            return
        self._each_numeric("add_whole" if whole else "add", self._numeric_arrays(block, list(self._numeric)))
        for name, state in self._categorical.items():
            state.add(block[name])
        self._keep_sample(block)
        self.rows += int(block.shape[0])
        if whole:
            self._pass, self._refined = 2, True

    def _keep_sample(self, block: pd.DataFrame) -> None:
        # Uniform sample without replacement: the rows with the smallest random keys.
        # Only rows that make the cut are copied out of the block.
        keys = self._rng.random(block.shape[0])
        cap = self.options.sample_rows
        names = list(self.profile.names)
        all_keys = np.concatenate([self._sample_keys, keys])
        if all_keys.size > cap:
            kth = np.partition(all_keys, cap - 1)[cap - 1]
            keep_old, keep_new = self._sample_keys <= kth, np.flatnonzero(keys <= kth)
        else:
            keep_old, keep_new = np.ones(self._sample_keys.size, dtype=bool), np.arange(keys.size)
        new_rows = block.iloc[keep_new][names]
        frame = new_rows if self._sample is None else pd.concat([self._sample[keep_old], new_rows], ignore_index=True)
        self._sample = frame.reset_index(drop=True)
        self._sample_keys = np.concatenate([self._sample_keys[keep_old], keys[keep_new]])

    @property
    def needs_second_pass(self) -> bool:
        """Whether :meth:`refine` must see the current data again (ends pass 1)."""
        if self._pass == 1:
            self._pass = 2
            if self.options.numeric_test == "ks":
                self._refine = [name for name, state in self._numeric.items() if state.plan()]
        return bool(self._refine)

    def refine(self, block: pd.DataFrame) -> None:
        """Pass 2: the same blocks again, in any order; only the values the exact KS needs are kept."""
        if not self.needs_second_pass:
            return
        self._refined = True
        if not all(isinstance(c, str) for c in block.columns):
            block = block.rename(columns=str)
        self._each_numeric("collect", self._numeric_arrays(block, self._refine))

    @property
    def sample(self) -> pd.DataFrame:
        if self._sample is None:
            return pd.DataFrame(columns=list(self.profile.names))
        return self._sample

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # --- results -----------------------------------------------------------------------------

    def results(self) -> list[ColumnResult]:
        """One raw result per reference column, in the reference's order."""
        if self.rows and self.needs_second_pass and not self._refined:
            raise EngineError("the exact KS test needs a second pass: call refine() with the current data again")
        self.close()
        out = []
        for name, col in self.profile.columns.items():
            try:
                if col.kind == "numeric":
                    out.append(self._numeric_result(self._numeric[name]))
                else:
                    out.append(self._categorical_result(self._categorical[name]))
            except (ValueError, FloatingPointError, EngineError) as exc:
                out.append(
                    ColumnResult(
                        name=name,
                        kind=col.kind,
                        test="",
                        statistic=float("nan"),
                        p_value=float("nan"),
                        n_reference=col.n,
                        n_current=0,
                        missing_reference=col.missing,
                        missing_current=0,
                        wasserstein=None,
                        psi=None,
                        js_distance=None,
                        sample_size=None,
                        reference_sample_size=None,
                        new_categories=(),
                        histogram=None,
                        seconds=0.0,
                        error=str(exc),
                    )
                )
        return out

    def _numeric_result(self, state: _NumericState) -> ColumnResult:
        col = state.profile
        start = time.perf_counter()
        if col.n == 0 or state.ks.n == 0:
            raise EngineError(f"column {col.name!r} has no values on one side")
        sample = self.sample[col.name].to_numpy(dtype=np.float64, na_value=np.nan)
        sample = sample[~np.isnan(sample)]
        opts = self.options
        if opts.numeric_test == "ks":
            d = state.ks.statistic(state.grid, col.need(col.sorted_values, "sorted values"), state.lower)
            statistic, p = ks_pvalue(d, col.n, state.ks.n, opts.ks_method)
        else:
            res = stats.cramervonmises_2samp(col.reference_sample, sample)
            statistic, p = float(res.statistic), float(res.pvalue)
        sampled = opts.numeric_test == "cvm" or opts.effect_sizes
        psi_edges, psi_ref = col.need(col.psi_edges, "PSI bins"), col.need(col.psi_counts, "PSI bins")
        display_edges = col.need(col.display_edges, "histogram")
        display_ref = col.need(col.display_counts, "histogram")
        psi_counts = state.bin_counts(psi_edges)
        return ColumnResult(
            name=col.name,
            kind="numeric",
            test=opts.numeric_test,
            statistic=statistic,
            p_value=p,
            n_reference=col.n,
            n_current=state.ks.n,
            missing_reference=col.missing,
            missing_current=state.missing,
            wasserstein=wasserstein_presorted(col.reference_sample, sample) if opts.effect_sizes else None,
            psi=psi(psi_ref, psi_counts) if opts.effect_sizes else None,
            js_distance=jensen_shannon(psi_ref, psi_counts) if opts.effect_sizes else None,
            sample_size=int(sample.size) if sampled else None,
            reference_sample_size=int(col.reference_sample.size) if sampled else None,
            new_categories=(),
            histogram=Histogram(
                reference=tuple(int(v) for v in display_ref),
                current=tuple(int(v) for v in state.bin_counts(display_edges[1:-1])),
                edges=tuple(float(v) for v in display_edges),
            ),
            seconds=state.seconds + time.perf_counter() - start,
        )

    def _categorical_result(self, state: _CategoricalState) -> ColumnResult:
        col = state.profile
        start = time.perf_counter()
        cats = list(col.categories)
        new = sorted(set(state.counts) - set(cats))
        cats += new
        ref_counts = np.array([*col.need(col.counts, "category counts"), *([0] * len(new))], dtype=np.int64)
        cur_counts = np.array([state.counts.get(c, 0) for c in cats], dtype=np.int64)
        n_cur = int(cur_counts.sum())
        if col.n == 0 or n_cur == 0:
            raise EngineError(f"column {col.name!r} has no values on one side")
        table = np.vstack([ref_counts, cur_counts])
        if len(cats) == 1:
            test, statistic, p = "chi2", 0.0, 1.0
        elif col.kind == "binary" and len(cats) == 2 and self.options.binary_test == "fisher":
            fisher = stats.fisher_exact(table)
            test, statistic, p = "fisher", float(fisher.statistic), float(fisher.pvalue)
        else:
            chi2 = stats.chi2_contingency(table, correction=False)
            test, statistic, p = "chi2", float(chi2.statistic), float(chi2.pvalue)
        return ColumnResult(
            name=col.name,
            kind=col.kind,
            test=test,
            statistic=statistic,
            p_value=p,
            n_reference=col.n,
            n_current=n_cur,
            missing_reference=col.missing,
            missing_current=state.missing,
            wasserstein=None,
            psi=psi(ref_counts, cur_counts) if self.options.effect_sizes else None,
            js_distance=jensen_shannon(ref_counts, cur_counts) if self.options.effect_sizes else None,
            sample_size=None,
            reference_sample_size=None,
            new_categories=tuple(new),
            histogram=Histogram(
                reference=tuple(int(v) for v in ref_counts),
                current=tuple(int(v) for v in cur_counts),
                categories=tuple(cats),
            ),
            seconds=state.seconds + time.perf_counter() - start,
        )
