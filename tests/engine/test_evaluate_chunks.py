"""An evaluation split by row ranges and merged equals the single pass, to the last digit."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.evaluate.partial import PartialEvaluation, evaluate_rows, score_partials, split_rows
from workers.engine.types import DatasetRef, ModelSpec

MakeRef = Callable[..., DatasetRef]
MakeSpec = Callable[[Path | str], ModelSpec]
TIMINGS = ("duration_s",)


def _chunked(model: ModelSpec, data: DatasetRef, chunk_rows: int, round_trip: bool = True, **options) -> dict:
    assert data.rows is not None
    parts = []
    for start, stop in split_rows(data.rows, chunk_rows):
        part = evaluate_rows(model, data, start=start, stop=stop, **options)
        if round_trip:  # what a worker stores and the merge reads back
            buffer = io.BytesIO()
            np.savez(buffer, **part.to_arrays())
            buffer.seek(0)
            with np.load(buffer, allow_pickle=False) as stored:
                part = PartialEvaluation.from_arrays(stored)
        parts.append(part)
    assert len(parts) >= 3
    merged = PartialEvaluation.merge(list(reversed(parts)))  # order of arrival does not matter
    return score_partials(model, data, merged, **options).to_dict()


def _same(chunked: dict, single: dict) -> None:
    for key in TIMINGS:
        chunked.pop(key), single.pop(key)
    assert chunked == single


def test_split_rows_covers_every_row_once() -> None:
    assert split_rows(10, 4) == [(0, 3), (3, 7), (7, 10)]
    assert split_rows(8, 4) == [(0, 4), (4, 8)]
    assert split_rows(0, 4) == []
    for total, size in [(1, 1), (171, 50), (1000, 7)]:
        ranges = split_rows(total, size)
        assert ranges[0][0] == 0 and ranges[-1][1] == total
        assert all(b - a <= size and b > a for a, b in ranges)
        assert all(r1[1] == r2[0] for r1, r2 in zip(ranges, ranges[1:], strict=False))
    with pytest.raises(ValueError):
        split_rows(5, 0)


def test_binary_chunks_merge_to_the_single_result(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    options = {"task": "classification", "batch_size": 16}
    single = evaluate(bc_spec, bc_test_ref, **options).to_dict()
    chunked = _chunked(bc_spec, bc_test_ref, 50, **options)
    assert single["metrics"]["intervals"]["roc_auc"] is not None  # bootstrap intervals are part of the equality
    _same(chunked, single)


def test_analytic_intervals_of_chunks_equal_the_single_pass(
    bc_spec: ModelSpec, bc_test_ref: DatasetRef, fixtures_dir: Path, model_spec: MakeSpec, diabetes_ref: DatasetRef
) -> None:
    # Past the analytic threshold (lowered here to this small table's scale) the merge gets the same
    # DeLong and delta-method intervals as one worker: they are computed once, on every merged row.
    options = {"task": "classification", "batch_size": 16, "analytic_intervals_above": 100}
    single = evaluate(bc_spec, bc_test_ref, **options).to_dict()
    assert single["metrics"]["intervals"]["roc_auc"]["method"] == "delong"
    assert single["metrics"]["intervals"]["f1"]["method"] == "delta"
    _same(_chunked(bc_spec, bc_test_ref, 50, **options), single)
    ridge = model_spec(fixtures_dir / "diabetes_ridge.onnx")
    options = {"task": "regression", "batch_size": 32, "analytic_intervals_above": 100}
    single = evaluate(ridge, diabetes_ref, **options).to_dict()
    assert {r["method"] for r in single["metrics"]["intervals"].values()} == {"normal", "delta"}
    _same(_chunked(ridge, diabetes_ref, 100, **options), single)


def test_confusion_matrices_of_the_parts_add_up(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    single = evaluate(bc_spec, bc_test_ref, task="classification")
    classes = single.labels
    assert classes is not None
    parts = [
        evaluate_rows(bc_spec, bc_test_ref, start=a, stop=b, task="classification") for a, b in split_rows(171, 40)
    ]
    total = sum(p.confusion_counts(classes) for p in parts)
    assert total.tolist() == single.confusion_matrix
    assert sum(p.rows for p in parts) == 171


def test_regression_chunks_merge_to_the_single_result(
    fixtures_dir: Path, model_spec: MakeSpec, diabetes_ref: DatasetRef
) -> None:
    model = model_spec(fixtures_dir / "diabetes_ridge.onnx")
    options = {"task": "regression", "batch_size": 32}
    single = evaluate(model, diabetes_ref, **options).to_dict()
    chunked = _chunked(model, diabetes_ref, 100, **options)
    assert "intervals" in single["metrics"]
    _same(chunked, single)


def test_multiclass_string_labels_merge_exactly(tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    iris = load_iris()
    names = np.array(["setosa", "versicolor", "virginica"])
    est = LogisticRegression(max_iter=500).fit(iris.data, names[iris.target])
    onnx_model = convert_sklearn(
        est,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={type(est): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path = tmp_path / "iris.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    frame = pd.DataFrame(iris.data, columns=["a", "b", "c", "d"])
    frame["species"] = names[iris.target]
    frame.to_csv(tmp_path / "iris.csv", index=False)
    data = make_ref(tmp_path / "iris.csv", "csv", "species")
    options = {"task": "classification", "batch_size": 8}
    single = evaluate(model_spec(path), data, **options).to_dict()
    assert single["labels"] == list(names)
    _same(_chunked(model_spec(path), data, 40, **options), single)
    options["analytic_intervals_above"] = 100  # macro DeLong and delta-method intervals merge exactly too
    single = evaluate(model_spec(path), data, **options).to_dict()
    assert single["metrics"]["intervals"]["roc_auc"]["method"] == "delong"
    assert single["metrics"]["intervals"]["f1"]["method"] == "delta"
    _same(_chunked(model_spec(path), data, 40, **options), single)


def test_missing_values_are_counted_across_parts(
    tmp_path: Path, bc_spec: ModelSpec, fixtures_dir: Path, make_ref: MakeRef
) -> None:
    frame = pd.read_csv(fixtures_dir / "breast_cancer_test.csv")
    feature = frame.columns[0]
    frame.loc[[10, 100, 160], feature] = np.nan
    frame.to_csv(tmp_path / "holes.csv", index=False)
    data = make_ref(tmp_path / "holes.csv", "csv", "diagnosis")
    with pytest.raises(EngineError) as single:
        evaluate(bc_spec, data, task="classification")
    with pytest.raises(EngineError) as chunked:
        _chunked(bc_spec, data, 50, task="classification")
    assert str(chunked.value) == str(single.value)
    assert "3 missing values (first in data row 11)" in str(chunked.value)


def test_ranges_that_do_not_meet_are_refused(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    a = evaluate_rows(bc_spec, bc_test_ref, start=0, stop=50, task="classification")
    c = evaluate_rows(bc_spec, bc_test_ref, start=100, stop=171, task="classification")
    with pytest.raises(ValueError, match="do not meet"):
        PartialEvaluation.merge([a, c])
