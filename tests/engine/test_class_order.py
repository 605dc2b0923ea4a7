"""Class order: each probability column is scored as the class it belongs to, in every output form.

The models are scikit-learn classifiers exported by skl2onnx whose declared
class labels are deliberately not sorted (``["yes", "no"]``, ``[2, 0, 1]``),
so a column read by position rather than by its key scores the wrong class.
Every number is checked against scikit-learn on the same probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.types import DatasetRef, ModelSpec

MakeRef = Callable[..., DatasetRef]
MakeSpec = Callable[[Path | str], ModelSpec]

# Declared label orders that are not sorted; the first class is class 0 of the fit.
LABELS = {
    ("binary", "str"): ["yes", "no"],
    ("binary", "int"): [1, 0],
    ("multiclass", "str"): ["pear", "apple", "fig"],
    ("multiclass", "int"): [2, 0, 1],
}


def _fit(n_classes: int, declared: list) -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    score = x[:, 0] + 0.7 * x[:, 1] + rng.normal(scale=0.8, size=300)
    cut = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    codes = np.searchsorted(cut, score)
    clf = LogisticRegression(max_iter=500).fit(x, codes)
    # Relabel the fitted classes: column i of predict_proba is declared[i].
    clf.classes_ = np.array(declared, dtype=object if isinstance(declared[0], str) else np.int64)
    truth = clf.classes_[codes]
    return clf, x, truth


def _export(clf: LogisticRegression, path: Path, form: str) -> Path:
    model = convert_sklearn(
        clf,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": form == "zipmap"}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    if form == "tensor-alone":
        label_output = model.graph.output[0]
        assert label_output.type.tensor_type.elem_type in (onnx.TensorProto.STRING, onnx.TensorProto.INT64)
        model.graph.output.remove(label_output)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("form", ["zipmap", "tensor-and-label", "tensor-alone"])
@pytest.mark.parametrize("kind", ["str", "int"])
@pytest.mark.parametrize("problem", ["binary", "multiclass"])
def test_columns_read_as_their_classes(
    tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec, form: str, kind: str, problem: str
) -> None:
    declared = LABELS[(problem, kind)]
    clf, x, truth = _fit(len(declared), declared)
    model = _export(clf, tmp_path / "m.onnx", form)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["y"] = truth
    frame.to_csv(tmp_path / "d.csv", index=False)

    got = evaluate(model_spec(model), make_ref(tmp_path / "d.csv", "csv", "y"), task="classification", batch_size=64)

    proba = clf.predict_proba(x)  # columns in declared order
    predicted = clf.classes_[np.argmax(proba, axis=1)]
    m = got.metrics
    assert got.labels == declared
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    if problem == "binary":
        positive = sorted(declared)[-1]
        column = declared.index(positive)
        expected_auc = skm.roc_auc_score(truth == positive, proba[:, column])
        assert m["positive_label"] == positive
        assert m["precision"] == pytest.approx(skm.precision_score(truth, predicted, pos_label=positive))
    else:
        order = np.argsort(np.array(declared, dtype=object))
        expected_auc = skm.roc_auc_score(truth, proba[:, order], multi_class="ovr", labels=sorted(declared))
        assert m["f1"] == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert expected_auc > 0.75  # a usable model: reading columns swapped would score far below
    assert m["roc_auc"] == pytest.approx(expected_auc, abs=1e-6)
    assert got.confusion_matrix == skm.confusion_matrix(truth, predicted, labels=declared).tolist()


@pytest.mark.parametrize("form", ["zipmap", "tensor-and-label"])
def test_class_labels_parameter_in_another_order_reads_columns_by_label(
    tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec, form: str
) -> None:
    declared = ["yes", "no"]
    clf, x, truth = _fit(2, declared)
    model = _export(clf, tmp_path / "m.onnx", form)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["y"] = truth
    frame.to_csv(tmp_path / "d.csv", index=False)
    ref = make_ref(tmp_path / "d.csv", "csv", "y")

    got = evaluate(model_spec(model), ref, task="classification", class_labels=["no", "yes"])

    proba = clf.predict_proba(x)
    assert got.labels == ["no", "yes"]
    assert got.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "yes", proba[:, 0]), abs=1e-6)
    with pytest.raises(EngineError, match="the model declares its classes"):
        evaluate(model_spec(model), ref, task="classification", class_labels=["no", "maybe"])
