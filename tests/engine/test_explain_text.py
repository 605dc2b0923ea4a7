"""Text explanations: token attributions of a trained bag-of-words model against its exact Shapley values and shap."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shap

from workers.engine.errors import EngineError
from workers.engine.explain.pipeline import ExplainRequest, run_explanation
from workers.engine.types import DatasetRef, ModelSpec

ROOT = Path(__file__).resolve().parents[2]


def _build(tmp_path: Path) -> dict:
    spec = importlib.util.spec_from_file_location("build_text_model", ROOT / "scripts" / "build_text_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    return _build(tmp_path_factory.mktemp("text"))


def _explain(built: dict, **request) -> dict:
    data = DatasetRef(
        path=str(built["csv"]), format="csv", sha256="reviews", columns=("review", "sentiment"),
        label_column="sentiment", rows=400,
    )  # fmt: skip
    model = ModelSpec(path=str(built["onnx"]), format="onnx", sha256="sentiment")
    return run_explanation(
        model, data, ExplainRequest(method="kernel_shap", **request), processing=built["processing"],
        class_labels=["negative", "positive"], tokenizer_path=str(built["tokenizer"]),
    )  # fmt: skip


def test_token_attributions_are_the_exact_shapley_values_of_the_trained_model(built):
    result = _explain(built, method_params={"nsamples": 256, "seed": 1}, rows={"indices": [0, 3, 7]}, global_rows=10)
    frame = pd.read_csv(built["csv"])
    clf, vectorizer, vocab = built["classifier"], built["vectorizer"], built["vocab"]
    coef = dict(zip(vectorizer.get_feature_names_out(), clf.coef_[0], strict=True))
    proba = clf.predict_proba(vectorizer.transform(frame["review"]))
    assert result["modality"] == "text" and result["rows"] == 10
    for row in result["explained"]:
        text = frame["review"][row["row"]]
        assert row["text"] == text and row["features"] == text.lower().split()
        # The model's logits are +-(w.x + b)/2: its softmax is scikit-learn's probability.
        sign = 1.0 if row["target"] == "positive" else -1.0
        target = int(sign > 0)
        assert 1 / (1 + np.exp(-2 * row["output"])) == pytest.approx(proba[row["row"], target], abs=1e-12)
        # Additive in the tokens: the exact Shapley value of a token is its word's coefficient, halved, for the
        # explained class (the padding token that replaces it adds nothing); the [CLS] token carries the intercept.
        expected = [sign * coef[t] / 2 for t in row["features"]]
        np.testing.assert_allclose(row["values"], expected, rtol=0, atol=1e-9)
        assert row["base_value"] == pytest.approx(sign * clf.intercept_[0] / 2, abs=1e-12)
        assert row["feature_values"] == list(range(1, len(row["features"]) + 1))  # positions after [CLS]
    assert result["trust"]["scores"]["additivity_error"] < 1e-9
    assert result["trust"]["flags"] == []
    # Global importance per distinct token: sentiment words come first, every |value| counted once per occurrence.
    top = result["features"][:5]
    assert set(top) <= set(vocab) and all(t not in ("the", "a", "it", "[PAD]", "[CLS]") for t in top)
    assert result["budget"]["model_rows"] > 0


def test_token_attributions_agree_with_shap_kernel_explainer(built):
    """shap's KernelExplainer on the same row, with the padding token for a left-out token, run directly."""
    import onnxruntime as ort

    from workers.engine.processing import parse_processing_spec, prepare_text
    from workers.engine.processing.text import load_tokenizer

    row = 5
    result = _explain(built, method_params={"nsamples": 512, "seed": 0}, rows={"indices": [row]}, global_rows=0)
    (explained,) = result["explained"]
    text = pd.read_csv(built["csv"])["review"][row]
    spec = parse_processing_spec(built["processing"]).input
    encoded = prepare_text([text], load_tokenizer(built["tokenizer"]), spec)
    ids, mask = encoded["input_ids"][0], encoded["attention_mask"][0]
    at = np.flatnonzero(mask)[1:]  # the tokens after [CLS]
    session = ort.InferenceSession(str(built["onnx"]))
    target = 1 if explained["target"] == "positive" else 0

    def f(z: np.ndarray) -> np.ndarray:
        batch = np.repeat(ids[None], len(z), axis=0)
        batch[:, at] = np.where(z > 0.5, ids[at], 0)
        logits = session.run(None, {"input_ids": batch, "attention_mask": np.repeat(mask[None], len(z), axis=0)})[0]
        return logits[:, target]

    reference = shap.KernelExplainer(f, np.zeros((1, len(at)))).shap_values(np.ones((1, len(at))), nsamples=512)
    np.testing.assert_allclose(explained["values"], np.asarray(reference)[0], rtol=0, atol=1e-8)


def test_text_rows_cannot_be_chosen_by_a_column(built):
    with pytest.raises(EngineError, match="choose rows by index, prediction or misclassification"):
        _explain(built, rows={"filter": "column_value", "column": "review", "value": "x"}, global_rows=0)
    with pytest.raises(EngineError, match="text explanations run kernel_shap over tokens; not lime"):
        run_explanation(
            ModelSpec(path=str(built["onnx"]), format="onnx", sha256="s"),
            DatasetRef(path=str(built["csv"]), format="csv", sha256="r", columns=("review", "sentiment")),
            ExplainRequest(method="lime"), processing=built["processing"], tokenizer_path=str(built["tokenizer"]),
        )  # fmt: skip
