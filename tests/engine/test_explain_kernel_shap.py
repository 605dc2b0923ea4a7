"""evalsvc's batched KernelSHAP and exact Shapley values against known answers and shap.KernelExplainer run directly.

Sampling tolerance. With a budget below ``2**M - 2`` both KernelSHAP
implementations draw coalitions at random, so even two runs of shap itself
disagree: on the breast-cancer model at 4096 coalitions shap-vs-shap Pearson
per row is 0.988-0.998. The test therefore asks of evalsvc what shap achieves
against itself: per row, Pearson(evalsvc, shap seed A) must reach
``min(0.99, Pearson(shap seed B, shap seed A) - 0.01)``, and the pooled RMS
difference from shap A at most 1.5 times shap B's (the same estimator has the
same variance, so the expected ratio is 1). Where the budget enumerates every
coalition the estimator is deterministic and the two must agree to 1e-8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workers.engine.errors import EngineError
from workers.engine.explain.coalitions import kernel_coalitions, sample_budget
from workers.engine.explain.exact import exact_shapley
from workers.engine.explain.forward import Forward
from workers.engine.explain.image import feature_mask, patch_mask
from workers.engine.explain.kernel_shap import kernel_shap

shap = pytest.importorskip("shap")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def breast_cancer(fixtures_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    train = pd.read_csv(fixtures_dir / "breast_cancer.csv")
    test = pd.read_csv(fixtures_dir / "breast_cancer_test.csv")
    return train.iloc[:, :-1].to_numpy(np.float64), test.iloc[:, :-1].to_numpy(np.float64)


@pytest.fixture(scope="module")
def logreg(fixtures_dir: Path):
    sess = ort.InferenceSession(str(fixtures_dir / "breast_cancer_logreg.onnx"), providers=["CPUExecutionProvider"])

    def predict(x: np.ndarray) -> np.ndarray:
        return sess.run(["probabilities"], {"input": np.asarray(x, dtype=np.float32)})[0]

    return predict


def _linear(weights: np.ndarray, bias: float = 0.5) -> Forward:
    return Forward(lambda x: x.astype(np.float64) @ weights[:, None] + bias, dtype=np.float64)


def test_linear_model_exact_shapley_is_w_times_x_minus_mean() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=6)
    background = rng.normal(size=(25, 6))
    x = rng.normal(size=(4, 6))
    expected = w * (x - background.mean(axis=0))
    exact = exact_shapley(_linear(w), x, background)
    np.testing.assert_allclose(exact.values[:, :, 0], expected, atol=1e-10)
    # 2**6 - 2 coalitions: KernelSHAP enumerates them all and is exact too.
    kernel = kernel_shap(_linear(w), x, background, nsamples="auto")
    np.testing.assert_allclose(kernel.values[:, :, 0], expected, atol=1e-10)
    # Weighted background: E[x] is the weighted mean.
    weights = rng.uniform(0.5, 3, size=25)
    weighted = exact_shapley(_linear(w), x, background, background_weights=weights)
    np.testing.assert_allclose(
        weighted.values[:, :, 0], w * (x - np.average(background, axis=0, weights=weights)), atol=1e-10
    )


def test_exact_shapley_refuses_too_many_features() -> None:
    with pytest.raises(EngineError, match="2\\*\\*17 coalitions"):
        exact_shapley(_linear(np.ones(17)), np.zeros((1, 17)), np.ones((1, 17)))


def test_one_hot_group_is_one_feature_and_image_patches_sum_their_pixels() -> None:
    rng = np.random.default_rng(5)
    w = rng.normal(size=7)
    groups = np.array([0, 1, 1, 1, 2, 3, 3])  # columns 1-3 one category's one-hot block, 5-6 another
    background = rng.normal(size=(8, 7))
    x = rng.normal(size=(3, 7))
    out = kernel_shap(_linear(w), x, background, groups=groups)
    per_column = w * (x - background.mean(axis=0))
    expected = np.stack([per_column[:, groups == g].sum(axis=1) for g in range(4)], axis=1)
    np.testing.assert_allclose(out.values[:, :, 0], expected, atol=1e-10)

    image = rng.normal(size=(1, 1, 4, 4))
    pix_w = rng.normal(size=16)
    forward = Forward(lambda a: a.reshape(len(a), -1).astype(np.float64) @ pix_w[:, None], dtype=np.float64)
    mask = feature_mask(patch_mask(4, 4, 2), (1, 4, 4))
    baseline = np.zeros((1, 1, 4, 4))
    patches = kernel_shap(forward, image, baseline, groups=mask).values[0, :, 0]
    contrib = (pix_w * image.reshape(-1)).reshape(4, 4)
    np.testing.assert_allclose(
        patches,
        [contrib[:2, :2].sum(), contrib[:2, 2:].sum(), contrib[2:, :2].sum(), contrib[2:, 2:].sum()],
        atol=1e-10,
    )


def test_full_enumeration_agrees_with_shap_exactly(breast_cancer, logreg) -> None:
    """Eight varying features (the others equal in every row and background row): both enumerate 254 coalitions."""
    train, test = breast_cancer
    bg = shap.kmeans(train, 10)
    bg.data[:, 8:] = bg.data[0, 8:]
    background = bg.data
    rows = test[:3].copy()
    rows[:, 8:] = background[0, 8:]
    ours = kernel_shap(Forward(logreg), rows, background, background_weights=bg.weights, nsamples="auto")
    reference = np.asarray(shap.KernelExplainer(logreg, bg).shap_values(rows, l1_reg=False, silent=True))
    assert ours.samples == 254
    np.testing.assert_allclose(ours.values, reference, atol=1e-8)
    assert np.all(ours.values[:, 8:] == 0)


def test_sampled_kernel_shap_agrees_with_shap_within_its_own_spread(breast_cancer, logreg) -> None:
    train, test = breast_cancer
    bg = shap.kmeans(train, 10)
    rows = test[:3]
    ns = 4096
    ours = kernel_shap(Forward(logreg), rows, bg.data, background_weights=bg.weights, nsamples=ns, seed=1)
    explainer = shap.KernelExplainer(logreg, bg)
    np.random.seed(0)
    a = np.asarray(explainer.shap_values(rows, nsamples=ns, l1_reg=False, silent=True))[:, :, 1]
    np.random.seed(1)
    b = np.asarray(explainer.shap_values(rows, nsamples=ns, l1_reg=False, silent=True))[:, :, 1]
    o = ours.values[:, :, 1]
    for r in range(len(rows)):
        floor = min(0.99, np.corrcoef(b[r], a[r])[0, 1] - 0.01)
        assert np.corrcoef(o[r], a[r])[0, 1] >= floor, r
    rms_ours = np.sqrt(np.mean((o - a) ** 2))
    rms_shap = np.sqrt(np.mean((b - a) ** 2))
    assert rms_ours <= 1.5 * rms_shap, (rms_ours, rms_shap)
    # Same base value as shap, and additivity holds to 1e-4 relative (exactly, by the constraint).
    np.testing.assert_allclose(ours.base_values, explainer.expected_value, rtol=1e-6)
    assert ours.additivity_error().max() < 1e-4
    np.testing.assert_allclose(ours.outputs, logreg(rows), rtol=1e-6)


def test_same_seed_same_result_and_budget_semantics() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=12)
    f = Forward(lambda x: np.tanh(x.astype(np.float64) @ w[:, None]), dtype=np.float64)
    x, bg = rng.normal(size=(5, 12)), rng.normal(size=(6, 12))
    one = kernel_shap(f, x, bg, nsamples=300, seed=7)
    two = kernel_shap(f, x, bg, nsamples=300, seed=7)
    np.testing.assert_array_equal(one.values, two.values)
    assert one.samples == 300
    # Model rows: background, the rows, then rows × coalitions × background rows.
    assert f.stats.rows == 2 * (6 + 5 + 5 * 300 * 6)
    co = kernel_coalitions(12, 4, 300, np.random.default_rng(1))
    # Size 1 and 11 enumerated (24 masks), the rest drawn in complementary pairs, no duplicate masks.
    assert co.enumerated == 24
    assert co.masks.shape == (4, 300, 12)
    for r in range(4):
        assert len({m.tobytes() for m in co.masks[r]}) == 300 or co.weights[r].min() == 0
        assert co.weights[r].sum() == pytest.approx(1.0)
    assert sample_budget(12, "auto") == 2 * 12 + 2048
    assert sample_budget(5, 1000) == 30


def test_a_repeated_explanation_reuses_its_coalitions_and_gives_the_same_values(monkeypatch) -> None:
    from workers.engine.explain import kernel_shap as module

    rng = np.random.default_rng(3)
    w = rng.normal(size=8)
    f = Forward(lambda x: np.tanh(x.astype(np.float64) @ w[:, None]), dtype=np.float64)
    bg = rng.normal(size=(4, 8))
    x = rng.normal(size=(6, 8))
    bg[:, 5] = 0.25
    x[4:, 5] = 0.25  # rows 4 and 5 leave feature 5 out: two groups of rows, drawn one after the other
    module._coalition_cache.clear()
    monkeypatch.setattr(module, "COALITION_CACHE_BYTES", 0)  # nothing kept: every design drawn afresh
    fresh = kernel_shap(f, x, bg, nsamples=60, seed=11)
    assert len(module._coalition_cache) <= 1
    module._coalition_cache.clear()
    monkeypatch.setattr(module, "COALITION_CACHE_BYTES", 64 << 20)
    first = kernel_shap(f, x, bg, nsamples=60, seed=11)
    assert len(module._coalition_cache) == 2  # one design per group of rows
    kept = [co for co, _ in module._coalition_cache.values()]
    again = kernel_shap(f, x, bg, nsamples=60, seed=11)
    assert [co for co, _ in module._coalition_cache.values()] == kept  # reused, not drawn again
    assert all(not co.masks.flags.writeable for co in kept)
    np.testing.assert_array_equal(first.values, fresh.values)
    np.testing.assert_array_equal(again.values, fresh.values)
    other = kernel_shap(f, x, bg, nsamples=60, seed=12)
    assert len(module._coalition_cache) == 4 and not np.array_equal(other.values, fresh.values)
    assert np.abs(again.additivity_error()).max() < 1e-9
