"""A real worker process splits a large evaluation into chunks, runs them as a group and merges them."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.evaluations.models import EvaluationRun, RunChunk
from tests.conftest import FIXTURES
from tests.e2e.test_worker_flow import wait_for
from tests.factories import make_world

pytestmark = [pytest.mark.e2e]

CHUNK_ROWS = 200  # the 569 breast-cancer rows make three chunks


@pytest.fixture(scope="module", autouse=True)
def _small_chunks():
    """The module's worker process starts with this setting (autouse: before the worker fixture)."""
    saved = os.environ.get("EVALSVC_CHUNK_ROWS")
    os.environ["EVALSVC_CHUNK_ROWS"] = str(CHUNK_ROWS)
    yield
    if saved is None:
        os.environ.pop("EVALSVC_CHUNK_ROWS", None)
    else:
        os.environ["EVALSVC_CHUNK_ROWS"] = saved


def test_chunked_evaluation_equals_the_single_worker_result(celery_worker_process):
    from workers.tasks.evaluate import _compute

    world = make_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world['alice']).key}")
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

    run = wait_for(client, submitted.json()["id"])
    log = celery_worker_process.log_path.read_text()
    assert run["status"] == "succeeded", (run["error"], log[-3000:])
    assert run["progress"] == 1.0
    chunks = list(RunChunk.objects.filter(run_id=run["id"]).order_by("index"))
    assert [(c.start, c.stop) for c in chunks] == [(0, 190), (190, 379), (379, 569)]
    assert all(c.done and c.rows_done == c.stop - c.start for c in chunks)
    assert log.count("evalsvc.chunk[") >= 3 and "evalsvc.chunk_merge[" in log  # the worker ran them

    # The same run computed in one pass, here, as an unsplit job stores it.
    single = _compute(EvaluationRun.objects.get(pk=run["id"]), lambda done, total: None)
    chunked = run["result"]
    assert single["rows"] == chunked["rows"] == 569
    single.pop("duration_s"), chunked.pop("duration_s")
    assert chunked == single


def test_cancel_stops_the_remaining_chunks(celery_worker_process, tmp_path):
    world = make_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world['alice']).key}")
    frame = pd.read_csv(FIXTURES / "breast_cancer.csv")
    path = tmp_path / "bc8.csv"
    pd.concat([frame] * 8, ignore_index=True).to_csv(path, index=False)  # 4552 rows: 23 chunks
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
            {"team": "alpha", "name": "bc8", "label_column": "diagnosis", "file": handle},
            format="multipart",
        ).json()
    run = client.post(
        "/api/runs/",
        {"model_version": model["id"], "dataset_version": data["id"], "params": {"batch_size": 1}},
        format="json",
    ).json()
    deadline = time.monotonic() + 60
    while "rows in 23 chunks" not in client.get(f"/api/runs/{run['id']}/").json()["progress_message"]:
        assert time.monotonic() < deadline, "no chunk reported progress"
        time.sleep(0.05)
    assert client.post(f"/api/runs/{run['id']}/cancel/").status_code == 200
    time.sleep(3)
    final = client.get(f"/api/runs/{run['id']}/").json()
    assert final["status"] == "cancelled"
    assert final["result"] is None
    done = RunChunk.objects.filter(run_id=run["id"], done=True).count()
    assert done < 23
    deadline = time.monotonic() + 60  # the chunks still queued find the run cancelled and do nothing
    while "succeeded in" not in (log := celery_worker_process.log_path.read_text()) or log.count(": 'skipped'") < 1:
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.2)
    assert client.get(f"/api/runs/{run['id']}/").json()["status"] == "cancelled"
