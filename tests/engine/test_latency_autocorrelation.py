"""The regression check holds its error rates on autocorrelated latencies (seeded simulation).

Latencies are simulated as ``exp(0.1 · z)`` ms with ``z`` an AR(1) process
(lag-1 correlation 0.9, stationary variance 1): baseline and candidate are
two independent runs of the *same* process, so every flag is a false alarm
and the true ratio of medians is 1.

Tolerances: over ``S`` independent simulated pairs, the count of false
alarms at level ``a`` is at most Binomial(S, a) when the test is valid, so
its rate exceeds ``a + 3·sqrt(a(1 − a)/S)`` with probability below about
0.2 % (normal approximation); likewise the interval's coverage lies within
``0.95 ± 3·sqrt(0.95 · 0.05 / S)``. A Mann–Whitney test on the raw calls,
which assumes independence, is run on the same data to show the
autocorrelation matters: it raises false alarms several times too often.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.signal import lfilter

from workers.engine.latency.regression import compare_samples, correlation_time

S = 300
N = 1500
PHI = 0.9
ALPHA = 0.05


def _pairs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shocks = rng.normal(size=(S, 2, N)) * math.sqrt(1 - PHI**2)
    shocks[..., 0] = rng.normal(size=(S, 2))  # start in the stationary distribution
    z = lfilter([1.0], [1.0, -PHI], shocks, axis=-1)
    return np.round(1e6 * np.exp(0.1 * z)).astype(np.int64)


def test_identical_autocorrelated_runs_are_flagged_at_the_nominal_rate() -> None:
    pairs = _pairs(2024)
    alarms = covered = naive_alarms = flagged = 0
    for base, cand in pairs:
        result = compare_samples(base, cand, alpha=ALPHA, threshold=0.0)
        alarms += result.p_value < ALPHA
        flagged += result.flagged
        covered += result.ratio_ci_low <= 1.0 <= result.ratio_ci_high
        naive_alarms += stats.mannwhitneyu(cand, base, alternative="greater").pvalue < ALPHA
    alarm_limit = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / S)
    coverage_slack = 3 * math.sqrt(0.95 * 0.05 / S)
    assert alarms / S <= alarm_limit, (alarms, S)
    assert flagged == alarms  # threshold 0: flagged exactly when significant and slower
    assert abs(covered / S - 0.95) <= coverage_slack, (covered, S)
    # The same data through a test that assumes independent calls.
    assert naive_alarms / S > 3 * ALPHA, naive_alarms


def test_a_real_slowdown_is_still_found_under_autocorrelation() -> None:
    base, cand = _pairs(7)[0]
    result = compare_samples(base, (cand * 1.15).round(), alpha=0.01, threshold=0.10)
    assert result.flagged and result.ratio_ci_low > 1.05
    assert result.baseline_blocks >= 5 and result.block_lag1 is not None


def test_correlation_time_of_an_ar1_process() -> None:
    base = _pairs(3)[0, 0]
    # (1 + 0.9) / (1 - 0.9) = 19 for the process itself; ranks of exp(z) keep it close.
    assert 12 < correlation_time(base) < 30
    assert correlation_time(np.random.default_rng(0).normal(size=N)) < 1.2
