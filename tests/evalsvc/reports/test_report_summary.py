"""What a report's summary counts: thresholds that apply, distinct rows, jobs that compared nothing."""

from __future__ import annotations

import pytest

from evalsvc.evaluations import services
from evalsvc.evaluations.services import run_submit
from evalsvc.reports.models import Report

from .conftest import execute

pytestmark = pytest.mark.django_db


def test_a_regression_threshold_is_not_listed_against_a_classifier(api, bc_model, bc_run, make_report):
    policy = {"accuracy": {"min": 0.5}, "rmse": {"max": 60}}
    assert api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": policy}, format="json").status_code == 200
    document = Report.objects.get(pk=make_report(bc_model, [bc_run])["id"]).document
    assert document["thresholds"] == {"accuracy": {"min": 0.5}}
    assert not any("rmse" in issue for issue in document["summary"]["open_issues"])
    assert {v["metric"] for v in document["summary"]["verdicts"]} == {"accuracy"}


def test_the_row_total_counts_each_data_set_version_once(alice, bc_model, bc_data, bc_run, make_report):
    again = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={}))
    document = Report.objects.get(pk=make_report(bc_model, [bc_run, again])["id"]).document
    (scored,) = [line for line in document["summary"]["limitations"] if "rows scored in all" in line]
    assert f"({bc_data.rows:,} rows scored in all)" in scored


def test_a_job_that_compared_nothing_is_an_open_issue(api, alice, bc_model, bc_data, bc_run, make_report):
    policy = {"accuracy": {"min": 0.5}}
    assert api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": policy}, format="json").status_code == 200
    # a parity result stored before such jobs failed: its only candidate could not run
    parity = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=bc_data.pk,
        kind="parity",
        params={"candidates": [{"backend": "openvino", "device": "cpu"}]},
    )
    services.run_start(run_id=parity.pk, worker="w")
    result = {
        "reference": {"backend": "onnxruntime", "device": "cpu", "precision": "fp32"},
        "reference_backend": {},
        "rows": bc_data.rows,
        "candidates": [
            {
                "target": {"backend": "openvino", "device": "cpu", "precision": "fp32", "options": {}},
                "status": "failed",
                "error": "unsupported operators ai.onnx.ml:LinearClassifier",
                "outputs": [],
                "worst_rows": [],
            }
        ],
    }
    assert services.run_succeed(run_id=parity.pk, result=result, environment={})
    summary = Report.objects.get(pk=make_report(bc_model, [bc_run, parity])["id"]).document["summary"]
    short = str(parity.pk)[:8]
    assert f"Backend parity {short} compared or measured nothing: no candidate ran" in summary["open_issues"]
    assert summary["overall"] == "inconclusive"  # accuracy passes, but one job gave no evidence at all
    html = api["alice"].get(f"/api/reports/{Report.objects.latest('created_at').pk}/html/").content.decode()
    assert "1 included job compared or measured nothing" in html
