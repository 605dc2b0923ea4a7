"""Large uploads' validations survive what runs survive: the broker down at upload, a worker killed mid-way.

The broker outage uses a private Redis server, never the shared one; the
killed worker is a real Celery worker on the ``registry`` queue, SIGKILLed
with its pool child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.registry import deferred
from evalsvc.registry.models import DatasetVersion
from tests.conftest import FIXTURES, ROOT
from tests.e2e.conftest import _database_url, _wait_until_published
from tests.e2e.test_outages import _broker, _stop
from tests.factories import make_world
from tests.support.outages import RedisServer

pytestmark = [pytest.mark.e2e]

BROKER_OUTAGE_S = 15
HEARTBEAT_S = 2


def _start_worker(tmp_path: Path, tag: str, *, broker: str) -> tuple[subprocess.Popen, str, Path]:
    from django.conf import settings

    from evalsvc.celery import app

    name = f"{tag}-{uuid.uuid4().hex[:6]}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalsvc.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "EVALSVC_VAR_DIR": str(settings.VAR_DIR),
        "EVALSVC_HEARTBEAT_S": str(HEARTBEAT_S),
    }
    log_path = tmp_path / f"{tag}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "evalsvc", "worker", "-Q", "registry", "-c", "1", "-n", name,
         "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    _wait_until_published(app, process, name, log_path)
    return process, name, log_path


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _wait_decided(pk: str, timeout: float, log: Path) -> DatasetVersion:
    deadline = time.monotonic() + timeout
    while (version := DatasetVersion.objects.get(pk=pk)).status == "validating":
        assert time.monotonic() < deadline, (version.status_message, log.read_text()[-3000:])
        time.sleep(0.5)
    return version


def test_a_large_upload_while_the_broker_is_down_is_validated_once_it_is_back(transactional_db, tmp_path, settings):
    settings.EVALSVC_INLINE_VALIDATION_BYTES = 1024  # validated by the worker
    world = make_world()
    api = _client(world["alice"])
    redis = RedisServer(tmp_path)
    redis.start()
    worker = None
    try:
        with _broker(redis.url):
            worker, name, log = _start_worker(tmp_path, "broker", broker=redis.url)
            redis.stop()
            started = time.monotonic()
            response = api.post(
                "/api/dataset-versions/",
                {"team": "alpha", "name": "bc", "label_column": "diagnosis",
                 "file": SimpleUploadedFile("bc.csv", (FIXTURES / "breast_cancer.csv").read_bytes())},
                format="multipart",
            )  # fmt: skip
            answered_s = time.monotonic() - started
            assert response.status_code == 202, response.content
            body = response.json()
            # Stored, validating, and saying what it waits for: not failed, not lost.
            assert body["status"] == "validating" and body["status_message"] == deferred.UNSENT_MESSAGE
            assert DatasetVersion.objects.get(pk=body["id"]).validation_task_id == ""
            assert answered_s < 10, answered_s
            time.sleep(BROKER_OUTAGE_S)
            waiting = DatasetVersion.objects.get(pk=body["id"])
            assert waiting.status == "validating" and waiting.validation_attempts == 0

            redis.start()  # nobody calls anything: the worker's heartbeat sends it once it hears the broker
            back_at = time.monotonic()
            done = _wait_decided(body["id"], deferred.UNSENT_AFTER_S + 120, log)
            assert done.status == "ready", done.status_message
            assert done.rows == 569 and done.status_message == ""
            assert done.validation_attempts == 1 and done.validation_worker == name  # validated once
            print(f"broker down {BROKER_OUTAGE_S} s: upload answered 202 in {answered_s:.2f} s, "
                  f"validated {time.monotonic() - back_at:.0f} s after the broker came back")  # fmt: skip
    finally:
        _stop(worker)
        redis.stop()


def _slow_parquet(path: Path, row_groups: int) -> None:
    """A small file (zeros compress to nothing) that takes seconds to validate: 200,000 rows per group."""
    block = pa.table({**{f"f{i}": pa.array([0.0] * 200_000) for i in range(30)}, "label": pa.array([0] * 200_000)})
    with pq.ParquetWriter(path, block.schema, compression="zstd") as writer:
        for _ in range(row_groups):
            writer.write_table(block, row_group_size=200_000)


def test_a_validation_whose_worker_was_killed_is_requeued_and_done_once(
    transactional_db, tmp_path, settings, monkeypatch
):
    from evalsvc.celery import app
    from evalsvc.fleet.selectors import live_workers

    settings.EVALSVC_INLINE_VALIDATION_BYTES = 1024
    app.control.purge()
    world = make_world()
    api = _client(world["alice"])
    path = tmp_path / "slow.parquet"
    _slow_parquet(path, row_groups=200)  # 40 M rows
    first, first_name, first_log = _start_worker(tmp_path, "first", broker=settings.CELERY_BROKER_URL)
    second = None
    try:
        with open(path, "rb") as handle:
            response = api.post(
                "/api/dataset-versions/",
                {"team": "alpha", "name": "slow", "label_column": "label", "file": handle},
                format="multipart",
            )
        assert response.status_code == 202, response.content
        pk = response.json()["id"]
        deadline = time.monotonic() + 60
        while DatasetVersion.objects.get(pk=pk).validation_worker != first_name:
            assert time.monotonic() < deadline, first_log.read_text()[-2000:]
            time.sleep(0.1)
        old_task = DatasetVersion.objects.get(pk=pk).validation_task_id

        # The worker's main process dies mid-validation, with its pool child: a lost host.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        for child in subprocess.run(["pgrep", "-f", first_name], capture_output=True, text=True).stdout.split():
            os.kill(int(child), signal.SIGKILL)
        time.sleep(2)
        assert DatasetVersion.objects.get(pk=pk).status == "validating"  # stuck until something notices

        # What beat does every 30 s, with the staleness window shortened for the test.
        monkeypatch.setattr("evalsvc.fleet.selectors.STALE_AFTER_S", 1)
        time.sleep(1.5)
        live = set(live_workers().values_list("hostname", flat=True))
        recovered = deferred.validations_of_lost_workers_recover(live=live, stale_after_s=1)
        assert [(r.version_id, r.worker, r.action) for r in recovered] == [(pk, first_name, "requeued")]
        requeued = DatasetVersion.objects.get(pk=pk)
        assert requeued.status == "validating" and first_name in requeued.status_message
        assert requeued.validation_task_id and requeued.validation_task_id != old_task

        monkeypatch.setattr("evalsvc.fleet.selectors.STALE_AFTER_S", 90)
        second, second_name, second_log = _start_worker(tmp_path, "second", broker=settings.CELERY_BROKER_URL)
        done = _wait_decided(pk, 240, second_log)
        assert done.status == "ready", done.status_message
        assert done.rows == 40_000_000 and done.status_message == ""
        assert done.validation_worker == second_name and done.validation_attempts == 2  # one start on each
        # The old message, should the broker hand it out after its timeout, is skipped.
        assert deferred.artifact_validate(kind="dataset_version", version_id=pk, task_id=old_task) == "skipped"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        app.control.purge()
