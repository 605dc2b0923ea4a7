"""Reading the trail: who may, filters, the CSV export (formula-safe), the chain check over HTTP."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from evalsvc.audit.models import AuditEntry
from evalsvc.audit.services import audit_record
from evalsvc.core.csvcells import csv_safe
from evalsvc.teams.models import Membership
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(alice, alpha, users, bc_model):
    gamma = users["gamma"]
    audit_record(actor=alice, team=alpha, action="report.generated", details={"sha256": "ab" * 32})
    audit_record(actor=alice, team=alpha, action="report.approved")
    audit_record(actor=users["carol"], team=gamma, action="report.generated", details={"secret": "gamma-only"})
    return AuditEntry.objects.order_by("seq")


def rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


def test_owner_reads_the_team_trail_newest_first_with_filters(api, trail):
    body = api["alice"].get("/api/audit/", {"team": "alpha"}).json()
    listed = [e["action"] for e in body["results"]]
    assert listed == ["report.approved", "report.generated", "model_version.registered"]
    assert all(e["team"] == "alpha" for e in body["results"])
    first = body["results"][-1]
    assert set(first) >= {"seq", "created_at", "actor", "action", "object_type", "object_id", "details", "hash"}

    def actions(**params):
        return [e["action"] for e in api["alice"].get("/api/audit/", {"team": "alpha", **params}).json()["results"]]

    assert actions(action="report.") == ["report.approved", "report.generated"]
    assert actions(action="report.approved") == ["report.approved"]
    assert actions(actor="nobody") == []
    assert len(actions(actor="alice")) == 3
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert actions(since=tomorrow) == []
    assert len(actions(until=tomorrow)) == 3
    bad = api["alice"].get("/api/audit/", {"team": "alpha", "since": "last tuesday"})
    assert bad.status_code == 400 and "not a date" in bad.json()["detail"]


def test_auditors_read_viewers_do_not_strangers_get_404(api, alpha, trail):
    dave = UserFactory(username="dave")
    MembershipFactory(team=alpha, user=dave, role="auditor")
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    auditor = APIClient()
    auditor.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=dave).key}")
    assert auditor.get("/api/audit/", {"team": "alpha"}).json()["count"] == 3
    assert auditor.get("/api/audit/verify/", {"team": "alpha"}).json()["ok"] is True

    refused = api["bob"].get("/api/audit/", {"team": "alpha"})
    assert refused.status_code == 403 and "owners and auditors" in refused.json()["detail"]
    assert api["bob"].get("/api/audit/").json()["count"] == 0  # no team bob may audit

    for url in ("/api/audit/", "/api/audit/export.csv", "/api/audit/verify/"):
        response = api["carol"].get(url, {"team": "alpha"})
        assert response.status_code == 404, url
    carols = api["carol"].get("/api/audit/").json()["results"]
    assert [e["team"] for e in carols] == ["gamma"]
    assert "gamma-only" not in str(api["alice"].get("/api/audit/").json())


def test_members_sign_ins_are_their_own_not_their_teams(client, api, alice, trail):
    # A sign-in belongs to no team: the owner of bob's team does not see it, bob does.
    assert client.login(username="bob", password="pw-for-tests-1")
    listed = api["alice"].get("/api/audit/", {"team": "alpha", "action": "user.signed_in"}).json()["results"]
    assert listed == []
    assert api["carol"].get("/api/audit/", {"action": "user.signed_in"}).json()["count"] == 0
    own = api["bob"].get("/api/audit/sign-ins/").json()["results"]
    assert [(e["actor"], e["action"], e["team"]) for e in own] == [("bob", "user.signed_in", None)]
    assert api["alice"].get("/api/audit/sign-ins/").json()["count"] == 0


def test_csv_export_neutralises_formulas(api, alice, alpha, trail):
    # Django usernames may start with "-", "+" or "@": each would run as a formula in a spreadsheet.
    for name in ("-2+3", "+cmd", "@SUM(A1)"):
        user = UserFactory(username=name)
        Membership.objects.create(team=alpha, user=user, role="viewer")
        audit_record(actor=user, team=alpha, action="user.signed_in")
    audit_record(
        actor=alice,
        team=alpha,
        action="model.updated",
        obj=("registry.registeredmodel", '=HYPERLINK("http://evil")'),
        details={"note": "=1+1"},
    )
    response = api["alice"].get("/api/audit/export.csv", {"team": "alpha"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = rows(response)
    header, body = table[0], table[1:]
    assert header[:5] == ["seq", "created_at", "team", "actor", "action"]
    actors = [row[3] for row in body]
    assert {"'-2+3", "'+cmd", "'@SUM(A1)"} <= set(actors)
    object_ids = [row[6] for row in body]
    assert '\'=HYPERLINK("http://evil")' in object_ids
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert len(body) == 3 + 3 + 1


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1"])
def test_csv_safe_quotes_every_formula_prefix(value):
    assert csv_safe(value) == "'" + value


def test_csv_safe_leaves_other_values_alone():
    assert csv_safe("alice") == "alice" and csv_safe(12) == "12" and csv_safe(None) == ""


def test_verify_endpoint_names_the_first_broken_entry(api, trail):
    ok = api["alice"].get("/api/audit/verify/", {"team": "alpha"}).json()
    assert ok["ok"] is True and ok["checked"] == 4 and ok["team_entries"] == 3
    broken_seq = trail.filter(team__slug="gamma").first().seq
    AuditEntry.objects.filter(seq=broken_seq).update(details={"secret": "edited"})
    result = api["alice"].get("/api/audit/verify/", {"team": "alpha"}).json()
    assert result["ok"] is False and result["first_broken_seq"] == broken_seq
    assert "of another team" in result["reason"] and "carol" not in result["reason"]
    assert api["alice"].get("/api/audit/verify/").status_code == 400  # which team?


def test_audit_page(client, alice, bob, carol, trail):
    client.force_login(alice)
    page = client.get("/audit/", {"team": "alpha", "verify": "1"})
    content = page.content.decode()
    assert page.status_code == 200 and "report.approved" in content and "Chain intact" in content
    assert "gamma-only" not in client.get("/audit/").content.decode()
    client.force_login(bob)
    assert client.get("/audit/", {"team": "alpha"}).status_code == 403
    client.force_login(carol)
    assert client.get("/audit/", {"team": "alpha"}).status_code == 404


def test_api_sign_in_is_recorded_and_a_failed_one_is_not(alice):
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.post("/api/auth/token/", {"username": "alice", "password": "wrong"}).status_code == 400
    assert not AuditEntry.objects.filter(action="user.signed_in").exists()
    assert client.post("/api/auth/token/", {"username": "alice", "password": "pw-for-tests-1"}).status_code == 200
    entry = AuditEntry.objects.get(action="user.signed_in")
    assert entry.actor == alice and entry.details["via"] == "api token"
