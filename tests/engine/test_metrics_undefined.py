"""Undefined is not zero: metrics that are 0/0 or degenerate say so, and macro averages follow scikit-learn."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.metrics import classification_metrics, regression_metrics
from workers.engine.types import DatasetRef, ModelSpec

MakeRef = Callable[..., DatasetRef]


def test_constant_target_leaves_r2_undefined() -> None:
    y = np.full(20, 2.0)
    pred = y + np.linspace(-1, 1, 20)
    got = regression_metrics(y, pred)
    assert got["r2"] is None
    assert "constant" in got["flags"]["r2"]
    # scikit-learn agrees once it is not asked to force a finite number.
    assert not np.isfinite(skm.r2_score(y, pred, force_finite=False))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    perfect = regression_metrics(y, y)
    assert perfect["r2"] is None
    assert regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]).get("flags", {}) == {}


def test_no_positive_predictions_flags_precision() -> None:
    y_true = np.array([0, 1, 0, 1, 1, 0])
    y_pred = np.zeros(6, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skm.precision_score(y_true, y_pred, zero_division=0)
    got = classification_metrics(y_true, y_pred, None, [0, 1])
    assert got["precision"] == expected == 0.0
    assert "no row was predicted 1" in got["flags"]["precision"]
    assert "recall" not in got["flags"]
    healthy = classification_metrics([0, 1, 0, 1], [0, 1, 1, 1], None, [0, 1])
    assert "precision" not in healthy.get("flags", {})


def test_macro_average_over_labels_present_in_truth_or_predictions() -> None:
    # Class 3 occurs neither in the truth nor in the predictions.
    y_true = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 0, 2])
    got = classification_metrics(y_true, y_pred, None, [0, 1, 2, 3])
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[name] == pytest.approx(fn(y_true, y_pred, average="macro"), rel=1e-12)
    assert got["absent_classes"] == [3]
    assert got["averaged_over"] == [0, 1, 2]
    assert "3" in got["per_class"]  # still listed, with support 0
    assert "left out of the macro averages: 3" in got["flags"]["average"]
    proba = np.tile([0.5, 0.3, 0.1, 0.1], (8, 1))
    with_scores = classification_metrics(y_true, y_pred, proba, [0, 1, 2, 3])
    assert with_scores["roc_auc"] is None
    assert "no row is labelled 3" in with_scores["flags"]["roc_auc"]


def test_infinite_feature_values_are_invalid_input(
    tmp_path: Path, bc_spec: ModelSpec, bc_test_ref: DatasetRef, make_ref: MakeRef
) -> None:
    frame = pd.read_csv(bc_test_ref.path)
    frame.loc[[5, 77], "mean_area"] = np.inf
    frame.loc[90, "mean_radius"] = -np.inf
    path = tmp_path / "inf.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(EngineError) as err:
        evaluate(bc_spec, make_ref(path, "csv", "diagnosis"), task="classification", batch_size=50)
    message = err.value.message
    assert "column 'mean_area' has 2 infinite values (first in data row 6)" in message
    assert "column 'mean_radius' has 1 infinite value (first in data row 91)" in message
    assert err.value.permanent


def test_infinite_regression_features(
    tmp_path: Path, diabetes_ref: DatasetRef, make_ref: MakeRef, model_spec: Callable[[Path | str], ModelSpec]
) -> None:
    frame = pd.read_parquet(diabetes_ref.path)
    column = frame.columns[0]
    frame.loc[3, column] = np.inf
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = model_spec(Path(diabetes_ref.path).with_name("diabetes_ridge.onnx"))
    with pytest.raises(EngineError, match=f"column '{column}' has 1 infinite value \\(first in data row 4\\)"):
        evaluate(model, make_ref(tmp_path / "d.csv", "csv", "progression"), task="regression")
