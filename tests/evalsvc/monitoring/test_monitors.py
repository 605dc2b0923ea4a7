"""Monitors over the API: validation at creation, whole-or-nothing ingestion, checks, signed alerts."""

from __future__ import annotations

import io
import json

import pytest
from django_celery_beat.models import PeriodicTask

from evalsvc.audit.models import AuditEntry
from evalsvc.monitoring.models import Alert, Monitor, MonitorCheck, ProductionBatch
from evalsvc.monitoring.profile import profile_key
from evalsvc.monitoring.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookRejected, sign_webhook, verify_webhook
from workers.tasks.drift import reference_profile_path
from workers.tasks.monitoring import alert_send, monitor_check, monitor_profile

from .conftest import SHIFTED, drifted_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitor_body(bc_model, bc_data):
    return {
        "name": "bc-production",
        "model_version": str(bc_model.pk),
        "reference_dataset": str(bc_data.pk),
        "schedule": "*/15 * * * *",
        "window_hours": 24,
        "detectors": {"alpha": 0.05, "correction": "bonferroni"},
        "email_to": ["ops@example.com"],
    }


def create(api, body, who="alice"):
    return api[who].post("/api/monitors/", body, format="json")


def test_monitor_is_created_with_a_database_schedule_and_audited(api, monitor_body, bc_data):
    response = create(api, monitor_body)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["columns"] == bc_data.column_names and len(data["webhook_secret"]) == 64
    task = PeriodicTask.objects.get(name=f"monitor {data['id']}")
    assert task.task == "evalsvc.monitor_check" and json.loads(task.args) == [data["id"]]
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("*/15", "*", "*")
    assert AuditEntry.objects.filter(action="monitor.created", object_id=data["id"]).exists()
    # A change moves the schedule and is audited with what changed.
    response = api["alice"].patch(f"/api/monitors/{data['id']}/", {"schedule": "0 6 * * 1"}, format="json")
    assert response.status_code == 200
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "6", "1")
    entry = AuditEntry.objects.get(action="monitor.changed", object_id=data["id"])
    assert entry.details["schedule"] == {"from": "*/15 * * * *", "to": "0 6 * * 1"}
    # Another team's member does not see it; a viewer cannot change it.
    assert api["carol"].get(f"/api/monitors/{data['id']}/").status_code == 404
    assert api["bob"].patch(f"/api/monitors/{data['id']}/", {"enabled": False}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": "61 * * * *"}, "not a valid cron expression"),
        ({"schedule": "every hour"}, "five fields"),
        ({"webhook_url": "ftp://example.com/hook"}, "http or https"),
        ({"webhook_url": "file:///etc/passwd"}, "http or https"),
        ({"webhook_url": "http://testserver/api/monitors/"}, "this service itself"),
        ({"detectors": {"correction": "holm"}}, "invalid detectors"),
        ({"columns": ["nope"]}, "columns not in the reference"),
    ],
)
def test_bad_monitors_are_refused_with_a_message(api, monitor_body, change, message):
    response = create(api, {**monitor_body, **change})
    assert response.status_code == 400
    assert message in json.dumps(response.json())
    assert not PeriodicTask.objects.filter(name__startswith="monitor ").exists()


def test_batches_are_stored_whole_or_not_at_all(api, monitor_body, reference_table, settings):
    monitor = create(api, monitor_body).json()
    url = f"/api/monitors/{monitor['id']}/batches/"
    rows = reference_table.head(20).to_dict(orient="records")
    assert api["alice"].post(url, {"rows": rows}, format="json").status_code == 201
    # Wrong columns, a text value in a numeric column: refused whole, naming what is wrong.
    bad = [dict(r) for r in rows]
    bad[5] = {**bad[5], "colour": "red"}
    response = api["alice"].post(url, {"rows": bad}, format="json")
    assert response.status_code == 400 and "rows[5]" in response.json()["detail"]
    missing = [{k: v for k, v in r.items() if k != "mean_radius"} for r in rows]
    response = api["alice"].post(url, {"rows": missing}, format="json")
    assert response.status_code == 400 and "missing mean_radius" in response.json()["detail"]
    bad = [dict(r) for r in rows]
    bad[-1]["mean_texture"] = "n/a"
    response = api["alice"].post(url, {"rows": bad}, format="json")
    assert response.status_code == 400 and "'mean_texture' must be numeric" in response.json()["detail"]
    # CSV and Parquet batches.
    csv = io.BytesIO(reference_table.head(30).to_csv(index=False).encode())
    csv.name = "batch.csv"
    assert api["alice"].post(url, {"file": csv}, format="multipart").status_code == 201
    parquet = io.BytesIO()
    reference_table.head(40).to_parquet(parquet, index=False)
    parquet.seek(0)
    parquet.name = "batch.parquet"
    assert api["alice"].post(url, {"file": parquet}, format="multipart").status_code == 201
    # Over the size limits.
    settings.EVALSVC_MONITOR_BATCH_MAX_ROWS = 10
    response = api["alice"].post(url, {"rows": rows}, format="json")
    assert response.status_code == 400 and "at most 10 per request" in response.json()["detail"]
    settings.EVALSVC_MONITOR_BATCH_MAX_MB = 0
    csv.seek(0)
    response = api["alice"].post(url, {"file": csv}, format="multipart")
    assert response.status_code == 400 and "bytes per request" in response.json()["detail"]
    assert sorted(ProductionBatch.objects.values_list("rows", flat=True)) == [20, 30, 40]
    assert api["carol"].post(url, {"rows": rows}, format="json").status_code == 404
    listed = api["alice"].get(url).json()["results"]
    assert [b["rows"] for b in listed] == [40, 30, 20]


def test_check_finds_drift_and_the_signed_webhook_is_received(api, monitor_body, reference_table, webhook_server):
    url, received = webhook_server
    monitor = create(api, {**monitor_body, "webhook_url": url}).json()
    api["alice"].post(f"/api/monitors/{monitor['id']}/batches/", {"rows": drifted_rows(reference_table)}, format="json")
    assert monitor_check.apply(args=[monitor["id"]]).get() == "drift"
    check = MonitorCheck.objects.get(monitor_id=monitor["id"])
    assert check.status == "succeeded" and check.trigger == "schedule" and check.rows == len(reference_table)
    assert set(SHIFTED) <= set(check.result["drifted_features"])
    webhook, email = sorted(Alert.objects.filter(check_run=check), key=lambda a: a.channel != "webhook")
    assert alert_send.apply(args=[str(webhook.pk)]).get() == "sent"
    assert alert_send.apply(args=[str(email.pk)]).get() == "sent"
    (message,) = received
    headers = {k.lower(): v for k, v in message["headers"].items()}
    secret = monitor["webhook_secret"]
    seen: set[str] = set()
    payload = verify_webhook(
        secret, message["body"], headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()], seen=seen
    )
    assert payload["event"] == "drift" and payload["delivery"] == str(webhook.pk)
    assert set(SHIFTED) <= set(payload["check"]["drifted_features"])
    # Replayed as is: refused by the delivery id; tampered: refused by the signature.
    with pytest.raises(WebhookRejected, match="already received"):
        verify_webhook(
            secret, message["body"], headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()], seen=seen
        )
    tampered = message["body"].replace(b'"drift"', b'"check_failed"', 1)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook(secret, tampered, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()])
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook("another secret", message["body"], headers[TIMESTAMP_HEADER.lower()],
                       headers[SIGNATURE_HEADER.lower()])  # fmt: skip
    # An old message, correctly signed then, is a replay outside the window.
    old = sign_webhook(secret, message["body"], now=1_000_000)
    with pytest.raises(WebhookRejected, match="outside the 300 s window"):
        verify_webhook(secret, message["body"], old[TIMESTAMP_HEADER], old[SIGNATURE_HEADER])
    from django.core import mail

    assert mail.outbox[-1].to == ["ops@example.com"] and "drift" in mail.outbox[-1].subject
    assert AuditEntry.objects.filter(action="monitor.alert_sent").count() == 2
    alerts = api["alice"].get(f"/api/monitors/{monitor['id']}/alerts/").json()["results"]
    assert {a["status"] for a in alerts} == {"sent"}
    # The list of checks carries summaries; a check's drift report has its own endpoint.
    (listed,) = api["alice"].get(f"/api/monitors/{monitor['id']}/checks/").json()["results"]
    assert listed["id"] == str(check.pk) and listed["drift"] is True and "result" not in listed
    full = api["alice"].get(f"/api/monitors/{monitor['id']}/checks/{check.pk}/")
    assert full.status_code == 200 and full.json()["result"] == check.result
    assert api["carol"].get(f"/api/monitors/{monitor['id']}/checks/{check.pk}/").status_code == 404
    assert api["alice"].get(f"/api/monitors/{monitor['id']}/checks/not-a-check/").status_code == 404
    page = api["alice"].get(f"/monitors/{monitor['id']}/")
    assert page.status_code in (200, 302)


def test_undeliverable_webhook_is_retried_then_failed(api, monitor_body, reference_table):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monitor = create(api, {**monitor_body, "webhook_url": f"http://127.0.0.1:{port}/", "email_to": []}).json()
    # No rows in the window: the check fails, and that is alerted too.
    assert monitor_check.apply(args=[monitor["id"]]).get() == "failed"
    check = MonitorCheck.objects.get(monitor_id=monitor["id"])
    assert check.status == "failed" and "no production rows" in check.error
    (alert,) = Alert.objects.filter(check_run=check)
    assert alert.payload["event"] == "check_failed"
    alert_send.apply(args=[str(alert.pk)])
    alert.refresh_from_db()
    assert alert.status == "failed" and alert.attempts == 6 and alert.last_error
    assert AuditEntry.objects.filter(action="monitor.alert_failed").count() == 1


def _profile_path(monitor: Monitor):
    detectors = monitor.detectors
    return reference_profile_path(
        monitor.reference_dataset, monitor.columns, kinds=detectors.get("column_kinds") or {},
        max_int_categories=detectors["max_int_categories"], sample_rows=detectors["sample_rows"],
        seed=detectors["seed"],
    )  # fmt: skip


def test_reference_profile_is_built_when_the_reference_is_set(api, alice, monitor_body, reference_table, tmp_path):
    from evalsvc.registry.services import dataset_version_register

    created = create(api, monitor_body).json()
    assert created["profile_status"] == "building" and created["profile_error"] == ""
    monitor = Monitor.objects.get(pk=created["id"])
    key = monitor.profile_key
    assert key == profile_key(monitor)
    _profile_path(monitor).unlink(missing_ok=True)
    assert monitor_profile.apply(args=[created["id"], key]).get() == "ready"
    assert _profile_path(monitor).exists()
    got = api["alice"].get(f"/api/monitors/{created['id']}/").json()
    assert got["profile_status"] == "ready" and got["profile_updated_at"]
    # A check loads the profile built at set-time instead of building it.
    api["alice"].post(f"/api/monitors/{created['id']}/batches/", {"rows": drifted_rows(reference_table)}, format="json")
    assert monitor_check.apply(args=[created["id"]]).get() == "drift"
    assert MonitorCheck.objects.get(monitor=monitor).result["reference_profile"]["cached"] is True

    # Settings that shape the profile invalidate it; a build queued before the change is skipped.
    url = f"/api/monitors/{created['id']}/"
    response = api["alice"].patch(url, {"detectors": {**monitor_body["detectors"], "sample_rows": 500}}, format="json")
    assert response.status_code == 200 and response.json()["profile_status"] == "building"
    monitor.refresh_from_db()
    assert monitor.profile_key not in ("", key) and monitor.profile_key == profile_key(monitor)
    assert monitor_profile.apply(args=[created["id"], key]).get() == "skipped"
    assert monitor_profile.apply(args=[created["id"], monitor.profile_key]).get() == "ready"
    # Settings that do not shape it leave it alone.
    assert api["alice"].patch(url, {"window_hours": 6}, format="json").json()["profile_status"] == "ready"

    # Another reference: it must carry the monitor's columns; a new one invalidates the profile.
    narrow = tmp_path / "narrow.csv"
    reference_table[["mean_radius", "diagnosis"]].to_csv(narrow, index=False)
    narrow_version = dataset_version_register(
        user=alice, team=monitor.team, name="narrow", path=str(narrow), filename=narrow.name
    )
    response = api["alice"].patch(url, {"reference_dataset": str(narrow_version.pk)}, format="json")
    assert response.status_code == 400 and "columns not in the reference" in response.json()["detail"]
    assert api["alice"].patch(url, {"reference_dataset": "nope"}, format="json").status_code in (400, 404)
    newer = tmp_path / "newer.csv"
    reference_table.iloc[::2].to_csv(newer, index=False)
    newer_version = dataset_version_register(
        user=alice, team=monitor.team, name="newer", path=str(newer), filename=newer.name
    )
    before = monitor.profile_key
    response = api["alice"].patch(url, {"reference_dataset": str(newer_version.pk)}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["reference_dataset"] == str(newer_version.pk)
    assert response.json()["profile_status"] == "building"
    monitor.refresh_from_db()
    assert monitor.profile_key not in ("", before)
    changed = AuditEntry.objects.filter(action="monitor.changed").order_by("-seq").first()
    assert changed.details["reference_dataset"]["to"] == str(newer_version.pk)
    # A check still builds a profile that is missing, and marks it ready.
    _profile_path(monitor).unlink(missing_ok=True)
    monitor_check.apply(args=[created["id"]]).get()
    latest = MonitorCheck.objects.filter(monitor=monitor).order_by("-created_at").first()
    assert latest.status == "succeeded" and latest.result["reference_profile"]["cached"] is False
    monitor.refresh_from_db()
    assert monitor.profile_status == "ready"


def test_on_demand_check_is_queued(api, monitor_body):
    monitor = create(api, monitor_body).json()
    response = api["alice"].post(f"/api/monitors/{monitor['id']}/checks/")
    assert response.status_code == 202 and response.json()["trigger"] == "on_demand"
    assert api["bob"].post(f"/api/monitors/{monitor['id']}/checks/").status_code == 403
    response = api["alice"].delete(f"/api/monitors/{monitor['id']}/")
    assert response.status_code == 204
    assert not PeriodicTask.objects.filter(name=f"monitor {monitor['id']}").exists()
    assert AuditEntry.objects.filter(action="monitor.deleted", object_id=monitor["id"]).exists()


def test_monitor_pages_timeline_and_about(api, client, alice, carol, monitor_body, reference_table):
    monitor = create(api, monitor_body).json()
    api["alice"].post(f"/api/monitors/{monitor['id']}/batches/", {"rows": drifted_rows(reference_table)}, format="json")
    monitor_check.apply(args=[monitor["id"]])
    client.force_login(alice)
    page = client.get(f"/monitors/{monitor['id']}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "timeline-data" in html and "Corrected p-value per column" in html and "= 0.05" in html
    assert "alert" in html and "drift" in html
    assert monitor["name"] in client.get("/monitors/").content.decode()
    check = MonitorCheck.objects.get(monitor_id=monitor["id"])
    page = client.get(f"/monitors/{monitor['id']}/checks/{check.pk}/").content.decode()
    assert "Columns by effect size" in page and "Distribution of" in page and "Columns, most moved first" in page
    assert all(name in page for name in SHIFTED) and "&quot;correction&quot;: &quot;bonferroni&quot;" in page
    client.force_login(carol)
    assert client.get(f"/monitors/{monitor['id']}/checks/{check.pk}/").status_code == 404
    assert client.get(f"/monitors/{monitor['id']}/").status_code == 404
    assert monitor["name"] not in client.get("/monitors/").content.decode()
    client.logout()
    about = client.get("/about/").content.decode()
    assert "Business Source License 1.1" in about and "commercial" in about


def test_monitor_created_in_the_browser(client, alice, bc_model, bc_data):
    client.force_login(alice)
    assert client.get("/monitors/new/").status_code == 200
    form = {
        "name": "from-the-browser",
        "model_version": str(bc_model.pk),
        "reference_dataset": str(bc_data.pk),
        "schedule": "99 * * * *",
        "window_hours": 12,
        "alpha": 0.01,
        "correction": "fdr",
        "webhook_url": "",
        "email_to": "ops@example.com, oncall@example.com",
    }
    page = client.post("/monitors/new/", form)
    assert page.status_code == 400 and "not a valid cron expression" in page.content.decode()
    assert not PeriodicTask.objects.filter(name__startswith="monitor ").exists()
    page = client.post(
        "/monitors/new/",
        {**form, "schedule": "30 2 * * *", "row_id_column": "request_id", "attribution_threshold": 0.8},
    )
    assert page.status_code == 302
    monitor_id = page["Location"].rstrip("/").split("/")[-1]
    created = Monitor.objects.get(pk=monitor_id)
    assert created.row_id_column == "request_id" and created.task == "classification"
    # An unticked box is off; the threshold is kept.
    assert created.detectors["attribution_drift"] is False and created.detectors["attribution_threshold"] == 0.8
    task = PeriodicTask.objects.get(name=f"monitor {monitor_id}")
    assert (task.crontab.minute, task.crontab.hour) == ("30", "2")
    detail = client.get(page["Location"]).content.decode()
    assert "webhook secret, shown this once" in detail and "from-the-browser" in detail
    assert "&quot;correction&quot;: &quot;fdr&quot;" in detail
