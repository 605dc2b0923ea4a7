"""evaluate(): end to end on the fixtures, against scikit-learn and a direct ONNX Runtime run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn import metrics as skm
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge

from workers.engine.errors import Cancelled, EngineError
from workers.engine.evaluate import RESIDUAL_SAMPLE, evaluate
from workers.engine.types import DatasetRef, ModelSpec

MakeRef = Callable[..., DatasetRef]
MakeSpec = Callable[[Path | str], ModelSpec]


def _run_ort(path: Path | str, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x}), strict=True))


def _export(est, n_features: int, path: Path, **options) -> Path:
    model = convert_sklearn(
        est,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={type(est): options} if options else None,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path.write_bytes(model.SerializeToString())
    return path


# ---------------------------------------------------------- breast cancer (binary)


def test_breast_cancer_matches_direct_onnxruntime(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    result = evaluate(bc_spec, bc_test_ref, task="classification")

    frame = pd.read_csv(bc_test_ref.path)
    x = frame.drop(columns="diagnosis").to_numpy(np.float32)
    y = frame["diagnosis"].to_numpy()
    out = _run_ort(bc_spec.path, x)
    pred, proba = out["label"], out["probabilities"]

    m = result.metrics
    assert result.rows == len(y) == 171
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-12)
    assert m["average"] == "binary" and m["positive_label"] == 1
    assert result.labels == [0, 1]
    assert result.labels_source == "model"
    assert result.confusion_matrix == skm.confusion_matrix(y, pred).tolist()
    assert result.feature_columns == list(frame.columns[:-1])

    doc = json.loads(json.dumps(result.to_dict()))
    assert {
        "task",
        "rows",
        "metrics",
        "labels",
        "confusion_matrix",
        "per_class",
        "backend",
        "batch_size",
        "feature_columns",
        "duration_s",
    } <= set(doc)
    assert "residuals" not in doc
    assert doc["backend"]["backend"] == "onnxruntime"


def test_breast_cancer_agrees_with_the_sklearn_pipeline(
    bc_spec: ModelSpec, bc_test_ref: DatasetRef, fixtures_dir: Path, build_fixtures_module: ModuleType
) -> None:
    # Rebuild the pipeline exactly as the fixture script trained it.
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    full = pd.read_csv(fixtures_dir / "breast_cancer.csv")
    x_all, y_all = full.drop(columns="diagnosis").to_numpy(), full["diagnosis"].to_numpy()
    idx_train, _ = train_test_split(
        np.arange(len(y_all)), test_size=0.3, stratify=y_all, random_state=build_fixtures_module.SEED
    )
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000, random_state=0))])
    pipe.fit(x_all[idx_train], y_all[idx_train])
    test = pd.read_csv(bc_test_ref.path)
    sk_accuracy = pipe.score(test.drop(columns="diagnosis").to_numpy(), test["diagnosis"].to_numpy())

    result = evaluate(bc_spec, bc_test_ref, task="classification", batch_size=64)
    # float32 in ONNX may flip a row sitting on the decision boundary, no more.
    assert abs(result.metrics["accuracy"] - sk_accuracy) * result.rows <= 1 + 1e-9


def test_progress_counts_up_to_total(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    calls: list[tuple[int, int]] = []
    evaluate(bc_spec, bc_test_ref, task="classification", batch_size=50, progress=lambda d, t: calls.append((d, t)))
    # The first report comes after one batch; steps then grow while batches are fast, in whole batches.
    assert calls[0] == (50, 171)
    assert calls[-1] == (171, 171)
    done = [d for d, _ in calls]
    assert done == sorted(set(done))
    assert all(d % 50 == 0 for d in done[:-1])
    assert {t for _, t in calls} == {171}


def test_progress_steps_follow_the_time_a_batch_takes() -> None:
    """A slow model reports after every batch; a fast one in growing steps of batches."""
    from workers.engine.feed import BlockRunner

    class Slow:
        input_specs = ()

        def __init__(self, seconds: float) -> None:
            self.seconds, self.calls = seconds, 0

        def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.calls += 1
            time.sleep(self.seconds)
            return {"y": inputs["x"][:, 0] * 2}

    x = np.arange(40, dtype=np.float32).reshape(20, 2)

    def steps(seconds: float) -> list[int]:
        runner = Slow(seconds)
        calls: list[tuple[int, int]] = []
        out = BlockRunner(runner, 1, None).run({"x": x}, lambda d, t: calls.append((d, t)), done=100, total=120)
        np.testing.assert_array_equal(out["y"], x[:, 0] * 2)
        assert runner.calls == 20
        assert {t for _, t in calls} == {120}
        return [d - 100 for d, _ in calls]

    # 30 ms a batch is over half a step (BlockRunner.STEP_S): one batch a step, as before.
    assert steps(0.03) == list(range(1, 21))
    assert steps(0.0) == [1, 3, 7, 15, 20]


def test_progress_without_known_row_count(bc_spec: ModelSpec, fixtures_dir: Path, make_ref: MakeRef) -> None:
    ref = make_ref(fixtures_dir / "breast_cancer_test.csv", "csv", "diagnosis", rows=False)
    calls: list[tuple[int, int]] = []
    evaluate(bc_spec, ref, task="classification", batch_size=100, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(100, 171), (171, 171)]


def test_cancel_from_progress_stops(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    calls: list[int] = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        evaluate(bc_spec, bc_test_ref, task="classification", batch_size=20, progress=progress)
    # Stopped at the second report, after the first batch and one more step of batches, before the end.
    assert len(calls) == 2 and calls[0] == 20 and 20 < calls[1] < 171 and calls[1] % 20 == 0


def test_feature_count_mismatch(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    features = list(bc_test_ref.columns[:29])
    with pytest.raises(EngineError, match="takes 30 features but 29 feature columns were given") as err:
        evaluate(bc_spec, bc_test_ref, task="classification", feature_columns=features)
    assert err.value.permanent


def test_missing_label_column(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    ref = DatasetRef(bc_test_ref.path, "csv", "", bc_test_ref.columns, label_column="outcome", rows=171)
    with pytest.raises(EngineError, match="label column 'outcome' is not in the data set") as err:
        evaluate(bc_spec, ref, task="classification")
    assert err.value.permanent
    with pytest.raises(EngineError, match="no label column"):
        evaluate(bc_spec, DatasetRef(bc_test_ref.path, "csv", "", bc_test_ref.columns), task="classification")


def test_missing_feature_values(tmp_path: Path, bc_spec: ModelSpec, bc_test_ref: DatasetRef, make_ref: MakeRef) -> None:
    frame = pd.read_csv(bc_test_ref.path)
    frame.loc[[3, 120, 150], "mean_area"] = np.nan
    frame.loc[160, "diagnosis"] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(EngineError) as err:
        evaluate(bc_spec, make_ref(path, "csv", "diagnosis"), task="classification", batch_size=50)
    message = err.value.message
    assert "column 'mean_area' has 3 missing values (first in data row 4)" in message
    assert "label column 'diagnosis' has 1 missing value (first in data row 161)" in message
    assert "cannot take missing inputs" in message


@pytest.mark.parametrize("text", [True, False], ids=["text-labels", "float-labels"])
def test_float_or_text_labels_align_with_int_model(
    tmp_path: Path, bc_spec: ModelSpec, bc_test_ref: DatasetRef, make_ref: MakeRef, text: bool
) -> None:
    frame = pd.read_csv(bc_test_ref.path)
    frame["diagnosis"] = frame["diagnosis"].astype(float)  # written as 0.0 / 1.0
    path = tmp_path / "float_labels.csv"
    frame.to_csv(path, index=False)
    expected = evaluate(bc_spec, bc_test_ref, task="classification").metrics
    labels = ["0", "1"] if text else None  # labels as a JSON form would send them
    got = evaluate(bc_spec, make_ref(path, "csv", "diagnosis"), task="classification", class_labels=labels)
    assert got.metrics == expected
    assert got.labels == [0, 1]


def test_float_label_column_in_parquet(
    tmp_path: Path, bc_spec: ModelSpec, bc_test_ref: DatasetRef, make_ref: MakeRef, pyarrow_parquet: ModuleType
) -> None:
    frame = pd.read_csv(bc_test_ref.path)
    frame["diagnosis"] = frame["diagnosis"].astype(float)
    path = tmp_path / "bc.parquet"
    frame.to_parquet(path, index=False)
    expected = evaluate(bc_spec, bc_test_ref, task="classification").metrics
    got = evaluate(bc_spec, make_ref(path, "parquet", "diagnosis"), task="classification", batch_size=40)
    assert got.metrics == expected


def test_labels_the_model_does_not_know(
    tmp_path: Path, bc_spec: ModelSpec, bc_test_ref: DatasetRef, make_ref: MakeRef
) -> None:
    frame = pd.read_csv(bc_test_ref.path)
    frame["diagnosis"] = np.where(frame["diagnosis"] == 1, "B", "M")
    path = tmp_path / "letters.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(EngineError, match="not integer class labels: 'B', 'M'"):
        evaluate(bc_spec, make_ref(path, "csv", "diagnosis"), task="classification")
    frame["diagnosis"] = np.where(frame["diagnosis"] == "B", 1, 2)
    frame.to_csv(path, index=False)
    calls: list[int] = []
    with pytest.raises(EngineError, match=r"values the model does not know: 2; the model's classes are: 0, 1"):
        evaluate(
            bc_spec,
            make_ref(path, "csv", "diagnosis"),
            task="classification",
            batch_size=50,
            progress=lambda done, total: calls.append(done),
        )
    assert calls == []  # stopped at the first batch, not after reading the whole file


def test_positive_label_choice(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    frame = pd.read_csv(bc_test_ref.path)
    y = frame["diagnosis"].to_numpy()
    pred = _run_ort(bc_spec.path, frame.drop(columns="diagnosis").to_numpy(np.float32))["label"]
    got = evaluate(bc_spec, bc_test_ref, task="classification", positive_label="0").metrics
    assert got["positive_label"] == 0
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label=0), abs=1e-12)


def test_probabilities_only_model(
    tmp_path: Path, bc_spec: ModelSpec, bc_test_ref: DatasetRef, model_spec: MakeSpec
) -> None:
    model = onnx.load(bc_spec.path)
    kept = [o for o in model.graph.output if o.name == "probabilities"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    path = tmp_path / "proba_only.onnx"
    onnx.save(model, str(path))
    expected = evaluate(bc_spec, bc_test_ref, task="classification")
    got = evaluate(model_spec(path), bc_test_ref, task="classification")
    assert got.metrics == expected.metrics
    assert got.confusion_matrix == expected.confusion_matrix


def test_fixed_batch_dimension_is_padded(
    tmp_path: Path, bc_spec: ModelSpec, bc_test_ref: DatasetRef, model_spec: MakeSpec
) -> None:
    model = onnx.load(bc_spec.path)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 16
    path = tmp_path / "fixed16.onnx"
    onnx.save(model, str(path))
    expected = evaluate(bc_spec, bc_test_ref, task="classification")
    got = evaluate(model_spec(path), bc_test_ref, task="classification", batch_size=50)
    assert got.metrics == expected.metrics


def test_two_input_model_is_rejected(tmp_path: Path, bc_test_ref: DatasetRef, model_spec: MakeSpec) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 30]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 30])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "two.onnx"
    onnx.save(model, str(path))
    with pytest.raises(EngineError, match=r"exactly one input.*it takes: a float32\['N', 30\]; b float32"):
        evaluate(model_spec(path), bc_test_ref, task="classification")


def test_unknown_task_and_backend(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    with pytest.raises(EngineError, match="unknown task 'ranking'"):
        evaluate(bc_spec, bc_test_ref, task="ranking")
    with pytest.raises(EngineError, match="unknown backend 'no-such-engine'"):
        evaluate(bc_spec, bc_test_ref, task="classification", backend="no-such-engine")


# ------------------------------------------------------------------ multiclass


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    data = load_iris()
    frame = pd.DataFrame(data.data, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    frame["species"] = data.target
    path = tmp_path_factory.mktemp("iris") / "iris.csv"
    frame.to_csv(path, index=False)
    return path, data.data, data.target


def test_multiclass_matches_sklearn(tmp_path: Path, iris_csv, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    path, x, y = iris_csv
    est = LogisticRegression(max_iter=200, random_state=0).fit(x[::2], y[::2])  # a model that makes mistakes
    onnx_path = _export(est, 4, tmp_path / "iris.onnx", zipmap=False)
    result = evaluate(model_spec(onnx_path), make_ref(path, "csv", "species"), task="classification", batch_size=32)

    out = _run_ort(onnx_path, pd.read_csv(path).drop(columns="species").to_numpy(np.float32))
    pred, proba = out["label"], out["probabilities"]
    m = result.metrics
    assert m["average"] == "macro" and m["positive_label"] is None
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"), abs=1e-9)
    assert result.confusion_matrix == skm.confusion_matrix(y, pred).tolist()
    assert set(result.per_class) == {"0", "1", "2"}


def test_string_labels_with_zipmap(tmp_path: Path, iris_csv, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    path, x, y = iris_csv
    names = np.array(["setosa", "versicolor", "virginica"])
    est = LogisticRegression(max_iter=200, random_state=0).fit(x[::2], names[y[::2]])
    onnx_path = _export(est, 4, tmp_path / "iris_names.onnx")  # default ZipMap output
    frame = pd.read_csv(path)
    frame["species"] = names[frame["species"]]
    named = tmp_path / "iris_names.csv"
    frame.to_csv(named, index=False)

    result = evaluate(model_spec(onnx_path), make_ref(named, "csv", "species"), task="classification")
    pred = est.predict(x.astype(np.float32))
    proba = est.predict_proba(x.astype(np.float32))
    assert result.labels == ["setosa", "versicolor", "virginica"]
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(names[y], pred), abs=1e-12)
    assert result.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(names[y], proba, multi_class="ovr", average="macro"), abs=1e-6
    )


# ------------------------------------------------------------------ regression


def test_diabetes_regression(fixtures_dir: Path, diabetes_ref: DatasetRef, model_spec: MakeSpec) -> None:
    import pyarrow.parquet as pq

    model = model_spec(fixtures_dir / "diabetes_ridge.onnx")
    result = evaluate(model, diabetes_ref, task="regression", batch_size=100)

    frame = pq.read_table(diabetes_ref.path).to_pandas()
    y = frame["progression"].to_numpy()
    pred = _run_ort(model.path, frame.drop(columns="progression").to_numpy(np.float32))["variable"].ravel()
    m = result.metrics
    assert result.rows == 442
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-9)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-9)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), rel=1e-9)
    # ...and with the float64 scikit-learn model, up to float32 rounding.
    ridge = Ridge(alpha=1.0).fit(frame.drop(columns="progression").to_numpy(), y)
    assert m["r2"] == pytest.approx(ridge.score(frame.drop(columns="progression").to_numpy(), y), abs=1e-5)

    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["residuals"]["y_true"] == y.tolist()
    assert len(doc["residuals"]["y_pred"]) == 442
    assert "confusion_matrix" not in doc and "labels" not in doc


def test_residuals_are_sampled(tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2500, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=2500)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["target"] = y
    path = tmp_path / "lin.csv"
    frame.to_csv(path, index=False)
    onnx_path = _export(Ridge().fit(x, y), 3, tmp_path / "lin.onnx")
    ref = make_ref(path, "csv", "target")
    first = evaluate(model_spec(onnx_path), ref, task="regression", batch_size=1000).to_dict()
    second = evaluate(model_spec(onnx_path), ref, task="regression", batch_size=333).to_dict()
    assert len(first["residuals"]["y_true"]) == RESIDUAL_SAMPLE
    assert first["residuals"] == second["residuals"]
    assert first["residuals"]["y_true"][0] == y[0] and first["residuals"]["y_true"][-1] == y[-1]
    assert first["metrics"]["r2"] > 0.99


def test_regression_needs_numeric_labels(tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,target\n1,2.5\n2,high\n")
    onnx_path = _export(Ridge().fit(np.array([[1.0], [2.0]]), [1.0, 2.0]), 1, tmp_path / "r.onnx")
    with pytest.raises(EngineError, match="label column 'target' holds values that are not numbers: 'high'"):
        evaluate(model_spec(onnx_path), make_ref(path, "csv", "target"), task="regression")
