"""Intervals and caveats of an evaluation, as the API, the run page and the report show them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest

from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register
from evalsvc.reports.models import Report
from evalsvc.reports.verdicts import threshold_verdict
from workers.tasks.evaluate import run_evaluate


def _execute(run):
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def bc_evaluation(alice, bc_model, bc_data):
    return _execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={}))


def test_intervals_in_the_api_and_on_the_page(client, api, alice, bc_evaluation):
    body = api["alice"].get(f"/api/runs/{bc_evaluation.pk}/").json()
    metrics, rows = body["result"]["metrics"], body["result"]["rows"]
    accuracy = metrics["intervals"]["accuracy"]
    wilson = binomtest(round(metrics["accuracy"] * rows), rows).proportion_ci(method="wilson")
    assert accuracy["n"] == rows and accuracy["method"] == "wilson"
    assert (accuracy["low"], accuracy["high"]) == (pytest.approx(wilson.low), pytest.approx(wilson.high))
    assert metrics["intervals"]["roc_auc"]["method"] == "bootstrap"
    assert metrics["interval_method"]["bootstrap"]["seed"] == 0

    client.force_login(alice)
    page = client.get(f"/runs/{bc_evaluation.pk}/").content.decode()
    assert f'data-interval="accuracy">[{accuracy["low"]:.4f}, {accuracy["high"]:.4f}]' in page
    assert 'data-interval="f1">[' in page
    assert "How these numbers are defined" in page and "Wilson score" in page


def test_analytic_intervals_past_the_setting_in_the_api_and_on_the_page(
    client, api, alice, bc_model, bc_data, settings
):
    settings.EVALSVC_ANALYTIC_INTERVAL_ROWS = 100  # the fixture's 171 rows count as a large data set here
    run = _execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={}))
    metrics = api["alice"].get(f"/api/runs/{run.pk}/").json()["result"]["metrics"]
    assert metrics["intervals"]["roc_auc"]["method"] == "delong"
    assert metrics["intervals"]["f1"]["method"] == "delta"
    assert metrics["intervals"]["accuracy"]["method"] == "wilson"
    assert metrics["interval_method"]["analytic"]["above_rows"] == 100
    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "DeLong" in page and "delta method" in page and "more than 100 rows" in page


def test_undefined_r2_is_flagged_on_the_page_and_in_the_report(
    client, api, alice, diabetes_model, alpha, tmp_path: Path
):
    frame = pd.read_parquet(Path(__file__).resolve().parents[3] / "fixtures" / "diabetes.parquet")
    frame["progression"] = 150.0
    frame.to_csv(tmp_path / "flat.csv", index=False)
    data = dataset_version_register(
        user=alice, team=alpha, name="flat", path=str(tmp_path / "flat.csv"), filename="flat.csv",
        label_column="progression",
    )  # fmt: skip
    run = _execute(run_submit(user=alice, model_version_id=diabetes_model.pk, dataset_version_id=data.pk, params={}))
    assert run.result["metrics"]["r2"] is None
    assert "constant" in run.result["metrics"]["flags"]["r2"]

    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-flag="r2"' in page and "the target is constant" in page

    api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": {"r2": {"min": 0.3}}}, format="json")
    response = api["alice"].post(
        "/api/reports/", {"model_version": str(diabetes_model.pk), "runs": [str(run.pk)]}, format="json"
    )
    assert response.status_code == 201, response.json()
    doc = Report.objects.get(pk=response.json()["id"]).document
    assert any("r2 is not defined" in issue for issue in doc["summary"]["open_issues"])
    (job,) = doc["jobs"]
    metrics_table = next(t for t in job["tables"] if t["title"] == "Metrics")
    r2_row = next(row for row in metrics_table["rows"] if row[0] == "R²")
    assert r2_row[1] is None and "constant" in r2_row[-1]
    assert "force_finite=False" in job["method"]


def test_verdicts_are_inconclusive_when_the_interval_straddles(api, alice, bc_model, bc_evaluation):
    metrics = bc_evaluation.result["metrics"]
    low, high = metrics["intervals"]["accuracy"]["low"], metrics["intervals"]["accuracy"]["high"]
    straddled = round((metrics["accuracy"] + high) / 2, 4)  # above the value, below the upper bound
    policy = {"accuracy": {"min": straddled}, "f1": {"min": 0.5}, "roc_auc": {"min": 0.9999999}}
    api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": policy}, format="json")
    response = api["alice"].post(
        "/api/reports/", {"model_version": str(bc_model.pk), "runs": [str(bc_evaluation.pk)]}, format="json"
    )
    summary = Report.objects.get(pk=response.json()["id"]).document["summary"]
    verdicts = {v["metric"]: v for v in summary["verdicts"]}
    assert verdicts["accuracy"]["verdict"] == "inconclusive"
    assert verdicts["accuracy"]["value"] < straddled  # a bare comparison would have said fail
    assert (verdicts["accuracy"]["low"], verdicts["accuracy"]["high"]) == (low, high)
    assert verdicts["f1"]["verdict"] == "pass"
    assert verdicts["roc_auc"]["verdict"] in ("fail", "inconclusive")
    assert summary["overall"] in ("fail", "inconclusive")
    assert any("straddles" in issue for issue in summary["open_issues"])
    pdf = api["alice"].get(f"/api/reports/{response.json()['id']}/html/").content.decode()
    assert "95 % interval" in pdf and "inconclusive" in pdf


@pytest.mark.parametrize(
    ("value", "bound", "limit", "interval", "verdict"),
    [
        (0.8, "min", 0.7, {"low": 0.72, "high": 0.86, "n": 200}, "pass"),
        (0.8, "min", 0.75, {"low": 0.72, "high": 0.86, "n": 200}, "inconclusive"),
        (0.8, "min", 0.9, {"low": 0.72, "high": 0.86, "n": 200}, "fail"),
        (10.0, "max", 12.0, {"low": 9.0, "high": 11.0, "n": 200}, "pass"),
        (10.0, "max", 10.5, {"low": 9.0, "high": 11.0, "n": 200}, "inconclusive"),
        (10.0, "max", 8.0, {"low": 9.0, "high": 11.0, "n": 200}, "fail"),
        (0.95, "min", 0.5, {"low": 0.7, "high": 0.99, "n": 12}, "inconclusive"),
        (0.95, "min", 0.5, None, "pass"),
    ],
)
def test_threshold_verdict(value, bound, limit, interval, verdict):
    got = threshold_verdict(value, bound, limit, interval)
    assert got["verdict"] == verdict
    if interval and interval["n"] < 30:
        assert got["reason"].startswith("too few rows (12")
