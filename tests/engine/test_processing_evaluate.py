"""evaluate() and processed_batches() with a processing spec: images, tabular and text, end to end."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from scipy.stats import binomtest
from sklearn import metrics as skm
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from tokenizers import Tokenizer, models, pre_tokenizers

from workers.engine.datasets import inspect_dataset
from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.feed import processed_batches
from workers.engine.processing import ProcessingSpec, parse_processing_spec
from workers.engine.types import DatasetRef, ModelSpec

MakeRef = Callable[..., DatasetRef]
MakeSpec = Callable[[Path | str], ModelSpec]


def _onnx(path: Path, nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _linear(path: Path, w: np.ndarray, b: np.ndarray, shape: list, *, flatten: bool = False) -> Path:
    """logits = flatten(x) @ w + b in float64, input named "pixels" or "x"."""
    name = "pixels" if flatten else "x"
    nodes = [helper.make_node("Flatten", ["pixels"], ["x"], axis=1)] if flatten else []
    nodes += [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["logits"])]
    return _onnx(
        path,
        nodes,
        [helper.make_tensor_value_info(name, TensorProto.DOUBLE, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.DOUBLE, [None, w.shape[1]])],
        {"w": w.astype(np.float64), "b": b.astype(np.float64)},
    )


def _spec(doc: dict) -> ProcessingSpec:
    return parse_processing_spec(doc)


# ------------------------------------------------------------ digits images


@pytest.fixture(scope="module")
def digits_case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    images, target = digits.images, digits.target  # 8x8, integer pixels 0..16
    # Pixels / 16 are exact in binary, and so is PNG's copy of 0..16, so the
    # model sees exactly the features scikit-learn was trained and scored on.
    train_x, train_y = images[:1000].reshape(1000, 64) / 16, target[:1000]
    test_images, test_y = images[1000:1300], target[1000:1300]
    clf = LogisticRegression(max_iter=3000).fit(train_x, train_y)
    zip_path = tmp / "digits.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for i, (pixels, label) in enumerate(zip(test_images, test_y, strict=True)):
            buf = io.BytesIO()
            Image.fromarray(pixels.astype(np.uint8), "L").save(buf, "PNG")
            archive.writestr(f"digits/{label}/{i:04d}.png", buf.getvalue())
    info = inspect_dataset(str(zip_path), "imagefolder")
    ref = DatasetRef(str(zip_path), "imagefolder", "", ("image", "label"), "label", info.rows)
    model = _linear(tmp / "digits.onnx", clf.coef_.T, clf.intercept_, [None, 1, 8, 8], flatten=True)
    test_x = test_images.reshape(-1, 64) / 16
    return {"clf": clf, "ref": ref, "model": ModelSpec(str(model), "onnx", "d"), "x": test_x, "y": test_y}


DIGITS_SPEC = {
    "input": {"kind": "image", "color": "gray", "scale": 0.0625, "dtype": "float64", "input_name": "pixels"},
    "output": {"activation": "softmax", "labels": [str(i) for i in range(10)], "top_k": 3},
}


def test_digits_imagefolder_matches_sklearn(digits_case: dict) -> None:
    clf, x, y = digits_case["clf"], digits_case["x"], digits_case["y"]
    result = evaluate(
        digits_case["model"], digits_case["ref"], task="classification", batch_size=64, processing=_spec(DIGITS_SPEC)
    )
    assert result.rows == 300
    assert abs(result.metrics["accuracy"] - clf.score(x, y)) <= 1e-12
    # Images are read class by class; the confusion matrix does not care.
    assert result.confusion_matrix == skm.confusion_matrix(y, clf.predict(x)).tolist()
    assert result.labels == [str(i) for i in range(10)] and result.labels_source == "processing"
    proba = clf.predict_proba(x)
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-9)
    assert result.metrics["top_3_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, proba, k=3), abs=1e-12)
    hits = round(skm.top_k_accuracy_score(y, proba, k=3, normalize=False))
    wilson = binomtest(hits, 300).proportion_ci(method="wilson")
    top = result.metrics["intervals"]["top_3_accuracy"]
    assert (top["low"], top["high"], top["n"]) == (pytest.approx(wilson.low), pytest.approx(wilson.high), 300)
    assert result.feature_columns == ["image"] and result.label_column == "label"


def test_digits_without_label_map_predicts_indices(digits_case: dict) -> None:
    spec = _spec({**DIGITS_SPEC, "output": {"activation": "none"}})
    result = evaluate(digits_case["model"], digits_case["ref"], task="classification", processing=spec)
    assert result.labels == list(range(10))  # indices compared with the folder names read as integers
    assert result.metrics["accuracy"] == pytest.approx(digits_case["clf"].score(digits_case["x"], digits_case["y"]))


def test_processed_batches_feed_the_same_arrays(digits_case: dict) -> None:
    batches = list(
        processed_batches(digits_case["model"], digits_case["ref"], DIGITS_SPEC, batch_size=128, max_rows=200)
    )
    assert [list(b) for b in batches] == [["pixels"], ["pixels"]]
    assert [b["pixels"].shape for b in batches] == [(128, 1, 8, 8), (72, 1, 8, 8)]
    first = np.concatenate([b["pixels"] for b in batches]).reshape(200, 64)
    zero_class = digits_case["x"][digits_case["y"] == 0]
    np.testing.assert_array_equal(first[: len(zero_class)], zero_class)  # class "0" comes first, in file order


# ------------------------------------------------------------------ tabular


def test_tabular_spec_with_scaling_and_sigmoid(
    bc_test_ref: DatasetRef, fixtures_dir: Path, tmp_path: Path, model_spec: MakeSpec
) -> None:
    full = pd.read_csv(fixtures_dir / "breast_cancer.csv")
    features = [c for c in full.columns if c != "diagnosis"]
    scaler = StandardScaler().fit(full[features])
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(full[features]), full["diagnosis"])
    model = model_spec(_linear(tmp_path / "bc.onnx", clf.coef_.T, clf.intercept_, [None, len(features)]))
    spec = _spec(
        {
            "input": {
                "kind": "tabular",
                "feature_columns": features,
                "scaling": {"kind": "standard", "mean": scaler.mean_.tolist(), "std": scaler.scale_.tolist()},
                "dtype": "float64",
            },
            "output": {"activation": "sigmoid", "labels": ["0", "1"]},
        }
    )
    result = evaluate(model, bc_test_ref, task="classification", batch_size=50, processing=spec)
    test = pd.read_csv(bc_test_ref.path)
    x = scaler.transform(test[features])
    assert abs(result.metrics["accuracy"] - clf.score(x, test["diagnosis"])) <= 1e-12
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(test["diagnosis"], clf.decision_function(x)))
    assert result.labels == ["0", "1"]

    batch = next(processed_batches(model, bc_test_ref, spec, batch_size=10))
    np.testing.assert_allclose(batch["x"], x[:10], rtol=0, atol=1e-12)


def test_processed_batches_read_csv_categories_as_written(
    tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec
) -> None:
    # Batches of 2: pandas alone would read "size" as int in one batch and text in the next.
    (tmp_path / "c.csv").write_text("size,x,y\n1,0.5,a\n2,1.5,b\nL,2.5,a\n1,3.5,b\n")
    model = model_spec(_linear(tmp_path / "c.onnx", np.ones((4, 1)), np.zeros(1), [None, 4]))
    spec = {
        "input": {
            "kind": "tabular",
            "feature_columns": ["x", "size"],
            "categories": {"size": [1, 2, "L"]},
            "scaling": {"x": {"mean": 0.5, "std": 2}},
            "dtype": "float64",
        }
    }
    batches = list(processed_batches(model, make_ref(tmp_path / "c.csv", "csv", "y"), spec, batch_size=2))
    np.testing.assert_array_equal(
        np.concatenate([b["x"] for b in batches]),
        [[0, 1, 0, 0], [0.5, 0, 1, 0], [1, 0, 0, 1], [1.5, 1, 0, 0]],
    )
    (first,) = processed_batches(model, make_ref(tmp_path / "c.csv", "csv", "y"), spec, batch_size=3, max_rows=1)
    assert first["x"].shape == (1, 4)


def test_regression_output_spec(tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    frame = pd.DataFrame({"a": np.arange(10.0), "y": 2 * np.arange(10.0) + 1})
    frame.to_csv(tmp_path / "r.csv", index=False)
    model = model_spec(_linear(tmp_path / "r.onnx", np.array([[2.0]]), np.array([1.0]), [None, 1]))
    spec = _spec({"input": {"kind": "tabular", "feature_columns": ["a"], "dtype": "float64"}, "output": {}})
    result = evaluate(model, make_ref(tmp_path / "r.csv", "csv", "y"), task="regression", processing=spec)
    assert result.metrics["r2"] == 1.0
    with pytest.raises(EngineError, match="softmax makes class probabilities"):
        evaluate(
            model,
            make_ref(tmp_path / "r.csv", "csv", "y"),
            task="regression",
            processing=_spec({"output": {"activation": "softmax"}}),
        )


# --------------------------------------------------------------------- text


def _bag_of_words(tmp_path: Path) -> tuple[Path, Path]:
    vocab = {"[PAD]": 0, "[UNK]": 1, "good": 2, "bad": 3, "movie": 4, "very": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    table = np.zeros((len(vocab), 2))
    table[vocab["bad"]], table[vocab["good"]] = [1, 0], [0, 1]
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["vectors"]),
        helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.DOUBLE),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["logits"], keepdims=0),
    ]
    ints = [helper.make_tensor_value_info(n, TensorProto.INT64, [None, None]) for n in ("ids", "mask")]
    out = [helper.make_tensor_value_info("logits", TensorProto.DOUBLE, [None, 2])]
    weights = {"table": table, "axis1": np.array([1], np.int64), "axis2": np.array([2], np.int64)}
    return _onnx(tmp_path / "bow.onnx", nodes, ints, out, weights), tmp_path / "tokenizer.json"


def test_text_classification(tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    model_path, tokenizer = _bag_of_words(tmp_path)
    texts = ["good movie", "bad movie", "very very good", "bad bad good", "movie", "good bad good bad good", "bad"]
    truth = ["pos", "neg", "pos", "pos", "neg", "neg", "neg"]
    # Expected: more "good" than "bad" wins; ties go to the first class. Truncation to 4 tokens
    # drops the last "good" of the sixth row (a tie: neg), so the fourth row is the only mistake.
    expected = ["pos", "neg", "pos", "neg", "neg", "neg", "neg"]
    pd.DataFrame({"review": texts, "sentiment": truth}).to_csv(tmp_path / "t.csv", index=False)
    spec = _spec(
        {
            "input": {
                "kind": "text",
                "text_column": "review",
                "max_length": 4,
                "add_special_tokens": False,
                "input_names": {"input_ids": "ids", "attention_mask": "mask"},
            },
            "output": {"activation": "softmax", "labels": ["neg", "pos"]},
        }
    )
    ref = make_ref(tmp_path / "t.csv", "csv", "sentiment")
    result = evaluate(
        model_spec(model_path), ref, task="classification", batch_size=3, processing=spec, tokenizer_path=str(tokenizer)
    )
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, expected), abs=1e-12)
    assert result.confusion_matrix == skm.confusion_matrix(truth, expected, labels=["neg", "pos"]).tolist()
    with pytest.raises(EngineError, match="no tokenizer.json"):
        evaluate(model_spec(model_path), ref, task="classification", processing=spec)


# ------------------------------------------------------------------- errors


def test_spec_and_data_must_agree(
    digits_case: dict, bc_spec: ModelSpec, bc_test_ref: DatasetRef, tmp_path: Path
) -> None:
    with pytest.raises(EngineError, match="an image data set needs the model's processing spec"):
        evaluate(digits_case["model"], digits_case["ref"], task="classification")
    with pytest.raises(EngineError, match="this data set is csv and the spec's input is image"):
        evaluate(bc_spec, bc_test_ref, task="classification", processing=_spec(DIGITS_SPEC))
    tab = {"kind": "tabular", "feature_columns": list(bc_test_ref.columns[:3])}
    with pytest.raises(EngineError, match="differ from the columns the processing spec reads"):
        evaluate(
            bc_spec,
            bc_test_ref,
            task="classification",
            feature_columns=list(bc_test_ref.columns[:2]),
            processing=_spec({"input": tab}),
        )
    with pytest.raises(EngineError, match="takes 30 columns but the processing spec makes 3"):
        evaluate(bc_spec, bc_test_ref, task="classification", processing=_spec({"input": {**tab, "dtype": "float32"}}))
    with pytest.raises(EngineError, match="takes float32 but the processing spec makes float64"):
        evaluate(bc_spec, bc_test_ref, task="classification", processing=_spec({"input": {**tab, "dtype": "float64"}}))
    with pytest.raises(EngineError, match="do not pass class_labels too"):
        evaluate(
            bc_spec,
            bc_test_ref,
            task="classification",
            class_labels=[0, 1],
            processing=_spec({"output": {"labels": ["a", "b"]}}),
        )
    detection = {"detection": {"boxes_output": "b", "scores_output": "s"}}
    with pytest.raises(EngineError, match="object-detection outputs cannot be scored"):
        evaluate(bc_spec, bc_test_ref, task="classification", processing=_spec({"output": detection}))
    with pytest.raises(EngineError, match="the processing spec feeds input 'nope'"):
        evaluate(
            digits_case["model"],
            digits_case["ref"],
            task="classification",
            processing=_spec({"input": {**DIGITS_SPEC["input"], "input_name": "nope"}}),
        )


def test_output_spec_alone_on_a_plain_model(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    # The fixture already outputs probabilities: read them through the spec with a label map and a threshold.
    plain = evaluate(bc_spec, bc_test_ref, task="classification")
    spec = _spec({"output": {"output_name": "probabilities", "labels": ["0", "1"], "threshold": 0.5}})
    processed = evaluate(bc_spec, bc_test_ref, task="classification", processing=spec)
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert processed.metrics[key] == pytest.approx(plain.metrics[key], abs=1e-12)
    assert processed.labels == ["0", "1"] and processed.labels_source == "processing"
