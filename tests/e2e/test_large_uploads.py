"""A large upload is stored at once and validated by a real worker: validating → ready, or → failed."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.audit.models import AuditEntry
from tests.conftest import FIXTURES, stored_blobs
from tests.factories import make_world

pytestmark = [pytest.mark.e2e]


def _wait_until_decided(client: APIClient, url: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] != "validating":
            return body
        time.sleep(0.25)
    raise AssertionError(f"{url} still validating after {timeout} s")


def test_large_uploads_are_validated_by_the_worker(celery_worker_process, settings, tmp_path):
    settings.EVALSVC_INLINE_VALIDATION_BYTES = 1024  # every file here counts as large
    world = make_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world['alice']).key}")

    good = client.post(
        "/api/dataset-versions/",
        {
            "team": "alpha",
            "name": "bc",
            "label_column": "diagnosis",
            "file": SimpleUploadedFile("bc.csv", (FIXTURES / "breast_cancer.csv").read_bytes()),
        },
        format="multipart",
    )
    assert good.status_code == 202, good.json()
    assert good.json()["status"] == "validating"
    model = client.post(
        "/api/model-versions/",
        {
            "team": "alpha",
            "name": "bc",
            "file": SimpleUploadedFile("bc.onnx", (FIXTURES / "breast_cancer_logreg.onnx").read_bytes()),
        },
        format="multipart",
    )
    assert model.status_code == 202, model.json()

    before = stored_blobs()
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n" + "1,2\n" * 2000 + '4,"5\n')
    refused = client.post(
        "/api/dataset-versions/",
        {"team": "alpha", "name": "bad", "file": SimpleUploadedFile("bad.csv", bad.read_bytes())},
        format="multipart",
    )
    assert refused.status_code == 202, refused.json()
    assert len(stored_blobs() - before) == 1  # stored while it waits for the worker

    ready = _wait_until_decided(client, f"/api/dataset-versions/{good.json()['id']}/")
    log = celery_worker_process.log_path.read_text()[-3000:]
    assert ready["status"] == "ready", (ready, log)
    assert ready["rows"] == 569 and "diagnosis" in [c["name"] for c in ready["columns"]]
    ready_model = _wait_until_decided(client, f"/api/model-versions/{model.json()['id']}/")
    assert ready_model["status"] == "ready", (ready_model, log)
    assert ready_model["inputs"] == [{"name": "input", "dtype": "float32", "shape": [None, 30]}]

    failed = _wait_until_decided(client, f"/api/dataset-versions/{refused.json()['id']}/")
    assert failed["status"] == "failed", (failed, log)
    assert "quote" in failed["status_message"]
    assert stored_blobs() == before  # the refused file's bytes are gone
    assert AuditEntry.objects.filter(
        object_id=refused.json()["id"], action="dataset_version.validation_failed", actor_label="validation worker"
    ).exists()

    # Once ready, the versions run jobs as any other.
    submitted = client.post(
        "/api/runs/",
        {"model_version": ready_model["id"], "dataset_version": ready["id"], "params": {"batch_size": 64}},
        format="json",
    )
    assert submitted.status_code == 201, submitted.json()
