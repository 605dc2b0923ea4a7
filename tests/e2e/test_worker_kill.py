"""A worker killed with SIGKILL mid-job: its run is requeued within the heartbeat window, and runs once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.evaluations import recovery
from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_start
from tests.conftest import FIXTURES, ROOT
from tests.e2e.conftest import _database_url, _wait_until_published
from tests.factories import make_world

pytestmark = [pytest.mark.e2e]


def _start_worker(tmp_path, tag: str):
    from django.conf import settings

    from evalsvc.celery import app

    name = f"kill-{tag}-{uuid.uuid4().hex[:6]}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalsvc.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EVALSVC_VAR_DIR": str(settings.VAR_DIR),
    }
    log_path = tmp_path / f"{tag}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "evalsvc", "worker", "-Q", "cpu", "-c", "1", "-n", name,
         "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    _wait_until_published(app, process, name, log_path)
    return process, name, log_path


def test_a_run_whose_worker_was_killed_is_requeued_and_finishes_once(transactional_db, tmp_path, monkeypatch):
    from evalsvc.celery import app

    app.control.purge()
    world = make_world()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world['alice']).key}")
    frame = pd.read_csv(FIXTURES / "breast_cancer.csv")
    path = tmp_path / "big.csv"
    pd.concat([frame] * 20, ignore_index=True).to_csv(path, index=False)
    first, first_name, first_log = _start_worker(tmp_path, "first")
    second = None
    try:
        model = client.post(
            "/api/model-versions/",
            {"team": "alpha", "name": "bc",
             "file": SimpleUploadedFile("bc.onnx", (FIXTURES / "breast_cancer_logreg.onnx").read_bytes())},
            format="multipart",
        ).json()  # fmt: skip
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
            assert time.monotonic() < deadline, first_log.read_text()[-2000:]
            time.sleep(0.1)
        old_task = EvaluationRun.objects.get(pk=run["id"]).celery_task_id

        # The worker's main process dies: no redelivery for the broker's visibility timeout.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        for child in subprocess.run(["pgrep", "-f", first_name], capture_output=True, text=True).stdout.split():
            os.kill(int(child), signal.SIGKILL)  # its pool child too: a lost host takes everything
        time.sleep(2)
        assert client.get(f"/api/runs/{run['id']}/").json()["status"] == "running"  # stuck, as before the fix

        # What beat does every 30 s, with the staleness window shortened for the test.
        monkeypatch.setattr(recovery, "STALE_AFTER_S", 1)
        monkeypatch.setattr("evalsvc.fleet.selectors.STALE_AFTER_S", 1)
        time.sleep(1.5)
        recovered = recovery.runs_of_lost_workers_recover()
        assert [(r.run_id, r.worker, r.action) for r in recovered] == [(run["id"], first_name, "requeued")]
        requeued = EvaluationRun.objects.get(pk=run["id"])
        assert requeued.status == "queued" and first_name in requeued.progress_message
        assert requeued.celery_task_id and requeued.celery_task_id != old_task

        monkeypatch.setattr("evalsvc.fleet.selectors.STALE_AFTER_S", 90)
        second, second_name, second_log = _start_worker(tmp_path, "second")
        deadline = time.monotonic() + 240
        while (final := client.get(f"/api/runs/{run['id']}/").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, second_log.read_text()[-2000:]
            time.sleep(0.5)
        assert final["status"] == "succeeded", final["error"]
        done = EvaluationRun.objects.get(pk=run["id"])
        assert done.worker == second_name and done.attempts == 2  # once on each worker, completed once
        # The old message, should the broker hand it out after its timeout, no longer claims the run.
        assert run_start(run_id=run["id"], worker="late@localhost", task_id=old_task) is None
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        app.control.purge()
