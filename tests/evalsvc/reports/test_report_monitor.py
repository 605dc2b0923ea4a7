"""A monitor's history over a period in an audit report: checks, verdicts, columns over time, alerts, read
back from the PDF against the stored numbers."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from django.utils import timezone

from evalsvc.monitoring.models import Alert, MonitorCheck
from evalsvc.reports.models import Report
from evalsvc.reports.templatetags.report_format import fmt
from tests.conftest import FIXTURES
from workers.tasks.monitoring import alert_send, monitor_check

from .conftest import pdf_text

pytestmark = pytest.mark.django_db

SHIFTED = ["mean_radius", "worst_texture"]


def _check(monitor_id: str) -> MonitorCheck:
    monitor_check.apply(args=[monitor_id]).get()
    return MonitorCheck.objects.filter(monitor_id=monitor_id).order_by("-created_at").first()


def test_monitor_history_in_the_pdf(api, bc_model, bc_data, bc_run, diabetes_model, tmp_path):
    table = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    body = {
        "name": "bc-production", "model_version": str(bc_model.pk), "reference_dataset": str(bc_data.pk),
        "schedule": "0 * * * *", "email_to": ["ops@example.com"],
        "detectors": {"prediction_drift": False, "attribution_drift": False},
    }  # fmt: skip
    monitor = api["alice"].post("/api/monitors/", body, format="json").json()
    batches = f"/api/monitors/{monitor['id']}/batches/"
    # A check before the period, then two in it: the reference's own rows, then shifted rows as well.
    api["alice"].post(batches, {"rows": table.to_dict(orient="records")}, format="json")
    before = _check(monitor["id"])
    MonitorCheck.objects.filter(pk=before.pk).update(created_at=timezone.now() - timedelta(days=3))
    start = timezone.now() - timedelta(hours=1)
    clean = _check(monitor["id"])
    shifted = table.copy()
    for name in SHIFTED:
        shifted[name] += 2 * table[name].std()
    api["alice"].post(batches, {"rows": shifted.to_dict(orient="records")}, format="json")
    drifted = _check(monitor["id"])
    assert not clean.drift and drifted.drift and set(SHIFTED) <= set(drifted.result["drifted_features"])
    (alert,) = Alert.objects.filter(check_run=drifted)
    assert alert_send.apply(args=[str(alert.pk)]).get() == "sent"
    end = timezone.now() + timedelta(minutes=1)

    period = {"monitor": monitor["id"], "start": start.isoformat(), "end": end.isoformat()}
    url = "/api/reports/"
    base = {"model_version": str(bc_model.pk), "runs": [str(bc_run.pk)]}
    # Refused with a message: the wrong model version's report, a period that ends first, another team's monitor.
    wrong = {**base, "monitors": [{**period, "end": (start - timedelta(hours=2)).isoformat()}]}
    response = api["alice"].post(url, wrong, format="json")
    assert response.status_code == 400 and "before it starts" in response.json()["detail"]
    other = api["alice"].post("/api/monitors/", {**body, "name": "diabetes", "model_version": str(diabetes_model.pk),
                                                  "reference_dataset": str(bc_data.pk)}, format="json")  # fmt: skip
    assert other.status_code == 201, other.json()
    response = api["alice"].post(url, {**base, "monitors": [{**period, "monitor": other.json()["id"]}]}, format="json")
    assert response.status_code == 400 and "not" in response.json()["detail"]
    assert api["carol"].post(url, {**base, "monitors": [period]}, format="json").status_code in (403, 404)
    assert not Report.objects.exists()

    response = api["alice"].post(url, {**base, "monitors": [period]}, format="json")
    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["monitors"][0]["monitor"] == monitor["id"]
    content = b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content)
    text = pdf_text(content, tmp_path)
    flat = " ".join(text.split())
    assert "Monitors' history" in flat and "Monitor bc-production" in flat
    assert "Checks in the period: 2 · with drift: 1 · failed: 0 · alerts: 1 (1 sent)." in flat
    # The stored numbers, as the report formats them, for the columns that drifted.
    for name in SHIFTED:
        feature = next(f for f in drifted.result["features"] if f["name"] == name)
        for key in ("p_adjusted", "psi", "wasserstein"):
            assert fmt(feature[key]) in flat, (name, key, fmt(feature[key]))
    alerts_part = flat[flat.index("Alerts sent") :]
    assert "drift email ops@example." in alerts_part and "sent" in alerts_part and "no drift" in flat
    document = Report.objects.get(pk=report["id"]).document
    (section,) = document["monitors"]
    checks_table, columns_table, alerts_table = section["tables"]
    assert [row[3] for row in checks_table["rows"]] == ["no drift", "drift"]  # the check before the period left out
    assert {row[1] for row in columns_table["rows"]} >= set(SHIFTED)
    assert [row[4] for row in alerts_table["rows"]] == ["sent"]
    # A monitor in a report stays; editing the report without naming monitors keeps its history.
    response = api["alice"].delete(f"/api/monitors/{monitor['id']}/")
    assert response.status_code == 409 and "report" in json.dumps(response.json())
    response = api["alice"].patch(f"/api/reports/{report['id']}/", {"title": "Edited"}, format="json")
    assert response.status_code == 200 and response.json()["monitors"] == report["monitors"]
    assert Report.objects.get(pk=report["id"]).document["monitors"][0]["counts"]["checks"] == 2
