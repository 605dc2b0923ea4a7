"""Profile jobs through the service: grid, verdicts, downloads, API round trip, regression check."""

from __future__ import annotations

import csv
import io

import pytest

from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import model_version_register
from tests.conftest import FIXTURES
from tests.support.models import build_matmul_chain
from workers.engine.latency import ProfileResult
from workers.tasks.profile import run_profile

pytestmark = pytest.mark.django_db

FAST = {"max_seconds_per_cell": 4}


def execute(run):
    run_profile.apply(args=[str(run.pk)])
    run.refresh_from_db()
    return run


def test_profile_grid_synthetic_inputs_round_trips_through_the_api(api, alice, alpha, client):
    model = model_version_register(
        user=alice, team=alpha, name="cnn", path=str(FIXTURES / "digits_cnn.onnx"), filename="digits_cnn.onnx"
    )
    response = api["alice"].post(
        "/api/runs/",
        {
            "kind": "profile",
            "model_version": str(model.pk),
            "params": {
                **FAST,
                "backends": ["onnxruntime", "openvino"],
                "batch_sizes": [1, 8],
                "threads": [1],
                "objectives": {"latency": {"max_ms": 50, "percentile": 99, "batch_size": 1}},
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["queue"] == "profile"
    run = execute(run_submit_reload(response.json()["id"]))
    assert run.status == "succeeded", run.error

    body = api["alice"].get(f"/api/runs/{run.pk}/").json()
    result = ProfileResult.from_dict(body["result"])  # survives JSON, PostgreSQL jsonb and the API
    assert len(result.cells) == 4 and {c.status for c in result.cells} == {"ok"}
    for cell in result.cells:
        lat = cell.model.latency
        assert lat.p50_ms <= lat.p90_ms <= lat.p95_ms <= lat.p99_ms <= lat.max_ms
        assert lat.count >= 50
    assert result.recommendation is not None and result.recommendation.key.batch_size == 1
    assert body["result"]["host"]["cpu_logical"] >= 1
    assert body["environment"]["backend"] in ("onnxruntime", "openvino")

    table = list(csv.DictReader(io.StringIO(api["alice"].get(f"/api/runs/{run.pk}/result.csv").content.decode())))
    assert len(table) == 4 and float(table[0]["p99_ms"]) > 0
    assert api["alice"].get(f"/api/runs/{run.pk}/result.json").json()["cells"][0]["key"]["backend"] == "onnxruntime"
    assert api["carol"].get(f"/api/runs/{run.pk}/result.csv").status_code == 404

    client.force_login(alice)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Recommended:" in html and "Download CSV" in html
    assert html.count('class="figure"') >= 4


def run_submit_reload(run_id):
    from evalsvc.evaluations.models import EvaluationRun

    return EvaluationRun.objects.get(pk=run_id)


def test_preprocessing_is_measured_in_and_out_on_real_rows(alice, bc_model, bc_data, client):
    run = execute(
        run_submit(
            user=alice,
            model_version_id=bc_model.pk,
            dataset_version_id=bc_data.pk,
            kind="profile",
            params={**FAST, "batch_sizes": [16], "preprocessing": "both"},
        )
    )
    assert run.status == "succeeded", run.error
    (cell,) = run.result["cells"]
    assert cell["input_source"] == "dataset"
    assert cell["with_preprocessing"]["latency"]["p50_ms"] >= cell["model"]["latency"]["p50_ms"] * 0.5
    assert cell["preprocessing_ms"] is not None
    # the run page shows the with-preprocessing timing it stored
    client.force_login(alice)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert f'<td class="with-preprocessing">{cell["with_preprocessing"]["latency"]["p50_ms"]:.3f}</td>' in html


def test_planted_slowdown_is_flagged_and_same_model_is_not(alice, alpha, tmp_path, client):
    # Enough work per call (~0.1 ms and up) that scheduling noise on a busy machine stays small beside it.
    fast_path, slow_path = tmp_path / "fast.onnx", tmp_path / "slow.onnx"
    build_matmul_chain(fast_path, repeats=4, width=256)
    build_matmul_chain(slow_path, repeats=40, width=256)
    fast = model_version_register(user=alice, team=alpha, name="chain", path=str(fast_path), filename="fast.onnx")
    slow = model_version_register(user=alice, team=alpha, name="chain", path=str(slow_path), filename="slow.onnx")
    # A count of samples, not a time window, decides when a cell has enough to compare: on a loaded machine
    # the slow model's calls take longer, and a time cap alone could leave fewer than the 20 the test needs.
    params = {**FAST, "batch_sizes": [32], "threads": [1], "min_samples_per_cell": 40}

    def profile(model, **extra):
        run = execute(run_submit(user=alice, model_version_id=model.pk, dataset_version_id=None, kind="profile",
                                 params={**params, **extra}))  # fmt: skip
        assert run.status == "succeeded", run.error
        return run

    baseline = profile(fast)
    compare = {"regression": {"baseline_run": str(baseline.pk), "threshold": 1.0}}
    slower = profile(slow, **compare)
    assert slower.result["regression"]["regressions"] == ["onnxruntime/cpu/fp32/b32/t1"], slower.result["regression"]
    # The run's page tables the comparison it stored.
    client.force_login(alice)
    html = client.get(f"/runs/{slower.pk}/").content.decode()
    (cell,) = slower.result["regression"]["cells"]
    assert 'data-cell="onnxruntime/cpu/fp32/b32/t1"' in html and "slower</span>" in html
    assert f"{cell['comparison']['median_ratio']:.3f}" in html
    # The same model again: not a regression (a 2x threshold keeps a noisy machine's swings out).
    same = profile(fast, **compare)
    assert same.result["regression"]["regressions"] == [], same.result["regression"]


def test_bad_profile_submissions(api, alice, bc_model, local_worker):
    def submit(**params):
        return api["alice"].post(
            "/api/runs/", {"kind": "profile", "model_version": str(bc_model.pk), "params": params}, format="json"
        )

    assert "needs real rows" in submit(preprocessing="in").json()["detail"]
    assert "cells" in submit(batch_sizes=list(range(1, 60))).json()["detail"]
    assert (
        "baseline run" in submit(regression={"baseline_run": "00000000-0000-0000-0000-000000000000"}).json()["detail"]
    )
    local_worker.queues = ["cpu"]
    local_worker.save()
    response = submit()
    assert response.status_code == 400 and "takes profile jobs" in response.json()["detail"]


def test_a_profile_that_measured_nothing_fails(alice, bc_model):
    # OpenVINO has no kernels for scikit-learn's ONNX-ML operators: every configuration fails
    run = execute(
        run_submit(
            user=alice,
            model_version_id=bc_model.pk,
            dataset_version_id=None,
            kind="profile",
            params={**FAST, "backends": ["openvino"], "batch_sizes": [1, 4], "threads": [1]},
        )
    )
    assert run.status == "failed"
    assert run.error.startswith("no configuration could be measured (failed: ")
    assert len(run.result["cells"]) == 2 and {c["status"] for c in run.result["cells"]} == {"failed"}


def test_a_regression_baseline_must_share_the_inputs_and_another_model_is_flagged(
    api, alice, bc_model, bc_data, diabetes_model, client
):
    one_cell = {**FAST, "batch_sizes": [8], "threads": [1]}
    baseline = execute(
        run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=None, kind="profile", params=one_cell)
    )
    assert baseline.status == "succeeded", baseline.error
    compare = {**one_cell, "regression": {"baseline_run": str(baseline.pk), "threshold": 1.0}}
    body = {"kind": "profile", "model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk), "params": compare}
    response = api["alice"].post("/api/runs/", body, format="json")
    assert response.status_code == 400, response.json()
    detail = response.json()["detail"]
    assert "the baseline run measured synthetic tensors and this job would measure rows of data set version" in detail
    assert "needs the same inputs on both sides" in detail

    other = execute(
        run_submit(
            user=alice, model_version_id=diabetes_model.pk, dataset_version_id=None, kind="profile", params=compare
        )
    )
    assert other.status == "succeeded", other.error
    warning = other.result["regression"]["warning"]
    assert warning.startswith("the baseline profiled bc v1, another model than diabetes v1")
    assert f"regression check: {warning}" in other.result["warnings"]
    client.force_login(alice)
    html = client.get(f"/runs/{other.pk}/").content.decode()
    assert 'id="regression-warning"' in html and "another model than diabetes v1" in html
    # one unit per column, stated in its header; the with-preprocessing timing has its own column
    assert "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>With preprocessing p50 ms</th>" in html
    assert "<th>Load ms</th><th>First call ms</th>" in html
