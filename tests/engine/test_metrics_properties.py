"""Properties of the numpy metrics on random inputs (hypothesis), checked against scikit-learn.

Point estimates only (``resamples=0``): the intervals have tests of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from workers.engine.metrics import classification_metrics, regression_metrics

TIGHT = {"rel": 1e-9, "abs": 1e-12}
POINT = ("accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix", "per_class", "support")


@st.composite
def classified(draw: st.DrawFn) -> dict[str, Any]:
    """Labels, truth, predictions and class scores (rows summing to 1, with ties) for 1..60 rows."""
    k = draw(st.integers(2, 5))
    n = draw(st.integers(1, 60))
    labels = draw(st.sampled_from([list(range(k)), [f"c{i}" for i in range(k)], list(range(10, 10 + 3 * k, 3))]))
    t = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    p = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    # Small integer weights: many tied scores, as a real classifier's rounded outputs give.
    weights = draw(hnp.arrays(np.float64, (n, k), elements=st.integers(1, 4).map(float)))
    proba = weights / weights.sum(axis=1, keepdims=True)
    as_labels = np.array(labels)  # int or str dtype, as a data set's label column reads
    return {"labels": labels, "t": t, "p": p, "y_true": as_labels[t], "y_pred": as_labels[p], "proba": proba}


def _score(case: dict[str, Any], order: np.ndarray | None = None) -> dict[str, Any]:
    rows = slice(None) if order is None else order
    return classification_metrics(
        case["y_true"][rows].tolist(), case["y_pred"][rows].tolist(), case["proba"][rows], case["labels"], resamples=0
    )


@given(case=classified())
def test_counts_and_ranges(case: dict[str, Any]) -> None:
    got = _score(case)
    n, k = len(case["t"]), len(case["labels"])
    cm = np.array(got["confusion_matrix"])
    assert cm.shape == (k, k) and cm.sum() == n == got["support"]
    assert cm.sum(axis=1).tolist() == [got["per_class"][str(label)]["support"] for label in case["labels"]]
    assert cm.sum(axis=1).tolist() == np.bincount(case["t"], minlength=k).tolist()  # rows are the truth
    assert cm.sum(axis=0).tolist() == np.bincount(case["p"], minlength=k).tolist()  # columns the predictions
    assert got["accuracy"] == pytest.approx(np.trace(cm) / n, **TIGHT)
    for name in ("accuracy", "precision", "recall", "f1"):
        assert 0.0 <= got[name] <= 1.0, name
    for entry in got["per_class"].values():
        assert all(0.0 <= entry[m] <= 1.0 for m in ("precision", "recall", "f1"))
    assert got["roc_auc"] is None or 0.0 <= got["roc_auc"] <= 1.0
    if np.array_equal(case["t"], case["p"]):
        assert got["accuracy"] == 1.0


@given(case=classified(), data=st.data())
def test_row_order_does_not_matter(case: dict[str, Any], data: st.DataObject) -> None:
    order = np.array(data.draw(st.permutations(range(len(case["t"])))), dtype=np.int64)
    before, after = _score(case), _score(case, order)
    for name in POINT:
        if isinstance(before[name], float):
            assert after[name] == pytest.approx(before[name], **TIGHT), name
        else:
            assert after[name] == before[name], name


@given(case=classified())
def test_agrees_with_scikit_learn(case: dict[str, Any]) -> None:
    got = _score(case)
    labels, y_true, y_pred, proba = case["labels"], case["y_true"], case["y_pred"], case["proba"]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), **TIGHT)
    assert got["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    if len(labels) == 2:
        pos = sorted(labels)[-1]  # the default positive label
        kw: dict[str, Any] = {"pos_label": pos, "zero_division": 0}
        column = labels.index(pos)
        both = len(set(y_true.tolist())) == 2
        expected_auc = skm.roc_auc_score(y_true == pos, proba[:, column]) if both else None
    else:
        # Macro over the labels present in the truth or the predictions: scikit-learn's default.
        kw = {"average": "macro", "zero_division": 0}
        every_class = len(set(y_true.tolist())) == len(labels)
        expected_auc = (
            skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels) if every_class else None
        )
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, **kw), **TIGHT)
    assert got["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, **kw), **TIGHT)
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, **kw), **TIGHT)
    if expected_auc is None:
        assert got["roc_auc"] is None  # a class without rows has no ROC curve
    else:
        assert got["roc_auc"] == pytest.approx(expected_auc, **TIGHT)


# Thousandths in [-1000, 1000]: wide enough for outliers, coarse enough that R²'s sum of squares about
# the mean is not lost to rounding (where any two implementations would disagree).
values = st.integers(-(10**6), 10**6).map(lambda i: i / 1000)


@st.composite
def regressed(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    y_true = draw(hnp.arrays(np.float64, n, elements=values))
    y_pred = draw(hnp.arrays(np.float64, n, elements=values))
    return y_true, y_pred


@given(pair=regressed())
def test_regression_agrees_with_scikit_learn(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = pair
    got = regression_metrics(y_true, y_pred, resamples=0)
    assert got["support"] == y_true.size
    assert got["mae"] >= 0.0 and got["rmse"] >= got["mae"] - 1e-9 * max(1.0, got["mae"])  # RMSE ≥ MAE
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), rel=1e-9, abs=1e-9)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y_true, y_pred)), rel=1e-9, abs=1e-9)
    if np.all(y_true == y_true[0]):
        assert got["r2"] is None and "r2" in got["flags"]
    else:
        expected = skm.r2_score(y_true, y_pred)
        assert got["r2"] == pytest.approx(expected, rel=1e-6, abs=1e-6 * max(1.0, abs(expected)))
        assert got["r2"] <= 1.0
    perfect = regression_metrics(y_true, y_true, resamples=0)
    assert perfect["mae"] == 0.0 and perfect["rmse"] == 0.0
    assert perfect["r2"] in (1.0, None)


@given(pair=regressed(), data=st.data())
def test_regression_row_order_does_not_matter(pair: tuple[np.ndarray, np.ndarray], data: st.DataObject) -> None:
    y_true, y_pred = pair
    order = np.array(data.draw(st.permutations(range(y_true.size))), dtype=np.int64)
    before = regression_metrics(y_true, y_pred, resamples=0)
    after = regression_metrics(y_true[order], y_pred[order], resamples=0)
    for name in ("mae", "rmse"):
        assert after[name] == pytest.approx(before[name], rel=1e-9, abs=1e-9)
    if before["r2"] is None:
        assert after["r2"] is None
    else:
        assert after["r2"] == pytest.approx(before["r2"], rel=1e-6, abs=1e-6 * max(1.0, abs(before["r2"])))
