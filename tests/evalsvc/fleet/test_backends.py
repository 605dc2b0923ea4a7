"""Where jobs can run: workers publish backends and devices; submission checks against them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.fleet.models import WorkerStatus
from evalsvc.fleet.services import worker_status_publish

pytestmark = pytest.mark.django_db


def submit(api, model, data, **params):
    return api["alice"].post(
        "/api/runs/", {"model_version": str(model.pk), "dataset_version": str(data.pk), "params": params}, format="json"
    )


def test_backends_api_lists_what_the_worker_published(api, local_worker):
    body = api["bob"].get("/api/backends/").json()
    assert [w["hostname"] for w in body["workers"]] == ["tests@localhost"]
    offered = {(o["backend"], o["device"], o["queue"]) for o in body["offers"]}
    assert ("onnxruntime", "cpu", "cpu") in offered
    names = {b["name"] for b in body["backends"]}
    assert {"onnxruntime"} <= names


def test_unavailable_backend_is_listed_with_its_reason(api, local_worker):
    local_worker.backends = [
        *local_worker.backends,
        {"name": "fancy-gpu-engine", "available": False, "reason": "no CUDA device", "devices": []},
    ]
    local_worker.save()
    body = api["alice"].get("/api/backends/").json()
    entry = next(b for b in body["backends"] if b["name"] == "fancy-gpu-engine")
    assert entry["workers"][0]["reason"] == "no CUDA device"


def test_no_live_worker_refuses_the_job(api, bc_model, bc_data, local_worker):
    WorkerStatus.objects.update(last_seen=timezone.now() - timedelta(minutes=10))
    response = submit(api, bc_model, bc_data)
    assert response.status_code == 400
    assert "no worker is running" in response.json()["detail"]
    assert EvaluationRun.objects.count() == 0


def test_offline_worker_is_not_counted(api, bc_model, bc_data, local_worker):
    WorkerStatus.objects.update(online=False)
    assert submit(api, bc_model, bc_data).status_code == 400


def test_gpu_job_goes_to_the_gpu_queue(api, bc_model, bc_data, local_worker):
    worker_status_publish(
        hostname="gpu@box",
        queues=["gpu"],
        backends=[
            {
                "name": "onnxruntime",
                "available": True,
                "version": "x",
                "devices": ["cpu", "cuda"],
                "precisions": ["fp32"],
            }
        ],
        host={},
        starting=True,
    )
    gpu = submit(api, bc_model, bc_data, device="cuda")
    assert gpu.status_code == 201, gpu.json()
    assert gpu.json()["queue"] == "gpu"
    cpu = api["alice"].post(
        "/api/runs/",
        {"model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk), "params": {"batch_size": 7}},
        format="json",
    )
    assert cpu.json()["queue"] == "cpu"  # cpu jobs stay on the cpu queue even if a gpu worker has a cpu
    unknown_precision = submit(api, bc_model, bc_data, device="cuda", precision="int8")
    assert unknown_precision.status_code == 400
    assert "offers precisions fp32, not 'int8'" in unknown_precision.json()["detail"]


def test_backends_page(client, alice, local_worker):
    client.force_login(alice)
    page = client.get("/backends/")
    assert page.status_code == 200
    assert b"onnxruntime" in page.content and b"tests@localhost" in page.content
