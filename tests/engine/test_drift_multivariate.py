"""Multivariate detectors against alibi-detect run directly, with the (k + 1) / (n + 1) correction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from workers.engine.drift import classifier_test, embedding_drift, lsdd_test, mmd_test, random_projection

torch = pytest.importorskip("torch")
alibi_cd = pytest.importorskip("alibi_detect.cd")


def _alibi_mmd(x_ref, x_cur, seed: int, permutations: int):
    detector = alibi_cd.MMDDrift(x_ref, backend="pytorch", n_permutations=permutations, device="cpu")
    torch.manual_seed(seed)
    result = detector.predict(x_cur)["data"]
    # The permutations alibi-detect drew: the same global generator, the same calls.
    torch.manual_seed(seed)
    perms = np.stack([torch.randperm(len(x_ref) + len(x_cur)).numpy() for _ in range(permutations)])
    return result, perms, float(detector._detector.kernel.sigma)


@pytest.mark.parametrize("shift", [0.0, 0.15, 0.5])
def test_mmd_equals_alibi_detect_after_correction(shift: float) -> None:
    rng = np.random.default_rng(int(shift * 100))
    x_ref = rng.normal(size=(300, 6)).astype(np.float32)
    x_cur = (rng.normal(size=(240, 6)) + shift).astype(np.float32)
    theirs, perms, sigma = _alibi_mmd(x_ref, x_cur, seed=3, permutations=100)
    ours = mmd_test(x_ref, x_cur, permutations=perms)
    assert ours.params["sigma"] == pytest.approx(sigma, rel=1e-6)  # the same median heuristic
    assert ours.statistic == pytest.approx(theirs["distance"], rel=1e-4, abs=1e-6)
    k = round(theirs["p_val"] * 100)
    assert ours.p_value_k_over_n == pytest.approx(theirs["p_val"])
    assert ours.p_value == (k + 1) / 101
    if shift in (0.0, 0.5):
        assert ours.drift == (shift == 0.5)


def test_mmd_caps_the_sample_per_side_and_records_it() -> None:
    rng = np.random.default_rng(0)
    result = mmd_test(rng.normal(size=(5000, 3)), rng.normal(size=(3000, 3)), max_per_side=400, n_permutations=50)
    assert (result.n_reference_sample, result.n_current_sample, result.permutations) == (400, 400, 50)
    assert 1 / 51 <= result.p_value <= 1 and result.p_value != 0


def test_lsdd_reports_the_corrected_p_value() -> None:
    rng = np.random.default_rng(1)
    x_ref = rng.normal(size=(400, 4)).astype(np.float32)
    x_cur = (rng.normal(size=(300, 4)) + np.array([0.6, 0, 0, 0])).astype(np.float32)
    result = lsdd_test(x_ref, x_cur, n_permutations=50, seed=4)
    torch.manual_seed(4)
    theirs = alibi_cd.LSDDDrift(x_ref, backend="pytorch", n_permutations=50, device="cpu").predict(x_cur)["data"]
    assert result.p_value_k_over_n == pytest.approx(theirs["p_val"])
    assert result.p_value == (round(theirs["p_val"] * 50) + 1) / 51
    assert result.statistic == pytest.approx(theirs["distance"], rel=1e-5)
    assert result.drift


def test_classifier_auc_and_p_value() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    same = classifier_test(rng.normal(size=(300, 4)), rng.normal(size=(300, 4)), seed=0)
    assert 0.35 < same.statistic < 0.65 and not same.drift
    x_cur = rng.normal(size=(300, 4))
    x_cur[:, 0] = x_cur[:, 1] + 0.1 * x_cur[:, 0]  # a broken correlation: no column moved on its own
    moved = classifier_test(rng.normal(size=(300, 4)), x_cur, seed=0)
    assert moved.statistic > 0.8 and moved.drift and moved.p_value < 1e-6
    # AUC is U / (n m): the p-value is the one-sided Mann–Whitney test on the same scores.
    scores = np.r_[rng.random(50), rng.random(60) + 0.2]
    labels = np.r_[np.zeros(50), np.ones(60)]
    u = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0], alternative="greater")
    assert u.statistic / (50 * 60) == pytest.approx(roc_auc_score(labels, scores))


def test_embedding_drift_via_random_projection() -> None:
    rng = np.random.default_rng(5)
    basis = rng.normal(size=(8, 512))
    ref = rng.normal(size=(400, 8)) @ basis
    same = rng.normal(size=(400, 8)) @ basis
    moved = (rng.normal(size=(400, 8)) + np.r_[0.7, np.zeros(7)]) @ basis
    assert random_projection(ref, 32).shape == (400, 32)
    # The projection keeps distances within a modest factor (Johnson–Lindenstrauss).
    d_full = np.linalg.norm(ref[0] - ref[1])
    d_proj = np.linalg.norm(random_projection(ref, 32)[0] - random_projection(ref, 32)[1])
    assert 0.5 < d_proj / d_full < 1.5
    assert not embedding_drift(ref, same).drift
    result = embedding_drift(ref, moved)
    assert result.drift and result.params["dim"] == 32 and result.params["input_dim"] == 512
