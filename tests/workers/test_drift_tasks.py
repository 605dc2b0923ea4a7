"""The drift job in-process: submit with params checked, run the task, read the stored result and its page parts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.kinds.base import JobContext
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register
from tests.conftest import FIXTURES
from workers.tasks.drift import run_drift

pytestmark = pytest.mark.django_db

SHIFTED = ["mean_radius", "worst_texture", "mean_smoothness"]


@pytest.fixture
def halves(alice, alpha, tmp_path):
    table = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    ref, cur = table.iloc[::2].copy(), table.iloc[1::2].copy()
    for name in SHIFTED:
        cur[name] += table[name].std()
    ref["site"] = [("north", "south", "east")[i % 3] for i in range(len(ref))]
    cur["site"] = [("north", "south", "east", "west")[i % 4] for i in range(len(cur))]
    paths = {}
    for name, frame in (("ref", ref), ("cur", cur)):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    ref_v = dataset_version_register(user=alice, team=alpha, name="bc-ref", path=str(paths["ref"]), filename="r.csv")
    cur_v = dataset_version_register(user=alice, team=alpha, name="bc-cur", path=str(paths["cur"]), filename="c.csv")
    return ref_v, cur_v, ref, cur


def test_drift_job_finds_and_names_the_shifted_columns(alice, bc_model, halves):
    ref_v, cur_v, ref, cur = halves
    run = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=cur_v.pk,
        kind="drift",
        params={"reference_dataset": str(ref_v.pk), "multivariate": ["mmd"], "n_permutations": 50},
    )
    run_drift.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    result = run.result
    assert set(SHIFTED) <= set(result["drifted_features"])
    for f in result["features"]:
        if f["kind"] == "numeric":
            assert f["p_value"] == stats.ks_2samp(ref[f["name"]], cur[f["name"]]).pvalue
    site = next(f for f in result["features"] if f["name"] == "site")
    assert site["new_categories"] == ["west"] and site["drift"] and site["test"] == "chi2"
    (mmd,) = result["multivariate"]
    assert mmd["drift"] and mmd["permutations"] == 50 and mmd["p_value"] == pytest.approx(1 / 51)
    kind = get_kind("drift")
    figures = kind.figures(result)
    assert figures[0][0] == "Columns by effect size" and len(figures) > 1
    section = kind.section(JobContext("drift", "Drift", run.params, result, str(cur_v)))
    assert "Bonferroni" in section.method and "Verdict: drift" in section.notes[0]
    assert section.tables[0]["rows"][0][0] in SHIFTED  # ranked by effect size
    assert {r["column"] for r in kind.csv_rows(result)} == set(ref.columns)


def test_drift_params_are_checked_at_submission(alice, bc_model, bc_data, halves):
    ref_v, cur_v, _, _ = halves

    def submit(params):
        return run_submit(
            user=alice, model_version_id=bc_model.pk, dataset_version_id=cur_v.pk, kind="drift", params=params
        )

    with pytest.raises(ValidationFailed, match="invalid params"):
        submit({})
    with pytest.raises(ValidationFailed, match="invalid params"):
        submit({"reference_dataset": str(ref_v.pk), "correction": "holm"})
    with pytest.raises(ValidationFailed, match="no data set version with that id"):
        submit({"reference_dataset": "00000000-0000-0000-0000-000000000000"})
    with pytest.raises(ValidationFailed, match="columns not in the current data set bc-test v1: site"):
        run_submit(
            user=alice,
            model_version_id=bc_model.pk,
            dataset_version_id=bc_data.pk,
            kind="drift",
            params={"reference_dataset": str(cur_v.pk)},
        )
    with pytest.raises(ValidationFailed, match="columns not in the reference"):
        submit({"reference_dataset": str(ref_v.pk), "columns": ["nope"]})
    run = submit({"reference_dataset": str(ref_v.pk), "columns": ["mean_radius", "site"], "correction": "fdr"})
    assert run.params["columns"] == ["mean_radius", "site"] and run.params["reference_label"] == str(ref_v)


def test_prediction_drift_compares_the_models_predicted_classes(alice, bc_model, bc_data, tmp_path):
    """The breast-cancer classifier on its test rows vs the same rows with the malignant ones tripled."""
    table = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    skewed = pd.concat([table, table[table["diagnosis"] == 0], table[table["diagnosis"] == 0]], ignore_index=True)
    path = tmp_path / "skewed.csv"
    skewed.to_csv(path, index=False)
    current = dataset_version_register(
        user=alice, team=bc_data.team, name="skewed", path=str(path), filename="s.csv", label_column="diagnosis"
    )
    run = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=current.pk,
        kind="drift",
        params={"reference_dataset": str(bc_data.pk), "prediction_drift": True},
    )
    run_drift.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    prediction = run.result["prediction"]
    assert prediction["test"] == "chi2" and prediction["drift"]
    assert (prediction["n_reference"], prediction["n_current"]) == (len(table), len(skewed))
    # The class counts are the model's predictions, not the labels: cross-check with ONNX Runtime directly.
    import onnxruntime as ort

    session = ort.InferenceSession(str(FIXTURES / "breast_cancer_logreg.onnx"))
    features = table.drop(columns="diagnosis").to_numpy(dtype="float32")
    predicted = session.run(None, {session.get_inputs()[0].name: features})[0]
    counts = dict(zip(*np.unique(predicted.astype(str), return_counts=True), strict=True))
    hist = prediction["histogram"]
    assert dict(zip(hist["categories"], hist["reference"], strict=True)) == {k: int(v) for k, v in counts.items()}
    section = get_kind("drift").section(JobContext("drift", "Drift", run.params, run.result, str(current)))
    assert any(
        n.startswith("Prediction drift: the distribution of the model's predicted classes moved") for n in section.notes
    )
