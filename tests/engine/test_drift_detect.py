"""Drift checks on real data: false alarms at the nominal rate, planted shifts found and named."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer

from workers.engine.drift import (
    DriftConfig,
    ReferenceProfile,
    UnivariateOptions,
    adjust,
    detect_drift,
    prediction_drift,
)
from workers.engine.errors import EngineError

FAST = UnivariateOptions(effect_sizes=False, threads=1)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def test_false_alarm_rate_with_bonferroni_is_at_most_nominal(cancer: pd.DataFrame) -> None:
    """200 random half/half splits of breast-cancer (no drift), KS on 30 columns, Bonferroni, alpha 0.05.

    Tolerance: if the true family-wise false-alarm rate were exactly the nominal
    0.05, the number of alarms in 200 independent splits is Binomial(200, 0.05)
    (mean 10, sd 3.1), and P(X >= 21) = 0.0012. So at most 20 alarms (10 %)
    are accepted: a correct detector fails this test with probability under
    0.12 %, and one without correction (about 79 % alarms for 30 independent
    columns) fails it surely (checked below).
    """
    features = cancer.drop(columns="target")
    rng = np.random.default_rng(2026)
    alarms = uncorrected_alarms = 0
    for _ in range(200):
        order = rng.permutation(features.shape[0])
        ref, cur = features.iloc[order[:284]], features.iloc[order[284:]]
        report = detect_drift(ref, cur, DriftConfig(alpha=0.05, correction="bonferroni", univariate=FAST))
        alarms += report.drift
        uncorrected_alarms += any(f.p_value < 0.05 for f in report.features)
    limit = int(stats.binom.isf(0.0012, 200, 0.05))
    assert limit == 20 and stats.binom.sf(limit, 200, 0.05) < 0.0012
    assert alarms <= limit, alarms
    assert uncorrected_alarms > limit  # the correction is what keeps the rate down


def test_planted_mean_shift_on_three_columns_is_found_and_named(cancer: pd.DataFrame) -> None:
    features = cancer.drop(columns="target")
    shifted = ["mean radius", "worst texture", "mean smoothness"]
    rng = np.random.default_rng(7)
    order = rng.permutation(features.shape[0])
    ref, cur = features.iloc[order[:284]], features.iloc[order[284:]].copy()
    for name in shifted:
        cur[name] += 0.5 * features[name].std()
    for correction in ("bonferroni", "fdr"):
        report = detect_drift(ref, cur, DriftConfig(correction=correction))
        assert set(report.drifted_features) == set(shifted), correction
        # Effect sizes put the shifted columns first.
        ranked = sorted(report.features, key=lambda f: -f.psi)
        assert {f.name for f in ranked[:3]} == set(shifted)
        for f in report.features:
            assert f.wasserstein == pytest.approx(stats.wasserstein_distance(ref[f.name], cur[f.name]), rel=1e-9)
            assert f.p_value == stats.ks_2samp(ref[f.name], cur[f.name]).pvalue


def test_new_category_and_changed_class_balance_are_found_and_named() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    ref = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "label": rng.choice([0, 1], n, p=[0.63, 0.37]),
            "size": rng.normal(size=n),
        }
    )
    cur = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue", "purple"], n, p=[0.47, 0.29, 0.19, 0.05]),
            "label": rng.choice([0, 1], n, p=[0.45, 0.55]),
            "size": rng.normal(size=n),
        }
    )
    report = detect_drift(ref, cur)
    colour, label, size = (report.feature(c) for c in ("colour", "label", "size"))
    assert (colour.kind, colour.test, colour.new_categories) == ("categorical", "chi2", ("purple",))
    assert (label.kind, label.test) == ("binary", "fisher")
    assert set(report.drifted_features) == {"colour", "label"} and not size.drift
    table = np.array(
        [
            [np.sum(ref.colour == c) for c in colour.histogram.categories],
            [np.sum(cur.colour == c) for c in colour.histogram.categories],
        ]
    )
    assert colour.p_value == stats.chi2_contingency(table, correction=False).pvalue
    fisher = stats.fisher_exact(
        [[np.sum(ref.label == 0), np.sum(ref.label == 1)], [np.sum(cur.label == 0), np.sum(cur.label == 1)]]
    )
    assert label.p_value == fisher.pvalue
    assert colour.histogram.categories[-1] == "purple" and colour.histogram.reference[-1] == 0


def test_corrections_match_alibi_detect_verdicts() -> None:
    from alibi_detect.cd import KSDrift

    rng = np.random.default_rng(9)
    x_ref = rng.normal(size=(500, 12)).astype(np.float32)
    x_cur = rng.normal(size=(400, 12)).astype(np.float32)
    x_cur[:, [1, 4]] += 0.25
    x_cur[:, 7] *= 1.3
    names = [f"f{i}" for i in range(12)]
    ref, cur = pd.DataFrame(x_ref, columns=names), pd.DataFrame(x_cur, columns=names)
    for correction in ("bonferroni", "fdr"):
        ours = detect_drift(
            ref, cur, DriftConfig(correction=correction, univariate=UnivariateOptions(ks_method="asymp"))
        )
        theirs = KSDrift(x_ref, p_val=0.05, correction=correction).predict(x_cur, drift_type="batch")["data"]
        np.testing.assert_allclose([f.p_value for f in ours.features], theirs["p_val"], rtol=1e-6)
        assert ours.drift == bool(theirs["is_drift"])
    p = np.array([0.001, 0.01, 0.02, 0.04, 0.2])
    np.testing.assert_allclose(adjust(p, "bonferroni"), np.minimum(1, p * 5))
    # Benjamini–Hochberg by hand: p_(i) * k / i, made monotone from the top.
    bh = np.minimum.accumulate((p * 5 / np.arange(1, 6))[::-1])[::-1]
    np.testing.assert_allclose(adjust(p, "fdr"), bh)


def test_prediction_drift_on_predicted_classes() -> None:
    rng = np.random.default_rng(0)
    ref = rng.choice(["cat", "dog", "bird"], 2000, p=[0.4, 0.4, 0.2])
    same = rng.choice(["cat", "dog", "bird"], 2000, p=[0.4, 0.4, 0.2])
    moved = rng.choice(["cat", "dog", "bird"], 2000, p=[0.3, 0.4, 0.3])
    assert not prediction_drift(ref, same).drift
    report = prediction_drift(ref, moved)
    assert report.drifted_features == ("predicted_class",)
    assert report.feature("predicted_class").psi > 0.05


def test_cached_reference_gives_the_same_report(tmp_path, cancer: pd.DataFrame) -> None:
    ref, cur = cancer.iloc[::2], cancer.iloc[1::2]
    profile = ReferenceProfile.from_frame(ref)
    profile.save(tmp_path / "ref.npz")
    loaded = ReferenceProfile.load(tmp_path / "ref.npz")
    config = DriftConfig(multivariate=("mmd",))
    first, second = detect_drift(profile, cur, config).to_dict(), detect_drift(loaded, cur, config).to_dict()
    first.pop("timings"), second.pop("timings")
    for f in first["features"] + second["features"]:
        f.pop("seconds")
    for m in first["multivariate"] + second["multivariate"]:
        m.pop("seconds")
    assert first == second


def test_streaming_holds_far_less_than_the_data() -> None:
    """1.2M rows × 8 columns streamed in blocks: peak memory stays a fraction of the data's 77 MB."""
    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(8)]
    ref = pd.DataFrame(rng.normal(size=(20_000, 8)), columns=names)
    profile = ReferenceProfile.from_frame(ref)

    def blocks():
        block_rng = np.random.default_rng(1)
        for _ in range(24):
            yield pd.DataFrame(block_rng.normal(size=(50_000, 8)), columns=names)

    tracemalloc.start()
    # A function that yields the blocks afresh: the exact KS test reads them twice.
    report = detect_drift(profile, blocks, DriftConfig(univariate=UnivariateOptions(sample_rows=10_000)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.n_current == 1_200_000 and not report.drift
    assert {f.sample_size for f in report.features} == {10_000}
    assert peak < 0.4 * 1_200_000 * 8 * 8


def test_bad_input_is_refused_with_a_message() -> None:
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    with pytest.raises(EngineError, match="lacks the reference's columns: b"):
        detect_drift(ref, pd.DataFrame({"a": [1.0]}))
    with pytest.raises(EngineError, match="correction must be"):
        DriftConfig(correction="holm")
    with pytest.raises(EngineError, match="unknown multivariate"):
        DriftConfig(multivariate=("wasserstein",))
    with pytest.raises(EngineError, match="no rows"):
        detect_drift(ref, pd.DataFrame({"a": [], "b": []}))
