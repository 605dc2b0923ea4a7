"""Upload → register → submit → a real worker process runs it → result read back over the API."""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from sklearn import metrics as skm

from tests.conftest import FIXTURES
from tests.factories import make_world

pytestmark = [pytest.mark.e2e]


def wait_for(client: APIClient, run_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{run_id}/").json()
        seen.add(run["status"])
        if run["status"] in ("succeeded", "failed", "cancelled"):
            run["seen"] = seen
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")


def test_worker_runs_the_job_and_metrics_match_sklearn(celery_worker_process):
    world = make_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world['alice']).key}")

    # The worker published what it can run; submission relies on that.
    backends = client.get("/api/backends/").json()
    assert celery_worker_process.hostname in [w["hostname"] for w in backends["workers"]]
    assert any(
        o["backend"] == "onnxruntime" and o["device"] == "cpu" and o["queue"] == "cpu" for o in backends["offers"]
    )

    model = client.post(
        "/api/model-versions/",
        {
            "team": "alpha",
            "name": "bc",
            "file": SimpleUploadedFile("bc.onnx", (FIXTURES / "breast_cancer_logreg.onnx").read_bytes()),
        },
        format="multipart",
    )
    assert model.status_code == 201, model.json()
    data = client.post(
        "/api/dataset-versions/",
        {
            "team": "alpha",
            "name": "bc-all",
            "label_column": "diagnosis",
            "file": SimpleUploadedFile("bc.csv", (FIXTURES / "breast_cancer.csv").read_bytes()),
        },
        format="multipart",
    )
    assert data.status_code == 201, data.json()
    submitted = client.post(
        "/api/runs/",
        {"model_version": model.json()["id"], "dataset_version": data.json()["id"], "params": {"batch_size": 32}},
        format="json",
    )
    assert submitted.status_code == 201, submitted.json()
    assert submitted.json()["status"] == "queued"

    run = wait_for(client, submitted.json()["id"])
    assert run["status"] == "succeeded", (run["error"], celery_worker_process.log_path.read_text()[-3000:])
    assert run["worker"].startswith("e2e-")  # it ran in the worker process, not here
    assert run["progress"] == 1.0

    frame = pd.read_csv(FIXTURES / "breast_cancer.csv")
    y = frame.pop("diagnosis").to_numpy()
    session = ort.InferenceSession(str(FIXTURES / "breast_cancer_logreg.onnx"), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"input": frame.to_numpy(np.float32)})
    metrics = run["result"]["metrics"]
    assert run["result"]["rows"] == 569
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, label), abs=1e-12)
    assert metrics["precision"] == pytest.approx(skm.precision_score(y, label), abs=1e-12)
    assert metrics["recall"] == pytest.approx(skm.recall_score(y, label), abs=1e-12)
    assert metrics["f1"] == pytest.approx(skm.f1_score(y, label), abs=1e-12)
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-12)
    assert run["result"]["confusion_matrix"] == skm.confusion_matrix(y, label).tolist()


def test_worker_cancels_a_running_job(celery_worker_process, tmp_path):
    """A long job is cancelled mid-way: the worker stops at its next batch."""
    world = make_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world['alice']).key}")
    # ~23k rows in batches of 1: long enough to catch it running.
    frame = pd.read_csv(FIXTURES / "breast_cancer.csv")
    big = pd.concat([frame] * 40, ignore_index=True)
    path = tmp_path / "big.csv"
    big.to_csv(path, index=False)
    model = client.post(
        "/api/model-versions/",
        {
            "team": "alpha",
            "name": "bc",
            "file": SimpleUploadedFile("bc.onnx", (FIXTURES / "breast_cancer_logreg.onnx").read_bytes()),
        },
        format="multipart",
    ).json()
    with open(path, "rb") as handle:
        data = client.post(
            "/api/dataset-versions/",
            {"team": "alpha", "name": "big", "label_column": "diagnosis", "file": handle},
            format="multipart",
        ).json()
    run = client.post(
        "/api/runs/",
        {"model_version": model["id"], "dataset_version": data["id"], "params": {"batch_size": 1}},
        format="json",
    ).json()
    deadline = time.monotonic() + 60
    while client.get(f"/api/runs/{run['id']}/").json()["status"] != "running":
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)
    assert client.post(f"/api/runs/{run['id']}/cancel/").status_code == 200
    time.sleep(2)
    final = client.get(f"/api/runs/{run['id']}/").json()
    assert final["status"] == "cancelled"
    assert final["result"] is None
    assert final["progress"] < 1.0
