"""Four eyes that hold: whoever changed a draft's content since it was generated counts as an author."""

from __future__ import annotations

import pytest

from evalsvc.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_an_approver_who_rewrote_the_draft_cannot_approve_it(api, dave_api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])  # alice generated it
    patched = dave_api.patch(f"/api/reports/{report['id']}/", {"title": "Looks fine to me"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["authors"] == ["alice", "dave"]
    refused = dave_api.post(f"/api/reports/{report['id']}/approve/")
    assert refused.status_code == 403
    assert "you changed this report's content" in refused.json()["detail"]
    updated = AuditEntry.objects.filter(action="report.updated", object_id=report["id"]).get()
    assert updated.actor_label == "dave" and updated.details["changed"] == ["title"]
    assert updated.details["authors"] == ["alice", "dave"]

    # Changing the jobs is recorded the same way.
    runs = api["alice"].patch(f"/api/reports/{report['id']}/", {"runs": [str(bc_run.pk)]}, format="json")
    assert runs.status_code == 200 and runs.json()["authors"] == ["alice", "dave"]
    last = AuditEntry.objects.filter(action="report.updated", object_id=report["id"]).order_by("seq").last()
    assert last.actor_label == "alice" and last.details["changed"] == ["runs"]


def test_a_third_owner_approves_and_the_trail_names_every_author(api, dave_api, alpha, bc_model, bc_run, make_report):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from tests.factories import MembershipFactory, UserFactory

    erin = UserFactory(username="erin")
    MembershipFactory(team=alpha, user=erin, role="owner")
    erin_api = APIClient()
    erin_api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=erin).key}")

    report = make_report(bc_model, [bc_run])
    dave_api.patch(f"/api/reports/{report['id']}/", {"title": "Edited"}, format="json")
    approved = erin_api.post(f"/api/reports/{report['id']}/approve/")
    assert approved.status_code == 200, approved.json()
    entry = AuditEntry.objects.filter(action="report.approved", object_id=report["id"]).get()
    assert entry.details["authors"] == ["alice", "dave"] and entry.details["self_approved"] is False


def test_self_approval_when_allowed_is_recorded_for_an_editor(api, dave_api, bc_model, bc_run, make_report):
    api["alice"].put("/api/teams/alpha/report-policy/", {"thresholds": {}, "allow_self_approval": True}, format="json")
    report = make_report(bc_model, [bc_run])
    dave_api.patch(f"/api/reports/{report['id']}/", {"title": "Edited"}, format="json")
    assert dave_api.post(f"/api/reports/{report['id']}/approve/").status_code == 200
    entry = AuditEntry.objects.filter(action="report.approved", object_id=report["id"]).get()
    assert entry.details["self_approved"] is True  # recorded as what it is


def test_a_new_version_of_an_edited_draft_keeps_its_editors(api, dave_api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    dave_api.patch(f"/api/reports/{report['id']}/", {"title": "Edited"}, format="json")
    again = api["alice"].post(f"/api/reports/{report['id']}/regenerate/")
    assert again.status_code == 201, again.json()
    assert again.json()["authors"] == ["alice", "dave"]
    assert dave_api.post(f"/api/reports/{again.json()['id']}/approve/").status_code == 403


def test_the_detail_page_says_why_an_editor_cannot_approve(client, dave, dave_api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    dave_api.patch(f"/api/reports/{report['id']}/", {"title": "Edited"}, format="json")
    client.force_login(dave)
    page = client.get(f"/reports/{report['id']}/").content.decode()
    assert 'id="approve"' not in page and "you changed this report&#x27;s content" in page
    assert "alice, dave" in page
