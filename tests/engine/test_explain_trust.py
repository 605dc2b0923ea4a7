"""Trust scores against captum.metrics, attribution drift (nDCG), budgets, tabular columns and tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workers.engine.errors import EngineError
from workers.engine.explain.budget import estimate_model_rows, samples_for_time, sampling_error
from workers.engine.explain.drift import attribution_drift, ndcg
from workers.engine.explain.forward import Forward
from workers.engine.explain.kernel_shap import kernel_shap
from workers.engine.explain.params import parse_method
from workers.engine.explain.selection import RowFilter, cohorts, global_importance, select_rows
from workers.engine.explain.tabular import baseline_rows, tabular_view
from workers.engine.explain.text import token_attributions
from workers.engine.explain.trust import flags, infidelity, sensitivity_max, stability
from workers.engine.processing.spec import TabularInput

torch = pytest.importorskip("torch")


def _model(w: np.ndarray) -> Forward:
    return Forward(lambda x: np.stack([np.tanh(x @ w), -np.tanh(x @ w)], axis=1), dtype=np.float64)


def test_infidelity_matches_captum_on_the_same_perturbations() -> None:
    from captum.metrics import infidelity as captum_infidelity

    rng = np.random.default_rng(0)
    w = rng.normal(size=5)
    x = rng.normal(size=(3, 5))
    attr = rng.normal(size=(3, 5))
    noise = rng.normal(size=(3, 16, 5)) * 0.1
    forward = _model(w)
    ours, change = infidelity(forward, x, attr, np.zeros(3, dtype=int), np.ones(5), noise=noise)
    flat = torch.tensor(noise.reshape(48, 5))

    def perturb(inputs):
        return flat, inputs - flat

    def f(t):
        return torch.tensor(forward(t.numpy()))

    theirs = captum_infidelity(
        f, perturb, torch.tensor(x), torch.tensor(attr), target=0, n_perturb_samples=16, max_examples_per_batch=100
    )
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)
    assert (change > 0).all()


def test_sensitivity_stability_and_flags() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=4)
    x = rng.normal(size=(2, 4))
    # Gradient × input of a linear model changes by at most radius × |w| relative to its norm: small.
    sens = sensitivity_max(lambda a: a * w, x, np.ones(4), radius=0.01, n_perturb=4)
    assert sens.shape == (2,) and (sens < 0.05).all()
    a = rng.normal(size=(3, 8))
    assert stability([a, a.copy()]) == pytest.approx(1.0)
    assert stability([a, -a]) == pytest.approx(-1.0)
    found = flags({"additivity_error": 0.2, "stability": 0.5, "completeness_error": 0.001})
    assert found == [
        "additivity error 0.2 is above the threshold 0.001",
        "stability 0.5 is below the threshold 0.8",
    ]


def test_ndcg_as_clarify() -> None:
    ref = np.array([0.5, 0.3, 0.2])
    assert ndcg(ref, ref) == pytest.approx(1.0)
    # Current ranking swaps the first two: DCG = 0.3/1 + 0.5/log2(3) + 0.2/2.
    expected = (0.3 + 0.5 / np.log2(3) + 0.2 / 2) / (0.5 + 0.3 / np.log2(3) + 0.2 / 2)
    assert ndcg(ref, np.array([0.3, 0.5, 0.2])) == pytest.approx(expected)
    drift = attribution_drift(ref, np.array([0.1, 0.1, 0.8]), ["a", "b", "c"])
    assert drift["drifted"] and drift["features"][0]["feature"] == "c"
    assert drift["features"][0]["current_rank"] == 1 and drift["features"][0]["reference_rank"] == 3


def test_budget_estimate_is_what_runs_and_a_time_budget_is_checked() -> None:
    w = np.arange(6.0)
    forward = _model(w)
    x, bg = np.ones((3, 6)), np.zeros((4, 6))
    info, params = parse_method("kernel_shap", {"nsamples": 40})
    estimate = estimate_model_rows("kernel_shap", params, rows=3, features=6, background_rows=4)
    kernel_shap(forward, x, bg, nsamples=40)
    assert forward.stats.rows == estimate - 3  # the estimate also counts the outputs read back for the result
    n = samples_for_time(2.0, rows=3, features=6, background_rows=4, rows_per_second=1e5)
    assert 8 <= n <= 62
    with pytest.raises(EngineError, match="time budget of 0.001 s cannot be met"):
        samples_for_time(0.001, rows=30, features=30, background_rows=10, rows_per_second=1e4)
    err = sampling_error(_model(np.linspace(-1, 1, 12)), np.ones((1, 12)), np.zeros((3, 12)), nsamples=60)
    assert err["seeds"] == 3 and err["std"] >= 0 and err["relative"] < 1


def test_row_selection_and_cohorts() -> None:
    with pytest.raises(EngineError, match="rows 7 do not exist: the data set has 5 rows"):
        select_rows(RowFilter("indices", indices=(1, 7)), n_rows=5)
    pred, truth = np.array([1, 0, 1, 1]), np.array([1, 1, 0, 1])
    assert select_rows(RowFilter("misclassified"), n_rows=4, predicted=pred, labels=truth).tolist() == [1, 2]
    assert select_rows(RowFilter("predicted_class", value=1), n_rows=4, predicted=pred).tolist() == [0, 2, 3]
    col = np.array(["a", "b", "a", "b"])
    assert select_rows(RowFilter("column_value", value="b", column="c"), n_rows=4, column=col).tolist() == [1, 3]
    values = np.array([[1.0, -2.0], [3.0, 0.0], [-1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(global_importance(values), [1.25, 0.75])
    groups = cohorts(values, truth)
    assert groups["1"]["rows"] == 3 and groups["0"]["importance"] == [1.0, 1.0]


def test_tabular_one_hot_block_is_one_column_and_preprocessing_runs_inside() -> None:
    spec = TabularInput(
        feature_columns=("age", "city"),
        scaling=(("age", 40.0, 10.0),),
        categories=(("city", ("Lyon", "Paris", "Rome")),),
    )
    view = tabular_view(spec, ["age", "city"])
    frame = pd.DataFrame({"age": [50, 30, 40], "city": ["Paris", "Lyon", "Rome"]})
    z = view.encode(frame)
    np.testing.assert_array_equal(z, [[50, 1], [30, 0], [40, 2]])
    w = np.array([2.0, 1.0, -1.0, 0.5])  # on the model input: scaled age, one-hot city
    model = Forward(lambda m: (m.astype(np.float64) @ w)[:, None], dtype=np.float32)
    forward = view.forward(model)
    bg, weights = baseline_rows("mean", z, view.categorical)
    assert bg.tolist() == [[40.0, 0.0]]  # the mean age, the most frequent city (all tie: the first)
    sv = kernel_shap(forward, z, bg, background_weights=weights)
    # Shapley values of a linear model over user columns: age w0 (x - 40)/10, city: w[city] - w[Lyon].
    np.testing.assert_allclose(sv.values[:, 0, 0], 2.0 * (z[:, 0] - 40) / 10, atol=1e-6)
    np.testing.assert_allclose(sv.values[:, 1, 0], [-1.0 - 1.0, 0.0, 0.5 - 1.0], atol=1e-6)
    assert view.model_groups().tolist() == [0, 1, 1, 1]
    km, kw = baseline_rows("kmeans", z, view.categorical, k=2)
    assert len(km) == 2 and set(km[:, 1]) <= {0.0, 1.0, 2.0} and kw.sum() == pytest.approx(1)
    with pytest.raises(EngineError, match="unknown baseline"):
        baseline_rows("random", z, view.categorical)


def test_token_attributions_against_a_pad_baseline() -> None:
    weights = np.array([0.0, 0.0, 0.0, 1.5, -2.0, 0.7])  # token id -> contribution; 0 pad, 1 CLS, 2 SEP

    def predict(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        score = (weights[ids] * mask).sum(axis=1)
        return np.stack([score, -score], axis=1)

    ids = np.array([[1, 3, 4, 5, 2, 0], [1, 5, 5, 2, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    special = np.isin(ids, [1, 2])
    out = token_attributions(predict, ids, mask, special, baseline_id=0, targets=np.array([0, 0]))
    np.testing.assert_allclose(out[0]["values"], [0, 1.5, -2.0, 0.7, 0, 0], atol=1e-9)
    np.testing.assert_allclose(out[1]["values"], [0, 0.7, 0.7, 0, 0, 0], atol=1e-9)
    assert out[0]["base_value"] == pytest.approx(0.0) and out[0]["output"] == pytest.approx(0.2)
