"""Report identity and approval, permissions, isolation, thresholds, and deletion of what reports cite."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evalsvc.audit.models import AuditEntry
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.registry.services import dataset_version_register
from evalsvc.reports.models import Report
from tests.conftest import FIXTURES, stored_blobs

pytestmark = pytest.mark.django_db


def pdf_of(client, report_id: str) -> bytes:
    response = client.get(f"/api/reports/{report_id}/pdf/")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def verify(client, content: bytes, name: str = "report.pdf"):
    return client.post(
        "/api/reports/verify", {"file": SimpleUploadedFile(name, content, "application/pdf")}, format="multipart"
    )


# --- identity and verification ------------------------------------------------------


def test_verify_accepts_the_original_and_rejects_one_changed_byte(api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    original = pdf_of(api["alice"], report["id"])

    ok = verify(api["alice"], original)
    assert ok.status_code == 200
    body = ok.json()
    assert body["issued"] is True
    assert body["report"] == report["id"] and body["version"] == 1
    assert body["approved"] is False
    assert body["model_version"]["sha256"] == bc_model.sha256
    assert body["sha256"] == hashlib.sha256(original).hexdigest() == report["sha256"]

    # One byte in the middle of the file (inside a compressed stream, invisible to a reader).
    tampered = bytearray(original)
    middle = len(tampered) // 2
    tampered[middle] ^= 0x01
    bad = verify(api["alice"], bytes(tampered))
    assert bad.status_code == 200
    body = bad.json()
    assert body["issued"] is False
    assert "not issued by evalsvc" in body["detail"]
    assert body["claims_report"] == report["id"]  # it still names the report it was copied from
    assert "changed after it was issued" in body["detail"]

    assert verify(api["alice"], b"%PDF-1.7 something else").json()["issued"] is False


def test_verify_reports_approval(api, dave_api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    draft = pdf_of(api["alice"], report["id"])
    approved = dave_api.post(f"/api/reports/{report['id']}/approve/")
    assert approved.status_code == 200
    # The approval is recorded in the issued document: a new PDF, and the draft is no longer the report.
    content = pdf_of(api["alice"], report["id"])
    assert content != draft and approved.json()["sha256"] == hashlib.sha256(content).hexdigest()
    body = verify(api["alice"], content).json()
    assert body["issued"] is True and body["approved"] is True
    assert body["approved_by"] == "dave" and body["approved_at"]
    old = verify(api["alice"], draft).json()
    assert old["issued"] is False and old["claims_report"] == report["id"]
    assert "as it stood when it was approved" in old["detail"] and approved.json()["sha256"] in old["detail"]
    # Someone outside the team holding the file learns that it is genuine, not the team's details.
    outsider = verify(api["carol"], content).json()
    assert outsider["issued"] is True and outsider["approved"] is True
    assert "team" not in outsider and "approved_by" not in outsider


# --- approval and immutability -------------------------------------------------------


def test_an_approved_report_cannot_be_modified_through_the_api(api, dave_api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    approved = dave_api.post(f"/api/reports/{report['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    before = Report.objects.get(pk=report["id"])

    for method in ("patch", "put"):
        response = getattr(api["alice"], method)(f"/api/reports/{report['id']}/", {"title": "changed"}, format="json")
        assert response.status_code == 409, method
        assert "immutable" in response.json()["detail"]
        assert "/regenerate/" in response.json()["detail"]
    deleted = api["alice"].delete(f"/api/reports/{report['id']}/")
    assert deleted.status_code == 409 and "immutable" in deleted.json()["detail"]
    again = dave_api.post(f"/api/reports/{report['id']}/approve/")
    assert again.status_code == 409 and "already approved" in again.json()["detail"]

    after = Report.objects.get(pk=report["id"])
    assert (after.title, after.sha256, after.html, after.status) == (
        before.title,
        before.sha256,
        before.html,
        "approved",
    )
    assert pdf_of(api["alice"], report["id"]) == pdf_of(api["bob"], report["id"])

    # A change is a new version that supersedes the approved one.
    regenerated = api["alice"].post(f"/api/reports/{report['id']}/regenerate/", {"title": "v2 title"}, format="json")
    assert regenerated.status_code == 201, regenerated.json()
    new = regenerated.json()
    assert new["version"] == 2 and new["supersedes"] == report["id"] and new["status"] == "draft"
    assert new["sha256"] != report["sha256"]
    assert api["alice"].get(f"/api/reports/{report['id']}/").json()["superseded_by"] == [new["id"]]


def test_a_draft_can_be_edited_and_its_earlier_rendering_is_recognised(api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    first = pdf_of(api["alice"], report["id"])
    edited = api["alice"].patch(f"/api/reports/{report['id']}/", {"title": "Second draft"}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["title"] == "Second draft" and edited.json()["version"] == 1
    assert edited.json()["sha256"] != report["sha256"]
    body = verify(api["alice"], first).json()
    assert body["issued"] is False and "earlier rendering of draft report" in body["detail"]
    assert verify(api["alice"], pdf_of(api["alice"], report["id"])).json()["issued"] is True


def test_bob_the_viewer_can_read_but_not_approve_or_generate(api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    assert api["bob"].get(f"/api/reports/{report['id']}/").status_code == 200
    refused = api["bob"].post(f"/api/reports/{report['id']}/approve/")
    assert refused.status_code == 403
    assert "owner or auditor" in refused.json()["detail"] or "auditor or owner" in refused.json()["detail"]
    assert Report.objects.get(pk=report["id"]).status == "draft"
    body = {"model_version": str(bc_model.pk), "runs": [str(bc_run.pk)]}
    assert api["bob"].post("/api/reports/", body, format="json").status_code == 403
    assert api["bob"].patch(f"/api/reports/{report['id']}/", {"title": "x"}, format="json").status_code == 403
    assert api["bob"].delete(f"/api/reports/{report['id']}/").status_code == 403


def test_an_auditor_can_approve(dave_api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    response = dave_api.post(f"/api/reports/{report['id']}/approve/")
    assert response.status_code == 200
    assert response.json()["approved_by"] == "dave"


def test_only_succeeded_jobs_of_the_model_version_can_be_included(
    alice, api, bc_model, bc_data, bc_run, diabetes_model, diabetes_run
):
    url = "/api/reports/"
    other = api["alice"].post(url, {"model_version": str(bc_model.pk), "runs": [str(diabetes_run.pk)]}, format="json")
    assert other.status_code == 400 and "not bc v1" in other.json()["detail"]
    queued = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    response = api["alice"].post(url, {"model_version": str(bc_model.pk), "runs": [str(queued.pk)]}, format="json")
    assert response.status_code == 400 and "queued" in response.json()["detail"]
    empty = api["alice"].post(url, {"model_version": str(bc_model.pk), "runs": []}, format="json")
    assert empty.status_code == 400


# --- thresholds ---------------------------------------------------------------------------


def test_thresholds_drive_the_summary_verdicts(api, bc_model, bc_run, make_report):
    accuracy = bc_run.result["metrics"]["accuracy"]
    policy = {"accuracy": {"min": 0.999}, "f1": {"min": 0.5, "max": 1}}
    response = api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": policy}, format="json")
    assert response.status_code == 200, response.json()
    assert api["bob"].get("/api/teams/alpha/report-policy/").json()["thresholds"]["accuracy"] == {"min": 0.999}
    report = make_report(bc_model, [bc_run])
    summary = Report.objects.get(pk=report["id"]).document["summary"]
    assert summary["overall"] == "fail" and summary["failed"] == 1 and summary["checks"] == 3
    failed = next(v for v in summary["verdicts"] if not v["passed"])
    assert failed["metric"] == "accuracy" and failed["value"] == accuracy and failed["threshold"] == 0.999
    assert any("below the minimum 0.999" in issue for issue in summary["open_issues"])


@pytest.mark.parametrize(
    "thresholds",
    [
        [1, 2],
        {"accuracy": 0.9},
        {"accuracy": {"above": 0.9}},
        {"accuracy": {"min": "high"}},
        {"a": {"min": 2, "max": 1}},
    ],
)
def test_bad_thresholds_are_refused(api, thresholds):
    response = api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": thresholds}, format="json")
    assert response.status_code == 400, response.json()


def test_only_owners_set_thresholds(api):
    response = api["bob"].put("/api/teams/alpha/report-policy/", {"thresholds": {}}, format="json")
    assert response.status_code == 403


# --- isolation ------------------------------------------------------------------------------


def test_carol_gets_404_on_every_report_endpoint_of_alpha(api, client, carol, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    rid = report["id"]
    carol_api = api["carol"]
    for url in (f"/api/reports/{rid}/", f"/api/reports/{rid}/pdf/", f"/api/reports/{rid}/html/",
                f"/api/reports/{rid}/json/", "/api/teams/alpha/report-policy/"):  # fmt: skip
        response = carol_api.get(url)
        assert response.status_code == 404, url
        assert bc_model.sha256 not in response.content.decode(errors="replace")
    assert carol_api.patch(f"/api/reports/{rid}/", {"title": "x"}, format="json").status_code == 404
    assert carol_api.put(f"/api/reports/{rid}/", {"title": "x"}, format="json").status_code == 404
    assert carol_api.delete(f"/api/reports/{rid}/").status_code == 404
    assert carol_api.post(f"/api/reports/{rid}/approve/").status_code == 404
    assert carol_api.post(f"/api/reports/{rid}/regenerate/", {}, format="json").status_code == 404
    assert carol_api.put("/api/teams/alpha/report-policy/", {"thresholds": {}}, format="json").status_code == 404
    body = {"model_version": str(bc_model.pk), "runs": [str(bc_run.pk)]}
    assert carol_api.post("/api/reports/", body, format="json").status_code == 404
    assert carol_api.get("/api/reports/").json()["count"] == 0
    assert carol_api.get("/api/reports/", {"team": "alpha"}).status_code == 404
    client.force_login(carol)
    for url in (f"/reports/{rid}/", f"/reports/new/?model_version={bc_model.pk}"):
        page = client.get(url)
        assert page.status_code in (200, 404), url
        assert bc_model.sha256 not in page.content.decode() and str(bc_run.pk) not in page.content.decode()
    assert client.get(f"/reports/{rid}/").status_code == 404
    assert client.post(f"/reports/{rid}/approve/").status_code == 404
    assert Report.objects.get(pk=rid).status == "draft"


# --- pages ---------------------------------------------------------------------------------


def test_builder_page_generates_a_report_and_the_detail_page_approves_it(client, alice, dave, bc_model, bc_run):
    client.force_login(alice)
    page = client.get(f"/reports/new/?model_version={bc_model.pk}")
    assert page.status_code == 200 and str(bc_run.pk) in page.content.decode()
    response = client.post(
        "/reports/new/", {"model_version": str(bc_model.pk), "runs": [str(bc_run.pk)], "title": "From the browser"}
    )
    assert response.status_code == 302
    report = Report.objects.get(title="From the browser")
    detail = client.get(response["Location"])
    content = detail.content.decode()
    # Its author sees why they cannot approve it, and posting anyway changes nothing.
    assert report.sha256 in content and 'id="approve"' not in content and "four eyes" in content
    refused = client.post(f"/reports/{report.pk}/approve/", follow=True)
    assert "another owner or auditor" in refused.content.decode()
    report.refresh_from_db()
    assert report.status == "draft"

    client.force_login(dave)  # the team's auditor
    assert 'id="approve"' in client.get(f"/reports/{report.pk}/").content.decode()
    assert client.post(f"/reports/{report.pk}/approve/").status_code == 302
    report.refresh_from_db()
    assert report.status == "approved" and report.approved_by == dave
    assert 'id="approve"' not in client.get(f"/reports/{report.pk}/").content.decode()
    assert "From the browser" in client.get("/reports/").content.decode()


def test_detail_page_has_no_approve_button_for_a_viewer(client, alice, bob, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    client.force_login(bob)
    content = client.get(f"/reports/{report['id']}/").content.decode()
    assert report["sha256"] in content and 'id="approve"' not in content
    # A viewer reads reports and is offered nothing that writes one.
    assert 'id="regenerate"' not in content
    assert 'id="new-report"' not in client.get("/reports/").content.decode()
    assert client.post(f"/reports/{report['id']}/regenerate/").status_code == 302  # refused with a message
    assert Report.objects.filter(model_version=bc_model).count() == 1
    client.force_login(alice)
    assert 'id="regenerate"' in client.get(f"/reports/{report['id']}/").content.decode()
    assert 'id="new-report"' in client.get("/reports/").content.decode()


def test_verify_page(client, alice, api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    content = pdf_of(api["alice"], report["id"])
    client.force_login(alice)
    page = client.post("/reports/verify/", {"file": SimpleUploadedFile("r.pdf", content)})
    assert "Issued by evalsvc" in page.content.decode()
    page = client.post("/reports/verify/", {"file": SimpleUploadedFile("r.pdf", content[:-10] + b"0000000000")})
    assert "Not issued by evalsvc" in page.content.decode()


# --- deletion of what reports cite --------------------------------------------------------------


def test_versions_in_an_approved_report_cannot_be_deleted(api, dave_api, bc_model, bc_data, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    draft = api["alice"].delete(f"/api/model-versions/{bc_model.pk}/")
    assert draft.status_code == 409 and report["id"] in draft.json()["detail"] and "draft" in draft.json()["detail"]
    assert dave_api.post(f"/api/reports/{report['id']}/approve/").status_code == 200
    for url in (f"/api/model-versions/{bc_model.pk}/", f"/api/dataset-versions/{bc_data.pk}/"):
        response = api["alice"].delete(url)
        assert response.status_code == 409, url
        assert "approved report" in response.json()["detail"] and report["id"] in response.json()["detail"]
        assert response.json()["reports"] == [report["id"]]
    assert ModelVersion.objects.filter(pk=bc_model.pk).exists()
    assert DatasetVersion.objects.filter(pk=bc_data.pk).exists()
    sha = bc_model.sha256
    assert f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}" in stored_blobs()


def test_versions_used_by_runs_cannot_be_deleted_and_the_refusal_says_which(api, alice, bc_model, bc_data):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    response = api["alice"].delete(f"/api/dataset-versions/{bc_data.pk}/")
    assert response.status_code == 409
    assert str(run.pk) in response.json()["detail"] and response.json()["runs"] == [str(run.pk)]


def test_an_unused_version_is_deleted_by_an_owner_only(api, alice, alpha, django_capture_on_commit_callbacks):
    path = FIXTURES / "breast_cancer.csv"
    data = dataset_version_register(
        user=alice, team=alpha, name="all", path=str(path), filename=path.name, label_column="diagnosis"
    )
    key = data.storage_key
    assert api["carol"].delete(f"/api/dataset-versions/{data.pk}/").status_code == 404
    assert api["bob"].delete(f"/api/dataset-versions/{data.pk}/").status_code == 403
    assert key in stored_blobs()
    with django_capture_on_commit_callbacks(execute=True):
        response = api["alice"].delete(f"/api/dataset-versions/{data.pk}/")
    assert response.status_code == 204
    assert not DatasetVersion.objects.filter(pk=data.pk).exists()
    entry = AuditEntry.objects.get(action="dataset_version.deleted")
    assert entry.object_id == str(data.pk) and entry.details["sha256"] == data.sha256
    assert entry.actor_label == "alice"
    assert key not in stored_blobs()  # no other version has these bytes


def test_a_models_intended_use_and_limitations_are_edited_over_the_api_and_shown(api, client, alice, bc_model):
    url = f"/api/models/{bc_model.registered_model_id}/"
    assert api["alice"].get(f"/api/model-versions/{bc_model.pk}/").json()["model"] == str(bc_model.registered_model_id)
    body = {"intended_use": "Second opinion for radiologists.", "limitations": "Trained on 1990s data."}
    assert api["carol"].patch(url, body, format="json").status_code == 404
    assert api["bob"].patch(url, body, format="json").status_code == 403
    response = api["alice"].patch(url, body, format="json")
    assert response.status_code == 200 and response.json()["limitations"] == "Trained on 1990s data."
    entry = AuditEntry.objects.get(action="model.updated")
    assert entry.details["new"] == body and entry.details["previous"] == {"intended_use": "", "limitations": ""}
    client.force_login(alice)
    page = client.get(f"/models/{bc_model.pk}/").content.decode()
    assert "Second opinion for radiologists." in page and "Trained on 1990s data." in page


# --- four eyes ---------------------------------------------------------------------------


def test_the_author_cannot_approve_their_own_report_unless_the_team_allows_it(
    api, dave_api, alice, bc_model, bc_run, make_report
):
    from evalsvc.audit.models import AuditEntry

    report = make_report(bc_model, [bc_run])  # generated by alice, an owner
    refused = api["alice"].post(f"/api/reports/{report['id']}/approve/")
    assert refused.status_code == 403
    assert "four eyes" in refused.json()["detail"] and "report policy" in refused.json()["detail"]
    assert Report.objects.get(pk=report["id"]).status == "draft"
    assert not AuditEntry.objects.filter(action="report.approved", object_id=report["id"]).exists()

    policy = api["alice"].get("/api/teams/alpha/report-policy/").json()
    assert policy["allow_self_approval"] is False
    # Only an owner changes it, only to a boolean; leaving it out of a PUT keeps it.
    assert (
        dave_api.put(
            "/api/teams/alpha/report-policy/", {"thresholds": {}, "allow_self_approval": True}, format="json"
        ).status_code
        == 403
    )
    bad = api["alice"].put(
        "/api/teams/alpha/report-policy/", {"thresholds": {}, "allow_self_approval": "perhaps"}, format="json"
    )
    assert bad.status_code == 400 and "allow_self_approval" in str(bad.json())
    on = api["alice"].put(
        "/api/teams/alpha/report-policy/", {"thresholds": {}, "allow_self_approval": True}, format="json"
    )
    assert on.status_code == 200 and on.json()["allow_self_approval"] is True
    kept = api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": {}}, format="json")
    assert kept.json()["allow_self_approval"] is True
    changed = AuditEntry.objects.filter(action="report_policy.changed").order_by("seq").last()
    assert changed.details["allow_self_approval"] is True

    approved = api["alice"].post(f"/api/reports/{report['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["approved_by"] == "alice"
    entry = AuditEntry.objects.get(action="report.approved", object_id=report["id"])
    assert entry.details["self_approved"] is True and entry.details["author"] == "alice"


def test_another_approver_is_recorded_as_not_self_approved(dave_api, bc_model, bc_run, make_report):
    from evalsvc.audit.models import AuditEntry

    report = make_report(bc_model, [bc_run])
    assert dave_api.post(f"/api/reports/{report['id']}/approve/").status_code == 200
    entry = AuditEntry.objects.get(action="report.approved", object_id=report["id"])
    assert entry.details["self_approved"] is False and entry.details["author"] == "alice"
    assert entry.actor_label == "dave"


def test_an_auditor_who_generated_a_report_needs_someone_else(api, dave_api, bc_model, bc_run):
    body = {"model_version": str(bc_model.pk), "runs": [str(bc_run.pk)]}
    response = dave_api.post("/api/reports/", body, format="json")
    assert response.status_code == 201, response.json()
    report = response.json()
    assert dave_api.post(f"/api/reports/{report['id']}/approve/").status_code == 403
    assert api["alice"].post(f"/api/reports/{report['id']}/approve/").status_code == 200
