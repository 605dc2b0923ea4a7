"""Every metric's interval, redrawn independently: Wilson against scipy, the bootstrap against scikit-learn.

The bootstrap is redrawn here from the recipe the result records (numpy's
default_rng(seed), per resample a draw per true class in label order) and
each resample is scored by scikit-learn itself, so the intervals must agree
to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from workers.engine.metrics import classification_metrics, regression_metrics
from workers.engine.metrics.intervals import wilson


@pytest.mark.parametrize(("k", "n"), [(38, 50), (0, 12), (12, 12), (411, 569), (3, 1000)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson(k, n)
    assert low == pytest.approx(ci.low, abs=1e-12)
    assert high == pytest.approx(ci.high, abs=1e-12)


def test_accuracy_on_50_rows_carries_its_interval() -> None:
    y_true = np.array([1] * 25 + [0] * 25)
    y_pred = y_true.copy()
    y_pred[:12] = 0  # 38 of 50 right: 0.76
    got = classification_metrics(y_true, y_pred, None, [0, 1])
    acc = got["intervals"]["accuracy"]
    assert got["accuracy"] == 0.76
    assert (round(acc["low"], 2), round(acc["high"], 2)) == (0.63, 0.86)
    assert acc["method"] == "wilson" and acc["n"] == 50
    # precision rests on the 13 positive predictions, recall on the 25 positive rows
    assert got["intervals"]["precision"]["n"] == 13
    assert got["intervals"]["recall"]["n"] == 25
    assert got["per_class_intervals"]["0"]["recall"]["n"] == 25


def _redraw(strata: np.ndarray | None, n: int, resamples: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == c) for c in np.unique(strata)]
    draws = []
    for _ in range(resamples):
        draws.append(np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups]))
    return draws


def _percentile(values: list[float]) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _close(record: dict, expected: tuple[float, float]) -> None:
    assert record["method"] == "bootstrap"
    assert (record["low"], record["high"]) == pytest.approx(expected, abs=1e-9)


def test_binary_bootstrap_matches_sklearn_resampling() -> None:
    rng = np.random.default_rng(11)
    n = 120
    y = rng.integers(0, 2, n)
    score = np.round(np.clip(0.35 * y + rng.normal(0.4, 0.25, n), 0, 1), 2)  # rounded: many ties
    pred = (score > 0.5).astype(np.int64)
    proba = np.column_stack([1 - score, score])
    got = classification_metrics(y, pred, proba, [0, 1], resamples=300, seed=5)
    assert got["interval_method"]["bootstrap"] == {
        "resamples": 300,
        "seed": 5,
        "stratified_by": "true class",
        "interval": "percentile",
    }
    draws = _redraw(y, n, 300, 5)
    _close(got["intervals"]["f1"], _percentile([skm.f1_score(y[i], pred[i]) for i in draws]))
    _close(got["intervals"]["roc_auc"], _percentile([skm.roc_auc_score(y[i], score[i]) for i in draws]))
    for metric in ("f1", "roc_auc"):
        record = got["intervals"][metric]
        assert record["low"] <= got[metric] <= record["high"]


def test_multiclass_bootstrap_matches_sklearn_resampling() -> None:
    rng = np.random.default_rng(12)
    n, k = 150, 3
    y = rng.integers(0, k, n)
    raw = rng.random((n, k)) + 0.8 * np.eye(k)[y]
    proba = raw / raw.sum(axis=1, keepdims=True)
    pred = np.where(rng.random(n) < 0.1, (y + 1) % k, proba.argmax(axis=1))
    got = classification_metrics(y, pred, proba, [0, 1, 2], resamples=200, seed=3)
    draws = _redraw(y, n, 200, 3)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        expected = _percentile([fn(y[i], pred[i], average="macro", zero_division=0) for i in draws])
        _close(got["intervals"][name], expected)
    expected_auc = _percentile([skm.roc_auc_score(y[i], proba[i], multi_class="ovr") for i in draws])
    _close(got["intervals"]["roc_auc"], expected_auc)
    per_f1 = _percentile([skm.f1_score(y[i], pred[i], labels=[1], average=None)[0] for i in draws])
    _close(got["per_class_intervals"]["1"]["f1"], per_f1)


def test_regression_bootstrap_matches_sklearn_resampling() -> None:
    rng = np.random.default_rng(13)
    n = 80
    y = rng.normal(5, 2, n)
    pred = y + rng.normal(0, 1, n)
    got = regression_metrics(y, pred, resamples=250, seed=9)
    draws = _redraw(None, n, 250, 9)
    _close(got["intervals"]["mae"], _percentile([skm.mean_absolute_error(y[i], pred[i]) for i in draws]))
    _close(got["intervals"]["rmse"], _percentile([skm.mean_squared_error(y[i], pred[i]) ** 0.5 for i in draws]))
    _close(got["intervals"]["r2"], _percentile([skm.r2_score(y[i], pred[i]) for i in draws]))
    assert got["interval_method"]["bootstrap"]["stratified_by"] is None


def test_large_data_uses_fewer_resamples_and_records_them() -> None:
    rng = np.random.default_rng(1)
    n = 400_000
    y = rng.normal(size=n)
    pred = y + rng.normal(size=n)
    assert "analytic" in regression_metrics(y, pred, resamples=1000)["interval_method"]  # past 100,000 rows
    got = regression_metrics(y, pred, resamples=1000, analytic_above=None)  # the bootstrap kept at any size
    boot = got["interval_method"]["bootstrap"]
    assert boot["requested"] == 1000
    assert 200 <= boot["resamples"] < 1000
    assert got["intervals"]["mae"]["high"] - got["intervals"]["mae"]["low"] < 0.01
