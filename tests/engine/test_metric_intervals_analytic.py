"""Analytic intervals on large data sets, checked three ways.

1. Against independent reference computations: DeLong's variance against
   the direct O(n²) structural components on small data with ties; the
   delta-method variances against the multinomial delta method with a
   numerical gradient of scikit-learn's own metric (sample-weighted cells);
   the regression standard errors against scipy's ``sem`` and the moment
   covariance.
2. Against a large stratified bootstrap (the engine's, itself checked
   against scikit-learn resample by resample in test_metric_intervals):
   with B = 2000 resamples a percentile interval's width has a relative
   standard deviation of about √2·√(0.025·0.975/B)/φ(1.96)/3.92 ≈ 2.2 %, and
   on 3,000 rows the analytic and bootstrap intervals differ by O(1/n), so the
   widths must agree within 10 % (about 4.5 standard deviations).
3. Coverage on simulated data whose true values are known: over R = 400
   simulated data sets a 95 % interval should cover the truth 95 % of the
   time; the count's standard deviation is √(0.95·0.05/400) ≈ 1.1 %, so
   coverage must lie in [0.92, 0.98] (about 3 standard deviations). An
   interval of half or twice the right width would cover about 68 % or
   99.99 % of the time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from workers.engine.metrics import classification_metrics, regression_metrics
from workers.engine.metrics.analytic import delong, delong_variance, macro_intervals, per_class_intervals

R = 400
COVERAGE = (0.92, 0.98)


def _structural_components(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """DeLong's AUC and variance the direct way: ψ over every positive-negative pair."""
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(psi.mean()), float(v10.var(ddof=1) / x.size + v01.var(ddof=1) / y.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_the_direct_structural_components(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.random(n) < 0.3
    scores = np.round(rng.normal(0.8 * y, 1.0), 1)  # rounded: many ties, within and across classes
    auc, v10, v01 = delong(y, scores)
    expected_auc, expected_var = _structural_components(scores[y], scores[~y])
    assert auc == pytest.approx(expected_auc, abs=1e-12)
    assert auc == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-12)
    assert delong_variance(v10, v01) == pytest.approx(expected_var, rel=1e-10)
    # and that variance is what the result reports
    got = classification_metrics(y.astype(int), (scores > 0.4).astype(int), _two(scores), [0, 1], analytic_above=0)
    record = got["intervals"]["roc_auc"]
    assert record["method"] == "delong"
    assert record["standard_error"] == pytest.approx(math.sqrt(expected_var), rel=1e-10)
    assert record["low"] == pytest.approx(expected_auc - 1.959963984540054 * math.sqrt(expected_var), abs=1e-12)


def _two(score: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - score, score])


def _multinomial_delta(cm: np.ndarray, metric: Callable[[np.ndarray], float]) -> float:
    """Σ_s n_s/(n_s − 1) · gᵀ n_s (diag π_s − π_s π_sᵀ) g, g the numerical gradient of ``metric`` in the counts."""
    k = cm.shape[0]
    counts = cm.astype(np.float64)
    gradient = np.zeros_like(counts)
    for s in range(k):
        for q in range(k):
            if counts[s, q] == 0:
                continue  # a cell without rows never varies
            up, down = counts.copy(), counts.copy()
            up[s, q] += 1e-3
            down[s, q] -= 1e-3
            gradient[s, q] = (metric(up) - metric(down)) / 2e-3
    total = 0.0
    for s in range(k):
        n_s = counts[s].sum()
        if n_s < 2:
            continue
        pi = counts[s] / n_s
        cov = n_s * (np.diag(pi) - np.outer(pi, pi))
        total += n_s / (n_s - 1) * float(gradient[s] @ cov @ gradient[s])
    return total


_SKLEARN = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}


def _sklearn_on_cells(name: str, k: int, average: str | None, c: int = 0) -> Callable[[np.ndarray], float]:
    """scikit-learn's metric (macro, or class ``c``'s) of a confusion matrix given as weighted cells."""
    truth, predicted = np.repeat(np.arange(k), k), np.tile(np.arange(k), k)

    def metric(counts: np.ndarray) -> float:
        value = _SKLEARN[name](
            truth, predicted, sample_weight=counts.ravel(), average=average, labels=list(range(k)), zero_division=0
        )
        return float(value if average else value[c])

    return metric


def test_delta_method_matches_the_multinomial_delta_method_with_sklearn() -> None:
    cm = np.array([[410, 52, 9], [61, 280, 33], [4, 25, 126]])
    macro = macro_intervals(cm)
    for name in ("precision", "recall", "f1"):
        expected = _multinomial_delta(cm, _sklearn_on_cells(name, 3, "macro"))
        assert macro[name] is not None
        assert macro[name]["standard_error"] ** 2 == pytest.approx(expected, rel=1e-5)
        for c, record in enumerate(per_class_intervals(cm, name)):
            expected = _multinomial_delta(cm, _sklearn_on_cells(name, 3, None, c))
            assert record is not None
            assert record["standard_error"] ** 2 == pytest.approx(expected, rel=1e-5)
    # a class never predicted: its precision is a constant 0 and adds nothing to the macro precision's variance
    cm = np.array([[50, 10, 0], [5, 60, 0], [3, 7, 0]])
    expected = _multinomial_delta(cm, _sklearn_on_cells("precision", 3, "macro"))
    assert macro_intervals(cm)["precision"]["standard_error"] ** 2 == pytest.approx(expected, rel=1e-5)  # type: ignore[index]


def test_regression_standard_errors_match_scipy_and_the_moment_delta_method() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.normal(10, 3, n)
    pred = y + rng.laplace(0, 1.2, n)
    got = regression_metrics(y, pred, analytic_above=0)
    intervals = got["intervals"]
    err = y - pred
    assert intervals["mae"]["standard_error"] == pytest.approx(stats.sem(np.abs(err)), rel=1e-10)
    mse_se = stats.sem(err**2)
    mse = float(np.mean(err**2))
    assert intervals["rmse"]["low"] == pytest.approx(math.sqrt(mse - 1.959963984540054 * mse_se), rel=1e-10)
    assert intervals["rmse"]["high"] == pytest.approx(math.sqrt(mse + 1.959963984540054 * mse_se), rel=1e-10)
    # R² = 1 − m1/(m2 − m3²) with m1 = mean(e²), m2 = mean(y²), m3 = mean(y): delta method on the moments
    moments = np.vstack([err**2, y**2, y])
    m1, m2, m3 = moments.mean(axis=1)
    v = m2 - m3**2
    gradient = np.array([-1 / v, m1 / v**2, -2 * m3 * m1 / v**2])
    expected = float(gradient @ np.cov(moments) @ gradient) / n
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred), abs=1e-12)
    assert intervals["r2"]["standard_error"] ** 2 == pytest.approx(expected, rel=1e-9)
    assert got["interval_method"]["analytic"] == {"above_rows": 0, "mae": "normal", "rmse": "normal", "r2": "delta"}


def _agree(analytic: dict, bootstrap: dict) -> None:
    assert analytic["method"] in {"delong", "delta", "normal"} and bootstrap["method"] == "bootstrap"
    width_a, width_b = analytic["high"] - analytic["low"], bootstrap["high"] - bootstrap["low"]
    assert width_a / width_b == pytest.approx(1.0, abs=0.10)
    centre_a, centre_b = (analytic["high"] + analytic["low"]) / 2, (bootstrap["high"] + bootstrap["low"]) / 2
    assert abs(centre_a - centre_b) < 0.1 * width_b


def test_analytic_intervals_agree_with_a_large_bootstrap() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    y = (rng.random(n) < 0.4).astype(int)
    score = 1 / (1 + np.exp(-rng.normal(1.2 * y - 0.5, 1.0)))
    pred = (score > 0.5).astype(int)
    fast = classification_metrics(y, pred, _two(score), [0, 1], analytic_above=n - 1)
    slow = classification_metrics(y, pred, _two(score), [0, 1], analytic_above=None, resamples=2000, seed=1)
    assert slow["interval_method"]["bootstrap"]["resamples"] == 2000
    for name in ("f1", "roc_auc"):
        _agree(fast["intervals"][name], slow["intervals"][name])
    for label in ("0", "1"):
        _agree(fast["per_class_intervals"][label]["f1"], slow["per_class_intervals"][label]["f1"])

    t = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), t] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p = proba.argmax(axis=1)
    fast = classification_metrics(t, p, proba, [0, 1, 2], analytic_above=n - 1)
    slow = classification_metrics(t, p, proba, [0, 1, 2], analytic_above=None, resamples=2000, seed=1)
    for name in ("precision", "recall", "f1", "roc_auc"):
        _agree(fast["intervals"][name], slow["intervals"][name])

    target = rng.normal(0, 2, n)
    guess = target + rng.standard_t(5, n)
    fast = regression_metrics(target, guess, analytic_above=n - 1)
    slow = regression_metrics(target, guess, analytic_above=None, resamples=2000, seed=1)
    for name in ("mae", "rmse", "r2"):
        _agree(fast["intervals"][name], slow["intervals"][name])


def _covered(record: dict, truth: float) -> bool:
    return bool(record["low"] <= truth <= record["high"])


def _coverage(hits: list[bool]) -> float:
    assert len(hits) == R
    return sum(hits) / R


def test_binary_coverage_of_roc_auc_and_f1_on_simulated_data() -> None:
    # Class counts fixed (the intervals hold them fixed); negatives score N(0, 1) and positives N(1, 1), so
    # AUC = Φ(1/√2). The classifier calls positive above 0.8: TPR = Φ(0.2), FPR = 1 − Φ(0.8), and F1 tends to
    # 2·m·TPR / (2·m·TPR + n·FPR + m·(1 − TPR)).
    rng = np.random.default_rng(11)
    m, n = 300, 600
    y = np.r_[np.ones(m, dtype=int), np.zeros(n, dtype=int)]
    auc_true = stats.norm.cdf(1 / math.sqrt(2))
    tpr, fpr = stats.norm.cdf(0.2), 1 - stats.norm.cdf(0.8)
    f1_true = 2 * m * tpr / (2 * m * tpr + n * fpr + m * (1 - tpr))
    auc_hits, f1_hits = [], []
    for _ in range(R):
        score = rng.normal(y.astype(float), 1.0)
        got = classification_metrics(y, (score > 0.8).astype(int), _two(score), [0, 1], analytic_above=0)
        auc_hits.append(_covered(got["intervals"]["roc_auc"], auc_true))
        f1_hits.append(_covered(got["intervals"]["f1"], f1_true))
    assert COVERAGE[0] <= _coverage(auc_hits) <= COVERAGE[1]
    assert COVERAGE[0] <= _coverage(f1_hits) <= COVERAGE[1]


def test_multiclass_coverage_of_macro_metrics_on_simulated_data() -> None:
    # Three classes of fixed sizes; each row's predicted class drawn from a known confusion distribution, so
    # every class's precision, recall and F1 tend to known values. Class c's score is N(μ_c, 1) on its own
    # rows and N(0, 1) on the others, so its one-vs-rest AUC is Φ(μ_c/√2).
    rng = np.random.default_rng(12)
    sizes = np.array([400, 250, 150])
    confusion = np.array([[0.8, 0.15, 0.05], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    mu = np.array([0.5, 1.0, 1.5])
    t = np.repeat(np.arange(3), sizes)
    expected_cm = sizes[:, None] * confusion
    tp, predicted, actual = np.diag(expected_cm), expected_cm.sum(axis=0), expected_cm.sum(axis=1)
    truth = {
        "precision": float(np.mean(tp / predicted)),
        "recall": float(np.mean(tp / actual)),
        "f1": float(np.mean(2 * tp / (predicted + actual))),
        "roc_auc": float(np.mean(stats.norm.cdf(mu / math.sqrt(2)))),
    }
    hits: dict[str, list[bool]] = {name: [] for name in truth}
    cumulative = confusion.cumsum(axis=1)[t]
    for _ in range(R):
        p = (rng.random(t.size)[:, None] > cumulative).sum(axis=1)
        scores = rng.normal(0, 1, (t.size, 3))
        scores[np.arange(t.size), t] += mu[t]
        got = classification_metrics(t, p, scores, [0, 1, 2], analytic_above=0)
        for name, value in truth.items():
            hits[name].append(_covered(got["intervals"][name], value))
    for name in truth:
        assert COVERAGE[0] <= _coverage(hits[name]) <= COVERAGE[1], name


def test_regression_coverage_on_simulated_data() -> None:
    # y ~ N(0, 2²) and a Laplace(0, 1) error, independent: MAE = 1, RMSE = √2, R² = 1 − 2/4 = 0.5.
    rng = np.random.default_rng(13)
    truth = {"mae": 1.0, "rmse": math.sqrt(2.0), "r2": 0.5}
    hits: dict[str, list[bool]] = {name: [] for name in truth}
    for _ in range(R):
        y = rng.normal(0, 2, 800)
        got = regression_metrics(y, y - rng.laplace(0, 1, 800), analytic_above=0)
        for name, value in truth.items():
            hits[name].append(_covered(got["intervals"][name], value))
    for name in truth:
        assert COVERAGE[0] <= _coverage(hits[name]) <= COVERAGE[1], name


def test_the_threshold_decides_the_method_and_the_result_says_which() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 150)
    score = np.clip(0.3 * y + rng.normal(0.35, 0.2, 150), 0, 1)
    pred = (score > 0.5).astype(int)
    small = classification_metrics(y, pred, _two(score), [0, 1], resamples=200)  # default threshold: 100,000
    assert small["intervals"]["f1"]["method"] == "bootstrap" and "analytic" not in small["interval_method"]
    large = classification_metrics(y, pred, _two(score), [0, 1], analytic_above=149)
    assert large["interval_method"]["analytic"] == {
        "above_rows": 149,
        "f1_and_averages": "delta",
        "roc_auc": "delong",
        "stratified_by": "true class",
    }
    assert "bootstrap" not in large["interval_method"]
    assert large["intervals"]["accuracy"] == small["intervals"]["accuracy"]  # Wilson either way
    assert (large["intervals"]["roc_auc"]["method"], large["intervals"]["f1"]["method"]) == ("delong", "delta")
    assert large["per_class_intervals"]["1"]["f1"]["method"] == "delta"
    at_threshold = classification_metrics(y, pred, _two(score), [0, 1], resamples=200, analytic_above=150)
    assert at_threshold["intervals"]["f1"]["method"] == "bootstrap"
    none = classification_metrics(y, pred, _two(score), [0, 1], resamples=0, analytic_above=0)
    assert set(none["intervals"]) == {"accuracy", "precision", "recall"}
