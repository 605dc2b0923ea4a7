from __future__ import annotations

import pytest

from evalsvc.evaluations.models import EvaluationRun

pytestmark = pytest.mark.django_db


def submit(client, **body):
    return client.post("/api/runs/", body, format="json")


def test_submit_stores_a_queued_run_with_cleaned_params(api, bc_model, bc_data):
    response = submit(api["alice"], model_version=str(bc_model.pk), dataset_version=str(bc_data.pk))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["params"]["task"] == "classification"  # inferred from the model's outputs
    assert body["params"]["label_column"] == "diagnosis"  # the data set's label column
    assert body["params"]["batch_size"] == 256
    assert body["queue"] == "cpu"


def test_regression_task_inferred(api, diabetes_model, diabetes_data):
    response = submit(api["alice"], model_version=str(diabetes_model.pk), dataset_version=str(diabetes_data.pk))
    assert response.status_code == 201
    assert response.json()["params"]["task"] == "regression"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"kind": "astrology"}, 400, "unknown job kind 'astrology'"),
        ({"params": {"batch_size": 0}}, 400, "invalid params"),
        ({"params": {"label_column": "nope"}}, 400, "label column 'nope'"),
        ({"params": {"feature_columns": ["mean_radius", "zzz"]}}, 400, "zzz"),
        ({"params": {"backend": "tensorflow-magic"}}, 400, "unknown backend"),
        ({"params": {"device": "cuda"}}, 400, "no worker offers backend 'onnxruntime' on device 'cuda'"),
        ({"params": {"device": "tpu"}}, 400, "invalid params"),
        ({"params": {"task": "ranking"}}, 400, "invalid params"),
        ({"dataset_version": None}, 400, "needs a data set"),
    ],
)
def test_bad_submissions_are_rejected_before_queueing(api, bc_model, bc_data, body, status, fragment):
    payload = {"model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk), **body}
    response = api["alice"].post("/api/runs/", payload, format="json")
    assert response.status_code == status, response.json()
    assert fragment in str(response.json())
    assert EvaluationRun.objects.count() == 0


def test_viewer_cannot_submit(api, bc_model, bc_data):
    response = submit(api["bob"], model_version=str(bc_model.pk), dataset_version=str(bc_data.pk))
    assert response.status_code == 403


def test_cancel_queued_run_then_cancel_again_conflicts(api, bc_model, bc_data):
    run = submit(api["alice"], model_version=str(bc_model.pk), dataset_version=str(bc_data.pk)).json()
    response = api["alice"].post(f"/api/runs/{run['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = api["alice"].post(f"/api/runs/{run['id']}/cancel/")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


def test_viewer_cannot_cancel(api, bc_model, bc_data):
    run = submit(api["alice"], model_version=str(bc_model.pk), dataset_version=str(bc_data.pk)).json()
    assert api["bob"].post(f"/api/runs/{run['id']}/cancel/").status_code == 403


def test_openapi_schema_and_docs_are_served(api, client, alice):
    schema = api["alice"].get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    body = schema.json() if schema["Content-Type"].startswith("application/vnd.oai.openapi+json") else None
    text = schema.content.decode()
    assert "/api/model-versions/" in text and "/api/runs/{id}/cancel/" in text
    if body:
        assert body["info"]["title"] == "evalsvc API"
    client.force_login(alice)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html  # air-gapped: assets from static/
