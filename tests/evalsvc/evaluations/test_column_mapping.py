"""Columns matched by name: a model version knows its features, and jobs feed data columns to them by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn import metrics as skm

from evalsvc.audit.models import AuditEntry
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register, model_version_register
from workers.engine.formats import inspect_model
from workers.tasks.evaluate import run_evaluate

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _execute(run):
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def shuffled(alice, alpha, tmp_path):
    """The diabetes data with its columns in another order and one extra column."""
    frame = pd.read_parquet(FIXTURES / "diabetes.parquet")
    columns = ["s6", "bmi", "progression", "age", "s3", "bp", "s1", "sex", "s5", "s2", "s4"]
    out = frame[columns].assign(row_id=np.arange(len(frame)))
    out.to_csv(tmp_path / "shuffled.csv", index=False)
    return dataset_version_register(
        user=alice, team=alpha, name="shuffled", path=str(tmp_path / "shuffled.csv"), filename="shuffled.csv",
        label_column="progression",
    )  # fmt: skip


def _upload(api, **fields):
    path = FIXTURES / "diabetes_ridge.onnx"
    with path.open("rb") as handle:
        return api["alice"].post(
            "/api/model-versions/", {"team": "alpha", "name": "ridge", "file": handle, **fields}, format="multipart"
        )


def test_declared_features_are_matched_by_name(api, alice, alpha, diabetes_data, shuffled):
    response = _upload(api, feature_names=json.dumps(FEATURES))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["feature_names"] == FEATURES and body["feature_names_source"] == "declared"
    from evalsvc.registry.models import ModelVersion

    model = ModelVersion.objects.get(pk=body["id"])
    reordered = _execute(run_submit(user=alice, model_version_id=model.pk, dataset_version_id=shuffled.pk, params={}))
    original = _execute(
        run_submit(user=alice, model_version_id=model.pk, dataset_version_id=diabetes_data.pk, params={})
    )
    # The same numbers as on the file in training order, and as scikit-learn on the model's predictions.
    assert reordered.result["metrics"]["r2"] == pytest.approx(original.result["metrics"]["r2"], abs=1e-9)
    assert reordered.result["feature_columns"] == FEATURES
    frame = pd.read_parquet(FIXTURES / "diabetes.parquet")
    import onnxruntime as ort

    session = ort.InferenceSession(str(FIXTURES / "diabetes_ridge.onnx"), providers=["CPUExecutionProvider"])
    x = frame[FEATURES].to_numpy(dtype=session.get_inputs()[0].type == "tensor(double)" and np.float64 or np.float32)
    pred = session.run(None, {session.get_inputs()[0].name: x})[0].ravel()
    assert reordered.result["metrics"]["r2"] == pytest.approx(skm.r2_score(frame["progression"], pred), abs=1e-6)
    mapping = reordered.result["column_mapping"]
    assert mapping["method"].startswith("by name") and mapping["ignored_columns"] == ["row_id"]


def test_a_missing_feature_column_is_refused_at_submission(api, alice, alpha, local_worker, tmp_path):
    model = _upload(api, feature_names=json.dumps(FEATURES)).json()
    frame = pd.read_parquet(FIXTURES / "diabetes.parquet").drop(columns=["bmi"])
    frame.to_csv(tmp_path / "no_bmi.csv", index=False)
    data = dataset_version_register(
        user=alice, team=alpha, name="no-bmi", path=str(tmp_path / "no_bmi.csv"), filename="no_bmi.csv",
        label_column="progression",
    )  # fmt: skip
    response = api["alice"].post(
        "/api/runs/", {"model_version": model["id"], "dataset_version": str(data.pk), "params": {}}, format="json"
    )
    assert response.status_code == 400
    assert "lacks the model's feature column bmi" in response.json()["detail"]


def test_position_is_used_only_without_names_and_the_run_says_so(client, alice, bc_model, bc_data):
    assert bc_model.feature_names is None
    run = _execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={}))
    assert run.result["column_mapping"]["method"] == "by position"
    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-method="by position"' in page and "declare its feature_names" in page


def test_feature_names_edited_later_are_audited(api, alice, diabetes_model):
    url = f"/api/model-versions/{diabetes_model.pk}/"
    assert api["bob"].patch(url, {"feature_names": FEATURES}, format="json").status_code == 403
    too_few = api["alice"].patch(url, {"feature_names": FEATURES[:3]}, format="json")
    assert too_few.status_code == 400 and "takes 10 features" in too_few.json()["detail"]
    repeated = api["alice"].patch(url, {"feature_names": ["age"] * 10}, format="json")
    assert repeated.status_code == 400 and "repeats age" in repeated.json()["detail"]
    response = api["alice"].patch(url, {"feature_names": FEATURES}, format="json")
    assert response.status_code == 200 and response.json()["feature_names"] == FEATURES
    entry = AuditEntry.objects.filter(action="model_version.features_updated").latest("seq")
    assert entry.details["new"]["feature_names"] == FEATURES and entry.details["previous"]["feature_names"] is None


def test_feature_names_from_the_model_file(alice, alpha, tmp_path):
    model = onnx.load(FIXTURES / "diabetes_ridge.onnx")
    entry = model.metadata_props.add()
    entry.key, entry.value = "feature_names", json.dumps(FEATURES)
    onnx.save(model, tmp_path / "named.onnx")
    assert inspect_model(str(tmp_path / "named.onnx"), "onnx").feature_names == tuple(FEATURES)
    version = model_version_register(
        user=alice, team=alpha, name="named", path=str(tmp_path / "named.onnx"), filename="named.onnx"
    )
    assert version.feature_names == FEATURES and version.feature_names_source == "model"
