"""A page of reports costs the same queries however many reports, runs and monitors it carries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evalsvc.evaluations.models import EvaluationRun, RunStatus
from evalsvc.reports.models import Report, ReportMonitor, ReportRun

pytestmark = pytest.mark.django_db


def _report(alpha, alice, model, runs, monitors, version: int) -> Report:
    report = Report.objects.create(
        team=alpha, model_version=model, title=f"report {version}", version=version, sha256="0" * 64, size_bytes=1,
        pdf_key="k", html="<p></p>", document={}, created_by=alice,
    )  # fmt: skip
    ReportRun.objects.bulk_create(ReportRun(report=report, run=run, position=i) for i, run in enumerate(runs))
    end = timezone.now()
    ReportMonitor.objects.bulk_create(
        ReportMonitor(report=report, monitor_id=m, start=end - timedelta(days=i + 1), end=end, position=i)
        for i, m in enumerate(monitors)
    )
    return report


def test_a_page_of_reports_costs_the_same_queries_for_many_reports_runs_and_monitors(
    api, alice, alpha, bc_model, bc_data
):
    monitors = []
    for i in range(3):
        body = {"name": f"m{i}", "model_version": str(bc_model.pk), "reference_dataset": str(bc_data.pk),
                "schedule": "0 * * * *"}  # fmt: skip
        response = api["alice"].post("/api/monitors/", body, format="json")
        assert response.status_code == 201, response.json()
        monitors.append(response.json()["id"])
    runs = [
        EvaluationRun.objects.create(
            team=alpha,
            model_version=bc_model,
            dataset_version=bc_data,
            created_by=alice,
            kind="evaluate",
            status=RunStatus.SUCCEEDED,
        )  # fmt: skip
        for _ in range(4)
    ]

    def queries() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as captured:
            response = api["alice"].get("/api/reports/")
            assert response.status_code == 200
        return len(captured.captured_queries), response.json()["results"]

    _report(alpha, alice, bc_model, runs[:1], monitors[:1], version=1)
    few, listed = queries()
    assert [r["monitors"][0]["monitor"] for r in listed] == monitors[:1]
    for version in range(2, 12):
        _report(alpha, alice, bc_model, runs, monitors, version=version)
    many, listed = queries()
    assert len(listed) == 11 and many == few
    # What the prefetched rows answer is what the report holds, in its order.
    newest = listed[0]
    assert newest["runs"] == [str(r.pk) for r in runs]
    assert [m["monitor"] for m in newest["monitors"]] == monitors
