"""A drift job in an audit report: method, verdict, the columns' table and figures, read back from the PDF."""

from __future__ import annotations

import pandas as pd
import pytest

from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register
from evalsvc.reports.models import Report
from tests.conftest import FIXTURES
from workers.tasks.drift import run_drift

from .conftest import pdf_text

pytestmark = pytest.mark.django_db


def test_drift_section_in_the_pdf(alice, alpha, api, bc_model, bc_data, make_report, tmp_path):
    table = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    table["mean_radius"] += table["mean_radius"].std()
    path = tmp_path / "today.csv"
    table.to_csv(path, index=False)
    current = dataset_version_register(user=alice, team=alpha, name="today", path=str(path), filename="today.csv")
    run = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=current.pk,
        kind="drift",
        params={"reference_dataset": str(bc_data.pk), "correction": "fdr"},
    )
    run_drift.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.result["drifted_features"][0] == "mean_radius"
    report = make_report(bc_model, [run])
    content = b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content)
    text = pdf_text(content, tmp_path)
    assert "Benjamini" in text and "Verdict: drift" in text and "mean_radius" in text
    assert "Columns, most moved first" in text
    document = Report.objects.get(pk=report["id"]).document
    job = next(j for j in document["jobs"] if "figures" in j and j["figures"])
    assert job["figures"][0]["title"] == "Columns by effect size"
    assert job["figures"][0]["svg"].startswith("<svg")
