"""Broker and database outages: no job lost, none stuck, none run twice.

Both tests break private copies of the services only: a Redis server of
their own as the broker, and a TCP proxy between the worker and PostgreSQL
that is cut as a database restart would cut it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.recovery import UNSENT_AFTER_S
from evalsvc.evaluations.services import UNSENT_MESSAGE
from tests.conftest import FIXTURES, ROOT
from tests.e2e.conftest import _database_url, _wait_until_published
from tests.factories import make_world
from tests.support.outages import RedisServer, TcpProxy

pytestmark = [pytest.mark.e2e]

#: How long the broker stays down while submissions keep coming.
BROKER_OUTAGE_S = 30
#: How long the worker's database stays unreachable mid-job.
DATABASE_OUTAGE_S = 10
HEARTBEAT_S = 2


@contextlib.contextmanager
def _broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at ``url`` (the web side's producer), and back afterwards."""
    from evalsvc.celery import app

    old = app.conf.broker_url, app.conf.broker_write_url

    def reset() -> None:  # the next send opens a pool on the new URL; the old one is left to the collector
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = app.conf.broker_write_url = url
    reset()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_write_url = old
        reset()


def _start_worker(tmp_path: Path, tag: str, *, broker: str, database: str) -> tuple[subprocess.Popen, Path]:
    from django.conf import settings

    from evalsvc.celery import app

    name = f"{tag}-{uuid.uuid4().hex[:6]}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalsvc.settings.test",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": broker,
        "EVALSVC_VAR_DIR": str(settings.VAR_DIR),
        "EVALSVC_HEARTBEAT_S": str(HEARTBEAT_S),
        "DATABASE_CONN_MAX_AGE": "0",
    }
    log_path = tmp_path / f"{tag}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "evalsvc", "worker", "-Q", "cpu", "-c", "1", "-n", name,
         "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    _wait_until_published(app, process, name, log_path)
    return process, log_path


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _artifacts(client: APIClient, tmp_path: Path, copies: int) -> tuple[str, str]:
    frame = pd.read_csv(FIXTURES / "breast_cancer.csv")
    path = tmp_path / "rows.csv"
    pd.concat([frame] * copies, ignore_index=True).to_csv(path, index=False)
    model = client.post(
        "/api/model-versions/",
        {"team": "alpha", "name": "bc",
         "file": SimpleUploadedFile("bc.onnx", (FIXTURES / "breast_cancer_logreg.onnx").read_bytes())},
        format="multipart",
    ).json()  # fmt: skip
    with open(path, "rb") as handle:
        data = client.post(
            "/api/dataset-versions/",
            {"team": "alpha", "name": "rows", "label_column": "diagnosis", "file": handle},
            format="multipart",
        ).json()
    return model["id"], data["id"]


def _wait_finished(run_ids: list[str], timeout: float, log: Path) -> list[EvaluationRun]:
    deadline = time.monotonic() + timeout
    while True:
        runs = list(EvaluationRun.objects.filter(pk__in=run_ids))
        if all(r.status not in ("queued", "running") for r in runs):
            return runs
        assert time.monotonic() < deadline, (
            [(str(r.pk), r.status, r.progress_message) for r in runs],
            log.read_text()[-3000:],
        )
        time.sleep(0.5)


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_submissions_while_the_broker_is_down_are_sent_when_it_is_back(transactional_db, tmp_path, client):
    world = make_world()
    api = _client(world["alice"])
    redis = RedisServer(tmp_path)
    redis.start()
    worker = None
    try:
        with _broker(redis.url):
            worker, log = _start_worker(tmp_path, "broker", broker=redis.url, database=_database_url())
            model, data = _artifacts(api, tmp_path, copies=1)
            body = {"model_version": model, "dataset_version": data, "params": {}}
            before = api.post("/api/runs/", body, format="json").json()
            assert before["status"] == "queued" and before["progress_message"] == "waiting for a worker"

            redis.stop()
            down_at = time.monotonic()
            answers, seconds = [], []
            while time.monotonic() - down_at < BROKER_OUTAGE_S - 5:
                started = time.monotonic()
                answers.append(api.post("/api/runs/", body, format="json"))
                seconds.append(time.monotonic() - started)
                time.sleep(4)
            # The browser form, too: it lands on the run's page, which says what the run waits for.
            client.force_login(world["alice"])
            form = client.post(
                "/runs/new/", {"model_version": model, "dataset_version": data, "kind": "evaluate", "batch_size": 256}
            )
            assert form.status_code == 302, form.content.decode()[-2000:]
            page = client.get(form["Location"]).content.decode()
            assert "waiting for the job queue" in page
            assert len(answers) >= 5
            for answer in answers:
                assert answer.status_code == 201, answer.content
                assert answer.json()["status"] == "queued" and answer.json()["progress_message"] == UNSENT_MESSAGE
            waiting = [a.json()["id"] for a in answers] + [form["Location"].rstrip("/").split("/")[-1]]
            # (the worker's heartbeat keeps trying meanwhile, each try claiming a run for the moment it takes)
            still = EvaluationRun.objects.filter(pk__in=waiting, status="queued", progress_message=UNSENT_MESSAGE)
            assert still.count() == len(waiting)
            assert max(seconds) < 10, seconds  # refused quickly, not hung on the broker
            time.sleep(max(0.0, BROKER_OUTAGE_S - (time.monotonic() - down_at)))

            redis.start()  # same port, same append-only file: the message sent before the outage is kept
            back_at = time.monotonic()
            # Nobody calls anything: the worker's heartbeat sends the waiting runs once they are
            # UNSENT_AFTER_S old and it hears the broker again.
            runs = _wait_finished([before["id"], *waiting], UNSENT_AFTER_S + 180, log)
            recovered_s = time.monotonic() - back_at
            assert {r.status for r in runs} == {"succeeded"}, [(r.status, r.error) for r in runs]
            assert all(r.attempts == 1 for r in runs)  # each ran once
            print(
                f"broker down {BROKER_OUTAGE_S} s: {len(waiting)} submissions answered 201 in "
                f"{min(seconds):.2f}-{max(seconds):.2f} s, all {len(runs)} runs succeeded "
                f"{recovered_s:.0f} s after it came back"
            )
    finally:
        _stop(worker)
        redis.stop()


def test_a_database_restart_mid_job_costs_progress_writes_not_the_job(transactional_db, tmp_path):
    from django.conf import settings
    from django.db import connection

    world = make_world()
    api = _client(world["alice"])
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    through_proxy = _database_url().replace(f":{db['PORT'] or 5432}/", f":{proxy.port}/")
    assert str(proxy.port) in through_proxy
    worker = None
    try:
        worker, log = _start_worker(tmp_path, "db", broker=settings.CELERY_BROKER_URL, database=through_proxy)
        model, data = _artifacts(api, tmp_path, copies=40)
        run = api.post(
            "/api/runs/",
            {"model_version": model, "dataset_version": data, "params": {"batch_size": 1}},
            format="json",
        ).json()
        deadline = time.monotonic() + 120
        while (current := EvaluationRun.objects.get(pk=run["id"])).progress < 0.05:
            assert current.status in ("queued", "running"), current.error
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

        proxy.cut()  # every connection of the worker dropped, new ones refused: a restart
        cut_at = time.monotonic()
        time.sleep(DATABASE_OUTAGE_S)
        proxy.restore()

        (final,) = _wait_finished([run["id"]], 300, log)
        assert final.status == "succeeded", (final.error, log.read_text()[-3000:])
        assert final.attempts == 1  # it went on through the outage rather than starting over
        assert final.result["rows"] == 569 * 40
        assert proxy.refused > 0  # the worker did try to reach the database while it was down
        # What the outage cost: progress writes skipped while it lasted or, where the rows were all read before
        # the cut (a fast machine), the result's save waiting for the database; never the job.
        text = log.read_text()
        assert "progress not recorded" in text or "could not save the result, waiting for the database" in text, text
        print(
            f"database cut for {DATABASE_OUTAGE_S} s at {current.progress:.0%}: {proxy.refused} connections refused, "
            f"the job succeeded {time.monotonic() - cut_at:.0f} s after the cut, on its first attempt"
        )
    finally:
        _stop(worker)
        proxy.close()
        from evalsvc.celery import app

        app.control.purge()
