"""Curves, calibration, threshold sweep and slices of an evaluation, against scikit-learn run directly."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from workers.engine.evaluate import evaluate
from workers.engine.evaluate.partial import PartialEvaluation, evaluate_rows, score_partials, split_rows
from workers.engine.metrics.curves import binary_curves, calibration, threshold_sweep
from workers.engine.metrics.slices import MIN_SLICE_ROWS, slice_codes
from workers.engine.types import DatasetRef, ModelSpec

MakeRef = Callable[..., DatasetRef]
MakeSpec = Callable[[Path | str], ModelSpec]


def _scores(spec: ModelSpec, frame: pd.DataFrame, features: list[str]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(spec.path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    x = frame[features].to_numpy(np.float32)
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x}), strict=True))


@pytest.fixture
def bc_with_site(tmp_path: Path, fixtures_dir: Path, make_ref: MakeRef) -> tuple[DatasetRef, pd.DataFrame, list[str]]:
    """The breast-cancer test set with a text column the model does not take, to slice by."""
    frame = pd.read_csv(fixtures_dir / "breast_cancer_test.csv")
    features = [c for c in frame.columns if c != "diagnosis"]
    frame["site"] = np.array(["north", "south", "east", "west"] * 50)[: len(frame)]
    frame.loc[frame.index % 17 == 0, "site"] = "far"  # a small slice
    path = tmp_path / "bc_site.csv"
    frame.to_csv(path, index=False)
    return make_ref(path, "csv", "diagnosis"), frame, features


def test_binary_curves_equal_scikit_learns(bc_spec: ModelSpec, bc_with_site) -> None:
    ref, frame, features = bc_with_site
    result = evaluate(bc_spec, ref, task="classification", feature_columns=features).to_dict()
    proba = _scores(bc_spec, frame, features)["probabilities"][:, 1].astype(np.float64)
    y = frame["diagnosis"].to_numpy() == 1

    curves = result["curves"]
    assert curves["average"] == "binary" and len(curves["classes"]) == 1
    (positive,) = curves["classes"]
    assert positive["label"] == 1 == result["metrics"]["positive_label"]
    fpr, tpr, thr = skm.roc_curve(y, proba, drop_intermediate=False)
    assert positive["points"] == fpr.size  # 171 rows: every point kept
    np.testing.assert_allclose(positive["roc"]["fpr"], fpr, atol=1e-12)
    np.testing.assert_allclose(positive["roc"]["tpr"], tpr, atol=1e-12)
    np.testing.assert_allclose(positive["roc"]["thresholds"][1:], thr[1:], rtol=1e-6)
    assert positive["roc"]["auc"] == pytest.approx(skm.roc_auc_score(y, proba), abs=1e-12)
    assert positive["roc"]["auc"] == pytest.approx(result["metrics"]["roc_auc"], abs=1e-12)
    precision, recall, pr_thr = skm.precision_recall_curve(y, proba)
    np.testing.assert_allclose(positive["pr"]["precision"], precision, atol=1e-12)
    np.testing.assert_allclose(positive["pr"]["recall"], recall, atol=1e-12)
    np.testing.assert_allclose(positive["pr"]["thresholds"][:-1], pr_thr, rtol=1e-6)
    assert positive["pr"]["average_precision"] == pytest.approx(skm.average_precision_score(y, proba), abs=1e-12)

    cal = result["calibration"]
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(cal["fraction_positive"], prob_true, atol=1e-12)
    np.testing.assert_allclose(cal["mean_predicted"], prob_pred, atol=1e-12)
    assert sum(cal["counts"]) == len(frame)
    assert cal["brier"] == pytest.approx(skm.brier_score_loss(y, proba), abs=1e-12)
    ece = sum(n / len(y) * abs(a - b) for n, a, b in zip(cal["counts"], prob_true, prob_pred, strict=True))
    assert cal["ece"] == pytest.approx(ece, abs=1e-12)

    sweep = result["threshold_sweep"]
    assert sweep["thresholds"] == sorted(sweep["thresholds"])
    for i in (0, len(sweep["thresholds"]) // 2, -1):
        chosen = proba >= sweep["thresholds"][i]
        assert sweep["precision"][i] == pytest.approx(skm.precision_score(y, chosen, zero_division=0), abs=1e-12)
        assert sweep["recall"][i] == pytest.approx(skm.recall_score(y, chosen), abs=1e-12)
        assert sweep["f1"][i] == pytest.approx(skm.f1_score(y, chosen), abs=1e-12)
        assert sweep["fpr"][i] == pytest.approx(np.mean(chosen[~y]), abs=1e-12)
    best = sweep["best_f1"]
    assert best["f1"] == pytest.approx(max(skm.f1_score(y, proba >= t) for t in np.unique(proba)), abs=1e-12)
    # Logistic regression predicts the positive class where its probability passes one half:
    # the operating point is the model's own precision and recall, at threshold 0.5.
    operating = sweep["operating"]
    assert operating["threshold"] == 0.5
    assert operating["precision"] == pytest.approx(result["metrics"]["precision"], abs=1e-12)
    assert operating["recall"] == pytest.approx(result["metrics"]["recall"], abs=1e-12)


def test_slices_by_text_and_by_quantile_equal_scikit_learn_on_each_subset(bc_spec: ModelSpec, bc_with_site) -> None:
    ref, frame, features = bc_with_site
    result = evaluate(
        bc_spec, ref, task="classification", feature_columns=features, slice_columns=["site", "mean_radius"]
    ).to_dict()
    out = _scores(bc_spec, frame, features)
    pred, proba = out["label"], out["probabilities"][:, 1]
    y = frame["diagnosis"].to_numpy()

    site, radius = result["slices"]
    assert site["column"] == "site" and site["binned"] is None
    assert [s["slice"] for s in site["slices"]] == sorted(frame["site"].unique())
    for row in site["slices"]:
        mask = (frame["site"] == row["slice"]).to_numpy()
        assert row["rows"] == mask.sum()
        assert row["small"] == (mask.sum() < MIN_SLICE_ROWS)
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(y[mask], pred[mask]), abs=1e-12)
        assert row["precision"] == pytest.approx(skm.precision_score(y[mask], pred[mask], zero_division=0), abs=1e-12)
        assert row["recall"] == pytest.approx(skm.recall_score(y[mask], pred[mask], zero_division=0), abs=1e-12)
        assert row["f1"] == pytest.approx(skm.f1_score(y[mask], pred[mask], zero_division=0), abs=1e-12)
        assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y[mask], proba[mask]), abs=1e-12)
    assert [s["small"] for s in site["slices"] if s["slice"] == "far"] == [True]

    assert radius["binned"] == "quantiles"
    edges = np.quantile(frame["mean_radius"], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(radius["edges"], edges)
    assert len(radius["slices"]) == 4 and sum(s["rows"] for s in radius["slices"]) == len(frame)
    for i, row in enumerate(radius["slices"]):
        v = frame["mean_radius"].to_numpy()
        mask = (v >= edges[i]) & ((v < edges[i + 1]) if i < 3 else (v <= edges[i + 1]))
        assert row["rows"] == mask.sum()
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(y[mask], pred[mask]), abs=1e-12)
        assert row["slice"].startswith("[") and row["slice"].endswith("]" if i == 3 else ")")


def test_chunked_curves_and_slices_equal_the_single_pass(bc_spec: ModelSpec, bc_with_site) -> None:
    ref, _, features = bc_with_site
    options = {"task": "classification", "feature_columns": features, "slice_columns": ["site", "mean_radius"]}
    single = evaluate(bc_spec, ref, **options).to_dict()
    parts = []
    for start, stop in split_rows(171, 50):
        part = evaluate_rows(bc_spec, ref, start=start, stop=stop, **options)
        buffer = io.BytesIO()
        np.savez(buffer, **part.to_arrays())
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as stored:
            parts.append(PartialEvaluation.from_arrays(stored))
    chunked = score_partials(bc_spec, ref, PartialEvaluation.merge(parts), **options).to_dict()
    for key in ("curves", "calibration", "threshold_sweep", "slices", "metrics"):
        assert chunked[key] == single[key], key


def test_multiclass_one_vs_rest_curves_and_top_label_calibration(
    tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec
) -> None:
    iris = load_iris()
    est = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    onnx_model = convert_sklearn(
        est,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={type(est): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (tmp_path / "iris.onnx").write_bytes(onnx_model.SerializeToString())
    frame = pd.DataFrame(iris.data, columns=["a", "b", "c", "d"])
    frame["species"] = iris.target
    frame.to_csv(tmp_path / "iris.csv", index=False)
    spec = model_spec(tmp_path / "iris.onnx")
    result = evaluate(spec, make_ref(tmp_path / "iris.csv", "csv", "species"), task="classification").to_dict()
    proba = _scores(spec, frame, ["a", "b", "c", "d"])["probabilities"].astype(np.float64)
    y = iris.target

    curves = result["curves"]
    assert curves["average"] == "ovr" and curves["omitted"] == []
    assert [c["label"] for c in curves["classes"]] == [0, 1, 2]
    for c in curves["classes"]:
        positive = y == c["label"]
        assert c["roc"]["auc"] == pytest.approx(skm.roc_auc_score(positive, proba[:, c["label"]]), abs=1e-12)
        ap = skm.average_precision_score(positive, proba[:, c["label"]])
        assert c["pr"]["average_precision"] == pytest.approx(ap, abs=1e-12)
    macro = np.mean([c["roc"]["auc"] for c in curves["classes"]])
    assert macro == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-12)
    assert "threshold_sweep" not in result
    cal = result["calibration"]
    assert cal["of"] == "top label"
    top = proba.argmax(axis=1)
    prob_true, prob_pred = calibration_curve(top == y, proba.max(axis=1), n_bins=10)
    np.testing.assert_allclose(cal["fraction_positive"], prob_true, atol=1e-12)
    np.testing.assert_allclose(cal["mean_predicted"], prob_pred, atol=1e-12)
    onehot = np.eye(3)[y]
    assert cal["brier"] == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)), abs=1e-12)


def test_curves_are_stored_downsampled_with_exact_areas() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(20_000) < 0.3
    scores = np.clip(rng.normal(0.5 + 0.2 * y, 0.2), 0, 1)
    curves = binary_curves(y, scores, max_points=150)
    assert curves is not None
    assert len(curves["roc"]["fpr"]) <= 150 and len(curves["pr"]["recall"]) <= 150
    assert curves["points"] > 150
    assert (curves["roc"]["fpr"][0], curves["roc"]["tpr"][0]) == (0.0, 0.0)
    assert (curves["roc"]["fpr"][-1], curves["roc"]["tpr"][-1]) == (1.0, 1.0)
    assert curves["roc"]["auc"] == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-12)
    assert curves["pr"]["average_precision"] == pytest.approx(skm.average_precision_score(y, scores), abs=1e-12)
    sweep = threshold_sweep(y, scores, max_points=150)
    assert sweep is not None and len(sweep["thresholds"]) <= 150
    # Undefined cases: one class only, or scores that are not probabilities.
    assert binary_curves(np.ones(5, bool), np.arange(5.0)) is None
    assert calibration(y[:5], np.array([0.1, 2.0, 0.3, 0.4, 0.5])) is None


def test_slice_codes_keep_missing_values_and_cap_the_slices() -> None:
    codes, names, how = slice_codes(np.array([1.5, np.nan, 2.5, 1.5]))
    assert names == ["1.5", "2.5", "(missing)"] and codes.tolist() == [0, 2, 1, 0] and how["binned"] is None
    many = np.array([f"v{i % 30}" for i in range(300)] + ["v0"] * 10, dtype=object)
    codes, names, _ = slice_codes(many)
    assert len(names) == 20 and names[-1] == "(other)"
    assert np.bincount(codes).sum() == 310
    codes, names, _ = slice_codes(np.array(["a", None, "b"], dtype=object))
    assert names == ["(missing)", "a", "b"]


def test_regression_slices_equal_scikit_learn_on_each_subset(
    fixtures_dir: Path, diabetes_ref: DatasetRef, model_spec: MakeSpec
) -> None:
    spec = model_spec(fixtures_dir / "diabetes_ridge.onnx")
    result = evaluate(spec, diabetes_ref, task="regression", slice_columns=["sex", "age"]).to_dict()
    frame = pd.read_parquet(diabetes_ref.path)
    features = [c for c in frame.columns if c != "progression"]
    predicted = next(iter(_scores(spec, frame, features).values())).reshape(-1).astype(np.float64)
    y = frame["progression"].to_numpy(np.float64)
    assert "curves" not in result and "calibration" not in result
    sex, age = result["slices"]
    assert sex["binned"] is None and len(sex["slices"]) == 2  # two values: one slice each
    assert age["binned"] == "quantiles" and len(age["slices"]) == 4
    for sliced in (sex, age):
        values = frame[sliced["column"]].to_numpy()
        edges = sliced.get("edges")
        distinct = np.unique(values)
        for i, row in enumerate(sliced["slices"]):
            if edges is None:
                mask = values == distinct[i]
            else:
                mask = (values >= edges[i]) & ((values < edges[i + 1]) if i < len(edges) - 2 else values <= edges[-1])
            assert row["rows"] == mask.sum()
            assert row["mae"] == pytest.approx(skm.mean_absolute_error(y[mask], predicted[mask]), rel=1e-6)
            assert row["rmse"] == pytest.approx(skm.root_mean_squared_error(y[mask], predicted[mask]), rel=1e-6)
            assert row["r2"] == pytest.approx(skm.r2_score(y[mask], predicted[mask]), rel=1e-6)


def test_one_vs_rest_curves_are_kept_for_the_most_frequent_classes() -> None:
    from workers.engine.evaluate.breakdown import MAX_CLASS_CURVES, classification_breakdown

    rng = np.random.default_rng(1)
    k, n = 13, 6000
    weights = np.arange(1, k + 1, dtype=np.float64)
    y = rng.choice(k, size=n, p=weights / weights.sum())
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = classification_breakdown(y, proba.argmax(axis=1), proba, list(range(k)), None)
    curves = out["curves"]
    assert len(curves["classes"]) == MAX_CLASS_CURVES == 10
    # The three rarest classes are the ones left out, and said to be.
    assert sorted(curves["omitted"]) == [0, 1, 2]
    for c in curves["classes"]:
        auc = skm.roc_auc_score(y == c["label"], proba[:, c["label"]])
        assert c["roc"]["auc"] == pytest.approx(auc, abs=1e-12)
