"""The numpy metrics against scikit-learn on random data with ties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from workers.engine.metrics import classification_metrics, regression_metrics, roc_auc_binary

TIGHT = {"rel": 1e-12, "abs": 1e-12}


def _proba(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    # Few distinct values, so many scores tie.
    raw = rng.integers(1, 5, size=(n, k)).astype(np.float64)
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("positive", [None, 0])
def test_binary_matches_sklearn(seed: int, positive: int | None) -> None:
    rng = np.random.default_rng(seed)
    n = 257
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    proba = _proba(rng, n, 2)
    got = classification_metrics(y_true, y_pred, proba, [0, 1], positive_label=positive)
    pos = 1 if positive is None else positive
    assert got["average"] == "binary"
    assert got["positive_label"] == pos
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), **TIGHT)
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, pos_label=pos), **TIGHT)
    assert got["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label=pos), **TIGHT)
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, pos_label=pos), **TIGHT)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true == pos, proba[:, pos]), **TIGHT)
    assert got["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist()
    assert got["support"] == n


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [3, 5])
def test_multiclass_matches_sklearn(seed: int, k: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = 300
    labels = list(range(k))
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, n))
    proba = _proba(rng, n, k)
    got = classification_metrics(y_true, y_pred, proba, labels)
    kw = {"labels": labels, "average": "macro", "zero_division": 0}
    assert got["average"] == "macro"
    assert got["positive_label"] is None
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), **TIGHT)
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, **kw), **TIGHT)
    assert got["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, **kw), **TIGHT)
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, **kw), **TIGHT)
    expected_auc = skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
    assert got["roc_auc"] == pytest.approx(expected_auc, **TIGHT)
    assert got["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    per = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        entry = got["per_class"][str(label)]
        assert entry["precision"] == pytest.approx(per[0][i], **TIGHT)
        assert entry["recall"] == pytest.approx(per[1][i], **TIGHT)
        assert entry["f1"] == pytest.approx(per[2][i], **TIGHT)
        assert entry["support"] == per[3][i]


def test_string_labels_and_label_order() -> None:
    labels = ["setosa", "versicolor", "virginica"]
    rng = np.random.default_rng(7)
    y_true = np.array(labels, dtype=object)[rng.integers(0, 3, 90)]
    y_pred = np.array(labels, dtype=object)[rng.integers(0, 3, 90)]
    order = ["virginica", "setosa", "versicolor"]
    got = classification_metrics(y_true, y_pred, None, order)
    assert got["labels"] == order
    assert got["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=order).tolist()
    assert got["roc_auc"] is None
    assert list(got["per_class"]) == order


def test_zero_division_is_zero() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 0, 0, 0])  # classes 1 and 2 never predicted
    got = classification_metrics(y_true, y_pred, None, [0, 1, 2])
    kw = {"labels": [0, 1, 2], "average": "macro", "zero_division": 0}
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, **kw), **TIGHT)
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, **kw), **TIGHT)
    assert got["per_class"]["1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_class_absent_from_y_true_gives_no_auc() -> None:
    proba = np.full((4, 3), 1 / 3)
    got = classification_metrics([0, 1, 0, 1], [0, 1, 2, 1], proba, [0, 1, 2])
    assert got["roc_auc"] is None
    binary = classification_metrics([1, 1, 1], [1, 0, 1], np.full((3, 2), 0.5), [0, 1])
    assert binary["roc_auc"] is None


def test_auc_ties_count_half() -> None:
    assert roc_auc_binary(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc_binary(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc_binary(np.array([0, 1]), np.array([np.nan, 0.5])) is None


def test_float_truth_matches_int_labels() -> None:
    got = classification_metrics(np.array([0.0, 1.0, 1.0]), np.array([0, 1, 0]), None, [0, 1])
    assert got["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0, 1], [0, 1], None, [0]), "at least two labels"),
        (([0, 3], [0, 1], None, [0, 1]), "y_true holds values that are not in labels: 3"),
        (([0, 1], [0], None, [0, 1]), "y_pred has 1"),
        (([0, 1], [0, 1], np.zeros((2, 3)), [0, 1]), "proba must have shape"),
        (([], [], None, [0, 1]), "no samples"),
    ],
)
def test_bad_arguments(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(*args)


def test_unknown_positive_label() -> None:
    with pytest.raises(ValueError, match="positive_label 5"):
        classification_metrics([0, 1], [0, 1], None, [0, 1], positive_label=5)


def test_results_are_plain_python() -> None:
    rng = np.random.default_rng(3)
    got = classification_metrics(rng.integers(0, 3, 50), rng.integers(0, 3, 50), _proba(rng, 50, 3), np.arange(3))
    text = json.dumps(got)  # numpy scalars would fail here
    assert json.loads(text)["labels"] == [0, 1, 2]
    assert all(type(v) is int for v in got["labels"])
    reg = regression_metrics(rng.normal(size=10), rng.normal(size=10))
    json.dumps(reg)
    assert {type(reg[k]) for k in ("mae", "rmse", "r2")} == {float}


@pytest.mark.parametrize("seed", range(5))
def test_regression_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(10, 3, 500)
    y_pred = y_true + rng.normal(0, 2, 500)
    got = regression_metrics(y_true, y_pred)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y_true, y_pred)), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y_true, y_pred), rel=1e-12)
    assert got["support"] == 500


def test_regression_constant_truth_leaves_r2_undefined() -> None:
    # scikit-learn's force_finite default reports 1.0 and 0.0 here; without it, R² is not finite.
    y = np.full(5, 2.0)
    assert regression_metrics(y, y)["r2"] is None
    assert regression_metrics(y, y + 1)["r2"] is None
    assert not np.isfinite(skm.r2_score(y, y + 1, force_finite=False))


def test_regression_flattens_column_vectors() -> None:
    got = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0], [4.0]]))
    assert got["mae"] == pytest.approx(1 / 3)
