"""Curves, calibration, the threshold sweep and slices: submitted, stored, on the run page and in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_submit
from evalsvc.reports.models import Report
from tests.evalsvc.reports.conftest import pdf_text
from workers.tasks.evaluate import run_evaluate


@pytest.mark.parametrize(
    ("slices", "fragment"),
    [
        (["mean_radius", "hospital"], "slice columns not in data set bc-test v1: hospital"),
        (["mean_radius", "mean_radius"], "listed more than once"),
        ([], "invalid params"),
        (["a", "b", "c", "d", "e", "f"], "invalid params"),
        (["<script>", "x" * 100_000], "bc-test v1: <script>, " + "x" * 60 + "…; its columns are"),
    ],
)
def test_slice_columns_are_checked_against_the_stored_schema_at_submission(api, bc_model, bc_data, slices, fragment):
    body = {"model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk), "params": {"slice_columns": slices}}
    response = api["alice"].post("/api/runs/", body, format="json")
    assert response.status_code == 400, response.json()
    assert fragment in str(response.json())
    assert len(response.content) < 5000  # a hostile name is not echoed whole
    assert EvaluationRun.objects.count() == 0


@pytest.fixture
def sliced_run(alice, bc_model, bc_data):
    run = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=bc_data.pk,
        params={"slice_columns": ["mean_radius"]},
    )
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def test_the_run_page_draws_the_curves_and_tables_the_slices(client, alice, sliced_run):
    result = sliced_run.result
    (positive,) = result["curves"]["classes"]
    assert positive["roc"]["auc"] == pytest.approx(result["metrics"]["roc_auc"], abs=1e-12)
    assert result["slices"][0]["column"] == "mean_radius" and len(result["slices"][0]["slices"]) == 4

    client.force_login(alice)
    page = client.get(f"/runs/{sliced_run.pk}/").content.decode()
    for title in ("Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration", "Threshold sweep"):
        assert f"<h2>{title}</h2>" in page, title
    assert f"AUC {positive['roc']['auc']:.3f}" in page  # in the figure's legend
    assert 'data-table="by-mean_radius"' in page
    assert f"Brier score {result['calibration']['brier']:.4f}" in page
    assert "Operating (the model&#x27;s predictions)" in page


def test_the_report_draws_every_new_figure_and_prints_the_tables(api, bc_model, sliced_run, tmp_path: Path):
    response = api["alice"].post(
        "/api/reports/", {"model_version": str(bc_model.pk), "runs": [str(sliced_run.pk)]}, format="json"
    )
    assert response.status_code == 201, response.json()
    document = Report.objects.get(pk=response.json()["id"]).document
    (job,) = document["jobs"]
    titles = [f["title"] for f in job["figures"]]
    assert titles == ["Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration", "Threshold sweep"]
    assert all(f["svg"] and f["svg"].startswith("<svg") for f in job["figures"])
    tables = {t["title"] for t in job["tables"]}
    assert {"Curves", "By mean_radius"} <= tables
    assert any(t.startswith("Calibration: Brier score") for t in tables)

    content = b"".join(api["alice"].get(f"/api/reports/{response.json()['id']}/pdf/").streaming_content)
    text = pdf_text(content, tmp_path)
    for expected in ("ROC curve", "Precision-recall curve", "Threshold sweep", "By mean_radius", "Best F1"):
        assert expected in text, expected
    assert f"{sliced_run.result['curves']['classes'][0]['pr']['average_precision']:.4f}" in text


def test_the_job_form_takes_slice_columns(client, alice, bc_model, bc_data):
    client.force_login(alice)
    form = {"kind": "evaluate", "model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk),
            "batch_size": 256, "backend": "onnxruntime", "device": "cpu"}  # fmt: skip
    # Slice columns are chosen from the data sets' columns: one that no data set has is not on offer.
    page = client.get("/runs/new/").content.decode()
    assert '<option value="mean_texture"' in page and "hospital" not in page
    refused = client.post("/runs/new/", {**form, "slice_columns": ["mean_radius", "hospital"]})
    assert refused.status_code == 400
    assert "hospital is not one of the available choices" in refused.content.decode()
    assert EvaluationRun.objects.count() == 0
    response = client.post("/runs/new/", {**form, "slice_columns": ["mean_radius", "mean_texture"]})
    assert response.status_code == 302
    run = EvaluationRun.objects.get()
    assert run.params["slice_columns"] == ["mean_radius", "mean_texture"]
