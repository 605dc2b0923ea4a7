"""A real Celery worker process on the real Redis broker, reading the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db, settings, tmp_path):
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
    log_path = tmp_path / "worker.log"
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
            "cpu",
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
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker exited at start:\n{log_path.read_text()}")
        if app.control.ping(destination=[name], timeout=1.0):
            break
    else:
        process.terminate()
        pytest.fail(f"the worker did not answer a ping within 90 s:\n{log_path.read_text()}")
    process.log_path = log_path  # type: ignore[attr-defined]
    process.hostname = name  # type: ignore[attr-defined]
    yield process
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()
    _wait_for_worker_connections_to_close()


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
