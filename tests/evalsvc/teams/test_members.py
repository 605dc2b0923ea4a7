"""Owners manage members; every change lands in the audit trail; a team always keeps an owner."""

from __future__ import annotations

import pytest

from evalsvc.audit.models import AuditEntry
from evalsvc.teams.models import Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_owner_adds_changes_and_removes_a_member(api, alpha):
    from rest_framework.test import APIClient

    dave = UserFactory(username="dave")
    added = api["alice"].post("/api/teams/alpha/members/", {"username": "dave", "role": "auditor"}, format="json")
    assert added.status_code == 200, added.json()
    assert added.json()["role"] == "auditor"
    # dave joins by accepting the invitation.
    dave_api = APIClient()
    dave_api.force_authenticate(dave)
    invitation = dave_api.get("/api/invitations/").json()[0]
    assert dave_api.post(f"/api/invitations/{invitation['id']}/accept/").status_code == 200
    changed = api["alice"].post("/api/teams/alpha/members/", {"username": "dave", "role": "editor"}, format="json")
    assert changed.json()["role"] == "editor"
    listed = api["bob"].get("/api/teams/alpha/members/").json()
    assert {m["username"]: m["role"] for m in listed} == {"alice": "owner", "bob": "viewer", "dave": "editor"}
    assert api["alice"].delete("/api/teams/alpha/members/dave/").status_code == 204
    assert not Membership.objects.filter(team=alpha, user__username="dave").exists()
    actions = list(
        AuditEntry.objects.filter(team=alpha, action__startswith="membership.").values_list("action", flat=True)
    )
    assert actions[-3:] == ["membership.added", "membership.role_changed", "membership.removed"]


def test_only_owners_manage_members(api):
    response = api["bob"].post("/api/teams/alpha/members/", {"username": "bob", "role": "owner"}, format="json")
    assert response.status_code == 403
    assert "only owners" in response.json()["detail"]


def test_other_team_gets_404(api):
    assert api["carol"].get("/api/teams/alpha/members/").status_code == 404
    assert api["carol"].delete("/api/teams/alpha/members/bob/").status_code == 404


def test_last_owner_cannot_leave_or_be_demoted(api):
    demote = api["alice"].post("/api/teams/alpha/members/", {"username": "alice", "role": "viewer"}, format="json")
    assert demote.status_code == 409 and "last owner" in demote.json()["detail"]
    assert api["alice"].delete("/api/teams/alpha/members/alice/").status_code == 409


def test_unknown_user_and_role(api):
    assert (
        api["alice"]
        .post("/api/teams/alpha/members/", {"username": "nobody", "role": "viewer"}, format="json")
        .status_code
        == 400
    )
    bad_role = api["alice"].post("/api/teams/alpha/members/", {"username": "bob", "role": "king"}, format="json")
    assert bad_role.status_code == 400
