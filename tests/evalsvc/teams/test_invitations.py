"""Membership by consent: an owner invites, the user accepts; a team's trail shows no one's sign-ins."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from evalsvc.audit.models import AuditEntry
from evalsvc.teams.models import Invitation, Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dave(db):
    return UserFactory(username="dave")


@pytest.fixture
def dave_api(dave):
    client = APIClient()
    client.force_authenticate(dave)
    return client


def _invite(api, role="viewer"):
    return api["alice"].post("/api/teams/alpha/members/", {"username": "dave", "role": role}, format="json")


def test_adding_a_user_invites_them_and_shows_the_team_nothing_of_them(api, alpha, dave, dave_api):
    # dave signed in from somewhere before he was ever asked to join.
    assert (
        Client(REMOTE_ADDR="198.51.100.7")
        .post("/login/", {"username": "dave", "password": "pw-for-tests-1"})
        .status_code
        == 302
    )
    invited = _invite(api)
    assert invited.status_code == 200 and invited.json()["status"] == "invited"
    assert not Membership.objects.filter(team=alpha, user=dave).exists()
    assert "dave" not in str(api["alice"].get("/api/teams/alpha/members/").json())
    assert dave_api.get("/api/teams/alpha/members/").status_code == 404  # not in the team yet
    # The owner's trail holds the invitation, never dave's sign-in or its address.
    trail = api["alice"].get("/api/audit/", {"team": "alpha"}).json()["results"]
    assert "membership.invited" in [e["action"] for e in trail]
    assert "198.51.100.7" not in str(trail) and "user.signed_in" not in str(trail)
    assert [i["username"] for i in api["alice"].get("/api/teams/alpha/invitations/").json()] == ["dave"]


def test_accepting_joins_with_the_role_offered_and_is_audited(api, alpha, dave, dave_api):
    _invite(api, role="editor")
    mine = dave_api.get("/api/invitations/").json()
    assert [(i["team"], i["role"], i["invited_by"]) for i in mine] == [("alpha", "editor", "alice")]
    accepted = dave_api.post(f"/api/invitations/{mine[0]['id']}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == "member"
    assert Membership.objects.get(team=alpha, user=dave).role == "editor"
    assert not Invitation.objects.exists()
    added = AuditEntry.objects.get(action="membership.added", team=alpha, actor=dave)
    assert added.details["invited_by"] == "alice"
    # Even now, his sign-ins stay his own.
    Client().post("/login/", {"username": "dave", "password": "pw-for-tests-1"})
    assert api["alice"].get("/api/audit/", {"team": "alpha", "action": "user.signed_in"}).json()["count"] == 0
    assert dave_api.get("/api/audit/sign-ins/").json()["count"] == 1


def test_declining_and_withdrawing(api, alpha, dave, dave_api):
    _invite(api)
    invitation = dave_api.get("/api/invitations/").json()[0]
    assert api["carol"].post(f"/api/invitations/{invitation['id']}/accept/").status_code == 404  # not hers
    assert dave_api.post(f"/api/invitations/{invitation['id']}/decline/").status_code == 204
    assert not Membership.objects.filter(user=dave).exists()
    assert dave_api.post(f"/api/invitations/{invitation['id']}/accept/").status_code == 404
    _invite(api)
    assert api["alice"].delete("/api/teams/alpha/members/dave/").status_code == 204
    assert dave_api.get("/api/invitations/").json() == []
    actions = list(AuditEntry.objects.filter(team=alpha).values_list("action", flat=True))
    assert actions[-4:] == [
        "membership.invited", "membership.declined", "membership.invited", "membership.invitation_withdrawn",
    ]  # fmt: skip


def test_only_owners_invite_or_see_invitations(api, dave):
    assert _invite({"alice": api["bob"]}).status_code == 403
    assert api["bob"].get("/api/teams/alpha/invitations/").status_code == 403


def test_the_invitations_page_accepts(client, alpha, api, dave):
    _invite(api, role="viewer")
    client.force_login(dave)
    page = client.get("/invitations/").content.decode()
    assert "Alpha" in page and "Accept" in page
    invitation = Invitation.objects.get(user=dave)
    response = client.post(f"/invitations/{invitation.pk}/accept/")
    assert response.status_code == 302
    assert Membership.objects.get(team=alpha, user=dave).role == "viewer"
    assert "No pending invitations" in client.get("/invitations/").content.decode()
    assert client.get(f"/invitations/{invitation.pk}/accept/").status_code == 405  # a change needs a POST
