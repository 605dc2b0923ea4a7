"""A row forged beyond the chain head: audited actions are refused with a clear message and an alert."""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from evalsvc.audit.models import AuditChainHead, AuditEntry
from evalsvc.audit.services import audit_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _forge_next_row(alpha) -> int:
    audit_record(actor=None, team=alpha, action="test.first")
    head = AuditChainHead.objects.get(pk=1)
    AuditEntry.objects.create(
        seq=head.last_seq + 1, team=alpha, actor_label="mallory", action="report.approved",
        created_at=timezone.now(), prev_hash=head.last_hash, hash="f" * 64,
    )  # fmt: skip
    return head.last_seq + 1


@override_settings(ADMINS=[("ops", "ops@example.com")])
def test_api_action_is_refused_with_a_message_and_an_alert(api, alpha, caplog):
    forged = _forge_next_row(alpha)
    UserFactory(username="dave")
    with caplog.at_level(logging.CRITICAL, logger="evalsvc.audit.services"):
        response = api["alice"].post("/api/teams/alpha/members/", {"username": "dave", "role": "viewer"}, format="json")
        again = api["alice"].post("/api/teams/alpha/members/", {"username": "dave", "role": "viewer"}, format="json")
    assert response.status_code == 503 and again.status_code == 503
    detail = response.json()["detail"]
    assert f"entry #{forged} lies beyond the chain head (#{forged - 1})" in detail
    assert "audit_verify" in detail
    # Nothing half-done: the change was not made.
    assert not alpha.memberships.filter(user__username="dave").exists()
    assert any(r.levelno == logging.CRITICAL and f"#{forged}" in r.getMessage() for r in caplog.records)
    alerts = [m for m in mail.outbox if "audit trail damaged" in m.subject]
    assert len(alerts) == 1  # once, not per request
    assert alerts[0].to == ["ops@example.com"] and f"#{forged}" in alerts[0].body


def test_page_action_is_refused_with_the_message(client, alice, alpha):
    client.force_login(alice)
    forged = _forge_next_row(alpha)
    response = client.post("/logout/")
    page = client.post("/login/", {"username": "alice", "password": "pw-for-tests-1"})
    assert page.status_code == 503
    assert f"entry #{forged} lies beyond the chain head" in page.content.decode()
    assert response.status_code in (200, 302)
