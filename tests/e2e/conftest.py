"""A real Celery worker process on the real Redis broker, reading the test database: one per test module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    hostname: str
    log_path: Path
    published: dict[str, Any]  # the status it published when it started (queues, backends, host)


@pytest.fixture(scope="module")
def _celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """One real worker process per test module: starting one takes longer than most tests it serves.

    Tests get it through ``celery_worker_process``, which hands it over idle, with an empty queue.
    """
    from django.conf import settings

    from evalsvc.celery import app

    if not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.fail("the end-to-end tests need a real broker: set CELERY_BROKER_URL to Redis or RabbitMQ")
    app.control.purge()  # nothing left over from earlier tests
    name = f"e2e-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalsvc.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EVALSVC_VAR_DIR": str(settings.VAR_DIR),
    }
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    log = open(log_path, "w")  # noqa: SIM115 - kept open for the process's lifetime
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evalsvc",
            "worker",
            "-Q",
            "cpu,registry",
            "-c",
            "1",
            "-n",
            name,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with django_db_blocker.unblock():
            published = _wait_until_published(app, process, name, log_path)
        yield WorkerProcess(process=process, hostname=name, log_path=log_path, published=published)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        with django_db_blocker.unblock():
            _wait_for_worker_connections_to_close()
            # Its heartbeat may have written its row again after the last test's flush.
            from evalsvc.fleet.models import WorkerStatus

            WorkerStatus.objects.filter(hostname=name).delete()


def _wait_until_published(app: Any, process: subprocess.Popen, name: str, log_path: Path) -> dict[str, Any]:
    """Wait until the worker answers a ping and has published its status; return what it published."""
    from evalsvc.fleet.models import WorkerStatus

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker exited at start:\n{log_path.read_text()}")
        if app.control.ping(destination=[name], timeout=1.0):
            status = WorkerStatus.objects.filter(hostname=name).first()
            if status is not None:
                return {"queues": status.queues, "backends": status.backends, "host": status.host}
            time.sleep(0.2)
    pytest.fail(f"the worker did not answer a ping and publish its status within 90 s:\n{log_path.read_text()}")


@pytest.fixture
def celery_worker_process(_celery_worker, transactional_db):
    """The module's worker, idle, with an empty queue and its published status in the test database."""
    from evalsvc.celery import app
    from evalsvc.fleet.models import WorkerStatus
    from evalsvc.fleet.services import worker_status_publish

    app.control.purge()
    if not WorkerStatus.objects.filter(hostname=_celery_worker.hostname).exists():
        # An earlier test's flush removed what the worker published at start; its heartbeat would
        # publish the same again, but only every HEARTBEAT_S.
        worker_status_publish(hostname=_celery_worker.hostname, **_celery_worker.published)
    yield _celery_worker
    app.control.purge()
    _wait_until_idle(app, _celery_worker)


def _wait_until_idle(app: Any, worker: WorkerProcess, timeout: float = 60.0) -> None:
    """Let a job the test left running (a cancelled one stops at its next batch) end before the flush."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited during the test:\n{worker.log_path.read_text()[-3000:]}")
        inspect = app.control.inspect(destination=[worker.hostname], timeout=1.0)
        active, reserved = inspect.active(), inspect.reserved()  # None: no answer yet
        if (
            active is not None
            and reserved is not None
            and not (active.get(worker.hostname) or reserved.get(worker.hostname))
        ):
            return
        time.sleep(0.2)
    pytest.fail(f"the worker was still busy {timeout} s after the test:\n{worker.log_path.read_text()[-3000:]}")


def _wait_for_worker_connections_to_close(timeout: float = 15.0) -> None:
    """The pool's child processes may outlive the main process by a moment; the
    test database can only be flushed and dropped once their sessions are gone."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.2)
