"""A monitor's schedule fires from Celery beat (database schedule), a real worker checks, the webhook arrives signed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.monitoring.models import Alert, MonitorCheck
from evalsvc.monitoring.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook
from evalsvc.registry.services import dataset_version_register, model_version_register
from tests.conftest import FIXTURES
from tests.e2e.conftest import ROOT, _database_url
from tests.evalsvc.monitoring.conftest import SHIFTED, drifted_rows, webhook_server  # noqa: F401 - fixture
from tests.factories import make_world

pytestmark = [pytest.mark.e2e]


def test_scheduled_check_fires_from_beat_and_alerts(celery_worker_process, webhook_server, tmp_path):  # noqa: F811
    url, received = webhook_server
    world = make_world()
    alice = world["alice"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    path = FIXTURES / "breast_cancer_logreg.onnx"
    model = model_version_register(user=alice, team=world["alpha"], name="bc", path=str(path), filename=path.name)
    reference = FIXTURES / "breast_cancer_test.csv"
    data = dataset_version_register(
        user=alice, team=world["alpha"], name="bc-ref", path=str(reference), filename=reference.name
    )
    response = client.post(
        "/api/monitors/",
        {
            "name": "every-minute",
            "model_version": str(model.pk),
            "reference_dataset": str(data.pk),
            "schedule": "* * * * *",
            "webhook_url": url,
        },  # fmt: skip
        format="json",
    )
    assert response.status_code == 201, response.json()
    monitor = response.json()
    rows = drifted_rows(pd.read_csv(reference))
    assert client.post(f"/api/monitors/{monitor['id']}/batches/", {"rows": rows}, format="json").status_code == 201

    # Beat starts now; the cron fires at the next minute boundary.
    process, log_path = _start_beat(tmp_path)
    try:
        deadline = time.monotonic() + 150
        check = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"beat exited:\n{log_path.read_text()}")
            check = MonitorCheck.objects.filter(monitor_id=monitor["id"], status="succeeded").first()
            if check is not None and received:
                break
            time.sleep(0.5)
        assert check is not None, f"no scheduled check ran:\n{log_path.read_text()[-3000:]}"
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert check.trigger == "schedule" and check.drift and set(SHIFTED) <= set(check.result["drifted_features"])
    assert check.rows == len(rows)
    # The alert went out from the worker, signed with the monitor's secret.
    assert received, "the webhook was not received"
    message = received[0]
    headers = {k.lower(): v for k, v in message["headers"].items()}
    payload = verify_webhook(
        monitor["webhook_secret"], message["body"], headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
    )
    assert payload["check"]["id"] == str(check.pk)
    alert = Alert.objects.get(check_run=check, channel="webhook")
    deadline = time.monotonic() + 30
    while alert.status == "pending" and time.monotonic() < deadline:
        time.sleep(0.2)
        alert.refresh_from_db()
    assert alert.status == "sent"


def _start_beat(tmp_path):
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalsvc.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EVALSVC_VAR_DIR": str(settings.VAR_DIR),
    }
    log_path = tmp_path / "beat.log"
    log = open(log_path, "w")  # noqa: SIM115 - the process writes to it until it ends
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evalsvc",
            "beat",
            "-S",
            "django",
            "--max-interval",
            "1",
            "--loglevel=INFO",
            "--pidfile",
            str(tmp_path / "beat.pid"),
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log_path
