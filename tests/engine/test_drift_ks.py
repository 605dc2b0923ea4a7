"""Exact KS against a presorted reference: the same statistic and p-value as scipy, to the bit.

The cases cover sizes from 1 to 12,000 (both of scipy's p-value methods),
heavy ties within and across samples, disjoint supports, and current samples
drawn from the reference's own values; the two-pass algorithm's bounds are
exercised whichever interval holds the maximum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workers.engine.drift import (
    CurrentAccumulator,
    ReferenceProfile,
    UnivariateOptions,
    jensen_shannon,
    ks_presorted,
    psi,
    wasserstein_presorted,
)


def _cases(rng: np.random.Generator, count: int):
    """Samples of many sizes (1 to 12,000, both p-value methods) with and without ties."""
    for i in range(count):
        n1, n2 = (int(v) for v in rng.integers(1, 3000, 2))
        if i % 10 == 0:
            n1, n2 = int(rng.integers(9000, 12000)), int(rng.integers(5000, 12000))  # across the exact/asymp switch
        kind = i % 4
        if kind == 0:  # heavy ties, different supports
            a, b = rng.integers(0, 8, n1).astype(float), rng.integers(0, 9, n2).astype(float)
        elif kind == 1:  # continuous, small shift
            a, b = rng.normal(size=n1), rng.normal(0.1, size=n2)
        elif kind == 2:  # rounded: ties within and across samples
            a, b = np.round(rng.normal(size=n1), 1), np.round(rng.normal(0.05, 1.0, size=n2), 1)
        elif i % 8 == 3:  # disjoint supports
            a, b = rng.uniform(0, 1, n1), rng.uniform(0.5, 2, n2)
        else:  # the current sample drawn from the reference's own values: ties everywhere
            a = rng.normal(size=n1)
            b = rng.choice(a, n2)
        yield a, b


def test_ks_equals_scipy_ks_2samp_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    checked = 0
    for a, b in _cases(rng, 160):
        d, p = ks_presorted(np.sort(a), b)
        ref = stats.ks_2samp(a, b)
        assert d == ref.statistic and p == ref.pvalue, (a.size, b.size, d, ref.statistic, p, ref.pvalue)
        checked += 1
    assert checked == 160


def test_ks_large_samples_with_a_coarse_grid() -> None:
    """References far larger than the 4,096-edge grid: the second pass finds the maximum."""
    rng = np.random.default_rng(12)
    for shift in (0.0, 0.003, 0.05):
        a = rng.normal(size=60_000)
        b = rng.normal(shift, 1.0, size=75_000)
        ref = stats.ks_2samp(a, b)
        assert ks_presorted(np.sort(a), b) == (ref.statistic, ref.pvalue)
        b = np.round(b, 2)
        ref = stats.ks_2samp(a, b)
        assert ks_presorted(np.sort(a), b) == (ref.statistic, ref.pvalue)


@pytest.mark.parametrize("method", ["exact", "asymp"])
def test_ks_methods_equal_scipy(method: str) -> None:
    rng = np.random.default_rng(3)
    a, b = np.round(rng.normal(size=700), 2), np.round(rng.normal(0.1, 1.0, size=450), 2)
    ref = stats.ks_2samp(a, b, method=method)
    assert ks_presorted(np.sort(a), b, method) == (ref.statistic, ref.pvalue)


def test_ks_in_blocks_equals_one_block_and_scipy() -> None:
    """Counting the current data block by block changes nothing (bounded memory, same answer)."""
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"a": np.round(rng.normal(size=5000), 2), "b": rng.exponential(size=5000)})
    cur = pd.DataFrame({"a": np.round(rng.normal(0.05, 1, size=23_456), 2), "b": rng.exponential(1.1, size=23_456)})
    profile = ReferenceProfile.from_frame(ref)
    whole = CurrentAccumulator(profile, UnivariateOptions(sample_rows=1000, threads=1))
    whole.update(cur)
    blocks = CurrentAccumulator(profile, UnivariateOptions(sample_rows=1000, threads=2))
    for start in range(0, cur.shape[0], 3001):
        blocks.update(cur.iloc[start : start + 3001])
    assert whole.needs_second_pass and blocks.needs_second_pass
    whole.refine(cur)
    for start in reversed(range(0, cur.shape[0], 3001)):  # any order
        blocks.refine(cur.iloc[start : start + 3001])
    at_once = CurrentAccumulator(profile, UnivariateOptions(sample_rows=1000, threads=2))
    at_once.update_all(cur)  # both passes per column, one sort each
    for r1, r2, r3 in zip(whole.results(), blocks.results(), at_once.results(), strict=True):
        assert (r3.statistic, r3.p_value, r3.psi, r3.wasserstein) == (r1.statistic, r1.p_value, r1.psi, r1.wasserstein)
        scipy_result = stats.ks_2samp(ref[r1.name], cur[r1.name])
        assert (r1.statistic, r1.p_value) == (r2.statistic, r2.p_value) == (scipy_result.statistic, scipy_result.pvalue)
        assert r1.psi == r2.psi and r1.histogram == r2.histogram
        assert r1.wasserstein == r2.wasserstein  # the row sample does not depend on block sizes


def test_missing_values_are_left_out_and_counted() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=400), rng.normal(size=300)
    a[::7], b[::5] = np.nan, np.nan
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": a}))
    acc = CurrentAccumulator(profile)
    acc.update(pd.DataFrame({"x": b}))
    if acc.needs_second_pass:
        acc.refine(pd.DataFrame({"x": b}))
    (res,) = acc.results()
    ref = stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)])
    assert (res.statistic, res.p_value) == (ref.statistic, ref.pvalue)
    assert (res.missing_reference, res.missing_current) == (int(np.isnan(a).sum()), int(np.isnan(b).sum()))


def test_cramer_von_mises_equals_scipy() -> None:
    rng = np.random.default_rng(8)
    # Small samples (exact p-value) and large ones (asymptotic), with and without ties.
    for decimals, n_ref, n_cur in ((0, 12, 15), (1, 600, 800), (3, 900, 40), (6, 2000, 2500)):
        ref = pd.DataFrame({"x": np.round(rng.normal(size=n_ref), decimals)})
        cur = pd.DataFrame({"x": np.round(rng.normal(0.1, 1, size=n_cur), decimals)})
        acc = CurrentAccumulator(
            ReferenceProfile.from_frame(ref, kinds={"x": "numeric"}), UnivariateOptions(numeric_test="cvm")
        )
        acc.update(cur)
        (res,) = acc.results()
        expected = stats.cramervonmises_2samp(ref["x"], cur["x"])
        assert res.test == "cvm"
        assert res.statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert res.p_value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-15)
        assert res.sample_size == n_cur and res.reference_sample_size == n_ref


def test_effect_sizes_equal_scipy() -> None:
    rng = np.random.default_rng(4)
    for size in (10, 333, 5000):
        a, b = np.round(rng.gamma(2, size=size), 1), rng.gamma(2.3, size=size + 17)
        assert wasserstein_presorted(np.sort(a), b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)
    r, c = np.array([10, 20, 30, 40]), np.array([40, 30, 20, 10])
    from scipy.spatial import distance

    assert jensen_shannon(r, c) == pytest.approx(distance.jensenshannon(r / 100, c / 100, base=2), rel=1e-12)
    rp, cp = r / r.sum(), c / c.sum()
    assert psi(r, c) == pytest.approx(np.sum((cp - rp) * np.log(cp / rp)), rel=1e-12)
    assert psi(r, r) == 0.0
    # An empty bin gives a large finite value, not infinity (proportions floored at 1e-4).
    assert np.isfinite(psi(np.array([50, 50, 0]), np.array([40, 40, 20])))
