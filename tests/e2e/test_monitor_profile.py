"""A monitor's reference profile is built by a real worker when the reference is set, and again when it changes."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.monitoring.models import Monitor, MonitorCheck
from evalsvc.registry.services import dataset_version_register, model_version_register
from tests.conftest import FIXTURES
from tests.evalsvc.monitoring.conftest import drifted_rows
from tests.factories import make_world
from workers.tasks.drift import reference_profile_path

pytestmark = [pytest.mark.e2e]


def _path(monitor: Monitor):
    d = monitor.detectors
    return reference_profile_path(
        monitor.reference_dataset, monitor.columns, kinds=d.get("column_kinds") or {},
        max_int_categories=d["max_int_categories"], sample_rows=d["sample_rows"], seed=d["seed"],
    )  # fmt: skip


def _wait(client: APIClient, url: str, status: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.get(url).json()
        if got["profile_status"] == status:
            return got
        time.sleep(0.3)
    raise AssertionError(f"the profile is {got['profile_status']!r} ({got['profile_error']!r}), not {status!r}")


def test_worker_builds_the_profile_when_the_reference_is_set_and_checks_load_it(celery_worker_process, tmp_path):
    world = make_world()
    alice = world["alice"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    path = FIXTURES / "breast_cancer_logreg.onnx"
    model = model_version_register(user=alice, team=world["alpha"], name="bc", path=str(path), filename=path.name)
    table = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    # A reference no earlier run has profiled (the cache is keyed by its bytes).
    first = tmp_path / "reference.csv"
    table.sample(frac=1.0, random_state=int(time.time())).to_csv(first, index=False)
    reference = dataset_version_register(user=alice, team=world["alpha"], name="ref", path=str(first),
                                         filename=first.name)  # fmt: skip
    body = {"name": "profiled", "model_version": str(model.pk), "reference_dataset": str(reference.pk),
            "schedule": "0 0 1 1 *", "detectors": {"prediction_drift": False, "attribution_drift": False}}  # fmt: skip
    response = client.post("/api/monitors/", body, format="json")
    assert response.status_code == 201, response.json()
    url = f"/api/monitors/{response.json()['id']}/"
    monitor = Monitor.objects.select_related("reference_dataset").get(pk=response.json()["id"])
    assert not _path(monitor).exists()
    ready = _wait(client, url, "ready")
    assert _path(monitor).exists() and ready["profile_error"] == ""

    # An on-demand check on the worker loads it rather than building it.
    rows = drifted_rows(table)
    assert client.post(f"{url}batches/", {"rows": rows}, format="json").status_code == 201
    check_id = client.post(f"{url}checks/", format="json").json()["id"]
    deadline = time.monotonic() + 90
    while MonitorCheck.objects.get(pk=check_id).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.3)
    check = MonitorCheck.objects.get(pk=check_id)
    assert check.status == "succeeded", check.error
    assert check.result["reference_profile"]["cached"] is True

    # A new reference version: building again, then ready with the new version's profile.
    second = tmp_path / "reference-v2.csv"
    table.iloc[: len(table) // 2].to_csv(second, index=False)
    newer = dataset_version_register(user=alice, team=world["alpha"], name="ref", path=str(second),
                                     filename=second.name)  # fmt: skip
    response = client.patch(url, {"reference_dataset": str(newer.pk)}, format="json")
    assert response.status_code == 200 and response.json()["profile_status"] == "building"
    monitor.refresh_from_db()
    assert monitor.reference_dataset_id == newer.pk
    _wait(client, url, "ready")
    assert _path(monitor).exists()
