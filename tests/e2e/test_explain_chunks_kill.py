"""A real worker runs an explanation split into chunks; its pool process is killed mid-chunk, and nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.evaluations.models import EvaluationRun, RunChunk
from tests.conftest import FIXTURES
from tests.e2e.test_worker_flow import wait_for
from tests.factories import make_world

pytestmark = [pytest.mark.e2e]

CHUNK_ROWS = 32  # 64 explained rows: two chunks of two blocks of 16 rows


@pytest.fixture(scope="module", autouse=True)
def _small_chunks():
    """The module's worker process starts with this setting (autouse: before the worker fixture)."""
    saved = os.environ.get("EVALSVC_EXPLAIN_CHUNK_ROWS")
    os.environ["EVALSVC_EXPLAIN_CHUNK_ROWS"] = str(CHUNK_ROWS)
    yield
    if saved is None:
        os.environ.pop("EVALSVC_EXPLAIN_CHUNK_ROWS", None)
    else:
        os.environ["EVALSVC_EXPLAIN_CHUNK_ROWS"] = saved


def _pool_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_a_chunk_whose_worker_process_is_killed_is_redone_and_the_result_is_unchanged(celery_worker_process):
    from workers.tasks.explain import _compute

    world = make_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world['alice']).key}")
    model = client.post(
        "/api/model-versions/",
        {"team": "alpha", "name": "bc",
         "file": SimpleUploadedFile("bc.onnx", (FIXTURES / "breast_cancer_logreg.onnx").read_bytes())},
        format="multipart",
    )  # fmt: skip
    assert model.status_code == 201, model.json()
    data = client.post(
        "/api/dataset-versions/",
        {"team": "alpha", "name": "bc-all", "label_column": "diagnosis",
         "file": SimpleUploadedFile("bc.csv", (FIXTURES / "breast_cancer.csv").read_bytes())},
        format="multipart",
    )  # fmt: skip
    assert data.status_code == 201, data.json()
    params = {
        "method": "kernel_shap",
        "method_params": {"nsamples": 2048, "seed": 11},  # a block of 16 rows takes seconds: time to kill one
        "rows": {"indices": [5]},
        "global_rows": 64,
    }
    submitted = client.post(
        "/api/runs/",
        {"kind": "explain", "model_version": model.json()["id"], "dataset_version": data.json()["id"],
         "params": params},
        format="json",
    )  # fmt: skip
    assert submitted.status_code == 201, submitted.json()
    run_id = submitted.json()["id"]

    # Mid-chunk: the first chunk has reported its first block and is explaining its second.
    deadline = time.monotonic() + 180
    while not RunChunk.objects.filter(run_id=run_id, index=0, done=False, rows_done=16).exists():
        assert time.monotonic() < deadline, celery_worker_process.log_path.read_text()[-3000:]
        assert EvaluationRun.objects.get(pk=run_id).status in ("queued", "running")
        time.sleep(0.05)
    children = _pool_children(celery_worker_process.process.pid)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)

    run = wait_for(client, run_id, timeout=300)
    log = celery_worker_process.log_path.read_text()
    assert run["status"] == "succeeded", (run["error"], log[-3000:])
    assert "WorkerLostError" in log or "signal 9" in log  # the worker saw its process die
    chunks = list(RunChunk.objects.filter(run_id=run_id).order_by("index"))
    assert [(c.start, c.stop) for c in chunks] == [(0, 32), (32, 64)]
    assert [c.attempts for c in chunks] == [2, 1]  # the killed chunk was redone, once
    assert all(c.done and c.rows_done == c.stop - c.start for c in chunks)
    assert run["result"]["budget"]["parts"] == 2

    # The same explanation in one pass, here, as an unsplit job computes it: the same attributions and scores.
    single = _compute(EvaluationRun.objects.get(pk=run_id), lambda done, total: None)
    chunked = run["result"]
    for result in (single, chunked):
        for key in ("explain_seconds", "model_seconds", "parts"):
            result["budget"].pop(key, None)
        result.pop("backend")  # names the process that loaded the model
    assert chunked["global"] == single["global"]
    assert chunked["explained"] == single["explained"]
    assert chunked == single
