"""The browser forms call the same services as the API and show their errors."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.registry.models import DatasetVersion, ModelVersion
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def test_model_form_registers_and_shows_identity(signed_in):
    content = (FIXTURES / "breast_cancer_logreg.onnx").read_bytes()
    response = signed_in.post(
        "/models/upload/",
        {"team": "alpha", "name": "bc", "file": SimpleUploadedFile("bc.onnx", content), "notes": "first"},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert hashlib.sha256(content).hexdigest() in html
    assert "skl2onnx" in html and "probabilities" in html and "[?, 30]" in html
    assert ModelVersion.objects.get().notes == "first"


def test_model_form_shows_the_error_and_stores_nothing(signed_in):
    response = signed_in.post(
        "/models/upload/", {"team": "alpha", "name": "bc", "file": SimpleUploadedFile("bc.onnx", b"not a model")}
    )
    assert response.status_code == 400
    assert "not an ONNX model" in response.content.decode()
    assert ModelVersion.objects.count() == 0


def test_model_form_rejects_bad_processing_json(signed_in):
    content = (FIXTURES / "breast_cancer_logreg.onnx").read_bytes()
    response = signed_in.post(
        "/models/upload/",
        {"team": "alpha", "name": "bc", "file": SimpleUploadedFile("bc.onnx", content), "processing": "{nope"},
    )
    assert response.status_code == 400
    assert ModelVersion.objects.count() == 0


def test_viewer_sees_no_team_to_upload_to(client, bob):
    client.force_login(bob)
    response = client.post(
        "/models/upload/",
        {"team": "alpha", "name": "x", "file": SimpleUploadedFile("m.onnx", b"x")},
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_dataset_form_and_schema_page(signed_in):
    content = (FIXTURES / "breast_cancer_test.csv").read_bytes()
    response = signed_in.post(
        "/datasets/upload/",
        {"team": "alpha", "name": "bc", "label_column": "diagnosis", "file": SimpleUploadedFile("bc.csv", content)},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "mean_radius" in html and "171" in html
    assert DatasetVersion.objects.get().label_column == "diagnosis"


def test_dataset_form_reports_ragged_rows(signed_in):
    response = signed_in.post(
        "/datasets/upload/",
        {"team": "alpha", "name": "bad", "file": SimpleUploadedFile("bad.csv", b"a,b\n1,2\n3\n")},
    )
    assert response.status_code == 400
    assert "line 3" in response.content.decode()


def test_run_form_submits_and_redirects_to_the_run(signed_in, bc_model, bc_data):
    response = signed_in.post(
        "/runs/new/",
        {"model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk), "batch_size": 32, "task": ""},
    )
    run = EvaluationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.params["batch_size"] == 32
    page = signed_in.get(f"/runs/{run.pk}/")
    assert b"Queued" in page.content and b"Cancel" in page.content
    cancelled = signed_in.post(f"/runs/{run.pk}/cancel/", follow=True)
    assert b"cancelled" in cancelled.content.lower()
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_home_lists_the_teams_objects(signed_in, bc_model, bc_data):
    html = signed_in.get("/").content.decode()
    assert "bc v1" in html and "bc-test v1" in html
