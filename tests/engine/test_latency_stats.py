"""Percentiles and summaries of the latency profiler, checked against numpy and the reference tools' formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workers.engine.errors import EngineError
from workers.engine.latency.stats import (
    PERCENTILES,
    bimodality_gap,
    percentile,
    percentiles,
    summarize,
)

KNOWN = [15, 20, 35, 40, 50]  # the classic worked example of percentile definitions


@pytest.mark.parametrize("q", [0, 5, 25, 30, 40, 50, 75, 90, 95, 99, 100])
def test_linear_matches_numpy_on_known_samples(q):
    assert percentile(KNOWN, q) == pytest.approx(float(np.percentile(KNOWN, q)))


def test_linear_known_values():
    # position q/100 * (n - 1): p40 -> 1.6 -> 20 + 0.6 * 15; p50 -> 35; p90 -> 3.6 -> 40 + 0.6 * 10
    assert percentile(KNOWN, 40) == pytest.approx(29.0)
    assert percentile(KNOWN, 50) == 35.0
    assert percentile(KNOWN, 90) == pytest.approx(46.0)


def test_benchmark_app_method_is_numpy_inverted_cdf_and_its_formula():
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 100, 1001):
        x = rng.lognormal(3, 0.4, n)
        ordered = sorted(x)
        for q in (1, 50, 90, 95, 99, 100):
            expected = ordered[math.ceil(n * q / 100) - 1]  # openvino/tools/benchmark/benchmark.py
            assert percentile(x, q, "benchmark_app") == expected
            assert percentile(x, q, "benchmark_app") == pytest.approx(np.percentile(x, q, method="inverted_cdf"))
    # its "median" of an even count is the lower middle sample
    assert percentile([1, 2, 3, 4], 50, "benchmark_app") == 2


def test_perf_analyzer_method_rounds_the_linear_position_half_up():
    # index = size_t(q/100 * (n - 1) + 0.5)
    assert percentile(KNOWN, 50, "perf_analyzer") == 35
    assert percentile(KNOWN, 90, "perf_analyzer") == 50  # 3.6 + 0.5 -> 4
    assert percentile(KNOWN, 40, "perf_analyzer") == 35  # 1.6 + 0.5 -> 2
    assert percentile([1, 2, 3, 4], 50, "perf_analyzer") == 3  # 1.5 + 0.5 -> 2 (numpy 'nearest' would give 2)
    x = np.random.default_rng(2).normal(size=999)
    for q in PERCENTILES:
        assert percentile(x, q, "perf_analyzer") == pytest.approx(np.percentile(x, q, method="nearest"))


def test_percentiles_sorts_once_and_agrees_with_single_calls():
    x = np.random.default_rng(3).exponential(size=500)
    marks = percentiles(x)
    assert list(marks) == list(PERCENTILES)
    for q, value in marks.items():
        assert value == pytest.approx(float(np.percentile(x, q)))


def test_percentile_errors():
    with pytest.raises(EngineError):
        percentile([], 50)
    with pytest.raises(EngineError):
        percentile([1.0], 101)
    with pytest.raises(EngineError):
        percentile([1.0], 50, "weird")  # type: ignore[arg-type]


def test_summarize_against_numpy():
    rng = np.random.default_rng(4)
    samples = rng.integers(50_000, 150_000, 2000)  # 50-150 µs in ns
    wall = int(samples.sum() * 1.25)  # 25 % of the time between calls
    s = summarize(samples, batch_size=8, wall_ns=wall)
    assert s.count == 2000 and s.batch_size == 8
    assert s.mean_ms == pytest.approx(samples.mean() / 1e6)
    assert s.std_ms == pytest.approx(samples.std() / 1e6)
    assert s.min_ms == samples.min() / 1e6 and s.max_ms == samples.max() / 1e6
    for q in PERCENTILES:
        assert s.percentile_ms(q) == pytest.approx(np.percentile(samples, q) / 1e6)
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms
    assert s.wall_s == pytest.approx(wall / 1e9)
    assert s.throughput_batches_s == pytest.approx(2000 / (wall / 1e9))
    assert s.throughput_rows_s == pytest.approx(8 * s.throughput_batches_s)
    # without a wall clock the calls are taken as back to back
    back_to_back = summarize(samples, batch_size=1)
    assert back_to_back.throughput_batches_s == pytest.approx(1e9 / samples.mean())
    assert s.to_dict()["p99_ms"] == s.p99_ms
    with pytest.raises(EngineError):
        s.percentile_ms(75)


def test_bimodality_gap_separates_one_mode_from_two():
    rng = np.random.default_rng(5)
    one = rng.normal(100.0, 5.0, 4000)
    two = np.concatenate([rng.normal(100.0, 3.0, 2000), rng.normal(200.0, 3.0, 2000)])
    heavy_tail = np.concatenate([rng.normal(100.0, 5.0, 3960), rng.uniform(300, 3000, 40)])  # 1 % outliers
    assert bimodality_gap(one) < 0.05
    assert bimodality_gap(heavy_tail) < 0.05  # a tail beyond p90 is not a second mode
    assert bimodality_gap(two) > 0.5
    assert bimodality_gap([1.0, 2.0]) == 0.0
