"""A data set that cannot feed the model is refused at submission, from the stored schemas, naming columns."""

from __future__ import annotations

import pandas as pd
import pytest

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register, model_version_register
from tests.conftest import FIXTURES
from workers.tasks.evaluate import run_evaluate

pytestmark = pytest.mark.django_db


def register_csv(alice, alpha, tmp_path, frame: pd.DataFrame, name: str, label: str = "diagnosis"):
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return dataset_version_register(
        user=alice, team=alpha, name=name, path=str(path), filename=path.name, label_column=label
    )


def submit(api, model, data, kind: str = "evaluate", params: dict | None = None):
    body = {"kind": kind, "model_version": str(model.pk), "dataset_version": str(data.pk), "params": params or {}}
    return api["alice"].post("/api/runs/", body, format="json")


@pytest.fixture
def table():
    return pd.read_csv(FIXTURES / "breast_cancer_test.csv")


def test_fewer_columns_than_the_model_takes_is_refused_and_the_missing_columns_named(
    api, alice, alpha, bc_model, bc_data, table, tmp_path
):
    narrow = register_csv(alice, alpha, tmp_path, table.drop(columns=["mean_area", "worst_symmetry"]), "narrow")
    for kind in ("evaluate", "parity", "quantize"):
        response = submit(api, bc_model, narrow, kind=kind)
        assert response.status_code == 400, (kind, response.json())
        assert "takes 30 features but 28 feature columns were given" in response.json()["detail"], kind
    assert not EvaluationRun.objects.filter(dataset_version=narrow).exists()

    # once the model has been evaluated, the columns it read are known and the missing ones are named
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    run_evaluate.apply(args=[str(run.pk)])
    response = submit(api, bc_model, narrow)
    assert response.status_code == 400
    assert "missing here, and read when it was last evaluated: mean_area, worst_symmetry" in response.json()["detail"]


def test_missing_values_in_a_column_the_job_reads_are_refused(api, alice, alpha, bc_model, table, tmp_path):
    holes = table.copy()
    holes.loc[[3, 7, 11], "mean_texture"] = None
    holes.loc[5, "diagnosis"] = None
    holes["unused"] = None
    data = register_csv(alice, alpha, tmp_path, holes, "holes")
    response = submit(api, bc_model, data, params={"feature_columns": [c for c in table.columns if c != "diagnosis"]})
    assert response.status_code == 400, response.json()
    detail = response.json()["detail"]
    assert "missing values in columns the job reads: mean_texture (3 missing), diagnosis (1 missing)" in detail
    assert "unused" not in detail


def test_a_model_input_of_another_rank_is_refused(api, alice, alpha, bc_data):
    cnn = model_version_register(
        user=alice, team=alpha, name="cnn", path=str(FIXTURES / "digits_cnn.onnx"), filename="digits_cnn.onnx"
    )
    response = submit(api, cnn, bc_data)
    assert response.status_code == 400, response.json()
    assert "the model input must be 2-D (rows x features)" in response.json()["detail"]


def test_columns_a_processing_spec_reads_must_exist(api, alice, alpha, table, tmp_path):
    features = [c for c in table.columns if c != "diagnosis"]
    model = model_version_register(
        user=alice,
        team=alpha,
        name="bc-spec",
        path=str(FIXTURES / "breast_cancer_logreg.onnx"),
        filename="m.onnx",
        processing={"input": {"kind": "tabular", "feature_columns": features}},
    )
    data = register_csv(alice, alpha, tmp_path, table.drop(columns=["radius_error"]), "no-radius")
    response = submit(api, model, data)
    assert response.status_code == 400, response.json()
    assert "lacks columns that bc-spec v1's processing spec reads: radius_error" in response.json()["detail"]
