"""Approval recorded in the issued document: approver, date and comment in the PDF; a confirmation step in the browser."""

from __future__ import annotations

import hashlib

import pytest

from evalsvc.audit.models import AuditEntry
from evalsvc.reports.models import Report

from .conftest import pdf_text

pytestmark = pytest.mark.django_db


def pdf_of(client, report_id: str) -> bytes:
    response = client.get(f"/api/reports/{report_id}/pdf/")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_the_approved_pdf_names_the_approver_the_date_and_the_comment(
    api, dave_api, bc_model, bc_run, make_report, tmp_path
):
    report = make_report(bc_model, [bc_run])
    draft = pdf_text(pdf_of(api["alice"], report["id"]), tmp_path, "draft.pdf")
    assert "DRAFT" in draft and "Draft: not approved." in draft and "Approved by" not in draft

    before = Report.objects.get(pk=report["id"]).document
    comment = "Fit for the pilot; recheck calibration after a month in production."
    answer = dave_api.post(f"/api/reports/{report['id']}/approve/", {"comment": comment}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["approval_comment"] == comment and answer.json()["sha256"] != report["sha256"]
    stored = Report.objects.get(pk=report["id"])
    content = pdf_of(api["alice"], report["id"])
    assert hashlib.sha256(content).hexdigest() == stored.sha256 == answer.json()["sha256"]
    text = " ".join(pdf_text(content, tmp_path).split())
    assert "APPROVED by dave on " + stored.approved_at.strftime("%Y-%m-%d %H:%M") in text
    assert "Approved by dave" in text and comment in text
    assert report["sha256"] in text  # the draft that was read, named in the approval block
    # Everything else is the draft as the approver read it, not rebuilt.
    assert {k: v for k, v in stored.document.items() if k != "approval"} == before
    assert stored.replaced_sha256[-1] == report["sha256"]
    entry = AuditEntry.objects.filter(action="report.approved").latest("id")
    assert entry.details["comment"] == comment and entry.details["draft_sha256"] == report["sha256"]
    assert entry.details["sha256"] == stored.sha256
    # The HTML and JSON downloads carry the same approval.
    assert comment in api["alice"].get(f"/api/reports/{report['id']}/html/").content.decode()
    approval = api["alice"].get(f"/api/reports/{report['id']}/json/").json()["approval"]
    assert approval["approved_by"] == "dave" and approval["comment"] == comment


def test_an_overlong_or_non_text_comment_is_a_400_and_approves_nothing(dave_api, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    for body in ({"comment": "x" * 2001}, {"comment": ["a list"]}):
        refused = dave_api.post(f"/api/reports/{report['id']}/approve/", body, format="json")
        assert refused.status_code == 400, refused.json()
    stored = Report.objects.get(pk=report["id"])
    assert stored.status == "draft" and stored.sha256 == report["sha256"] and not stored.approval_comment


def test_the_page_asks_for_confirmation_and_a_comment_before_approving(client, dave, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    client.force_login(dave)
    detail = client.get(f"/reports/{report['id']}/").content.decode()
    assert f'href="/reports/{report["id"]}/approve/"' in detail  # a link to the confirmation, not a one-click POST
    confirm = client.get(f"/reports/{report['id']}/approve/")
    page = confirm.content.decode()
    assert confirm.status_code == 200 and 'name="comment"' in page and report["sha256"] in page
    assert Report.objects.get(pk=report["id"]).status == "draft"  # opening the step approves nothing

    # The draft changed after the approver read it: nothing is approved, and the page says why.
    changed = client.post(
        f"/reports/{report['id']}/approve/", {"comment": "ok", "sha256": "0" * 64}, follow=True
    ).content.decode()
    assert "changed since you opened it" in changed
    assert Report.objects.get(pk=report["id"]).status == "draft"

    done = client.post(f"/reports/{report['id']}/approve/", {"comment": "Looks right.", "sha256": report["sha256"]})
    assert done.status_code == 302
    stored = Report.objects.get(pk=report["id"])
    assert stored.status == "approved" and stored.approved_by == dave and stored.approval_comment == "Looks right."
    shown = client.get(f"/reports/{report['id']}/").content.decode()
    assert "Looks right." in shown and 'id="approve"' not in shown
    # The step is not offered again once approved.
    again = client.get(f"/reports/{report['id']}/approve/", follow=True).content.decode()
    assert "approved already" in again


def test_the_author_is_sent_back_with_the_reason(client, alice, bc_model, bc_run, make_report):
    report = make_report(bc_model, [bc_run])
    client.force_login(alice)
    back = client.get(f"/reports/{report['id']}/approve/", follow=True).content.decode()
    assert "four eyes" in back and 'name="comment"' not in back
