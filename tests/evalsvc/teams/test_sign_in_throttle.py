"""Sign-in throttling by account and by address, on the login page and the token endpoint; failures audited."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from evalsvc.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

RIGHT = "pw-for-tests-1"
LIMIT = 5  # AXES_FAILURE_LIMIT's default


def _login(username: str, password: str, ip: str):
    return Client(REMOTE_ADDR=ip).post("/login/", {"username": username, "password": password})


def _token(username: str, password: str, ip: str):
    return APIClient(REMOTE_ADDR=ip).post("/api/auth/token/", {"username": username, "password": password})


def test_login_page_locks_an_account_guessed_from_many_addresses(alice, bob):
    answers = [_login("alice", f"guess-{i}", f"10.1.0.{i}").status_code for i in range(LIMIT)]
    assert answers[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert answers[-1] == 429
    # The right password from a fresh address no longer gets in for the cool-off.
    refused = _login("alice", RIGHT, "10.1.0.99")
    assert refused.status_code == 429
    assert "too many failed sign-ins" in refused.content.decode()
    # Another account from that address is not affected.
    assert _login("bob", RIGHT, "10.1.0.99").status_code == 302


def test_login_page_locks_an_address_guessing_many_accounts(alice):
    for i in range(LIMIT):
        _login(f"nobody-{i}", "guess", "10.2.0.1")
    assert _login("alice", RIGHT, "10.2.0.1").status_code == 429
    assert _login("alice", RIGHT, "10.2.0.2").status_code == 302


def test_failed_sign_ins_are_audited(alice):
    _login("alice", "guess", "10.3.0.1")
    _token("alice", "guess", "10.3.0.2")
    _token("ghost", "guess", "10.3.0.3")
    entries = list(AuditEntry.objects.filter(action="user.sign_in_failed").order_by("seq"))
    assert [(e.details["via"], e.details["username"], e.details["ip"]) for e in entries] == [
        ("session", "alice", "10.3.0.1"),
        ("api token", "alice", "10.3.0.2"),
        ("api token", "ghost", "10.3.0.3"),
    ]
    assert entries[0].object_id == str(alice.pk) and entries[2].object_id == ""  # no such account
    assert all(e.team_id is None and e.actor_id is None and e.actor_label == "anonymous" for e in entries)
    assert "guess" not in str([e.details for e in entries])  # the password tried is never stored
    assert not AuditEntry.objects.filter(action="user.signed_in").exists()


def test_token_endpoint_shares_the_lockout(alice):
    # Four wrong passwords on the page, the fifth on the API: one count per account.
    for i in range(LIMIT - 1):
        _login("alice", f"guess-{i}", f"10.4.0.{i}")
    locked = _token("alice", "guess", "10.4.1.1")
    assert locked.status_code == 429, locked.json()
    assert "too many failed sign-ins" in locked.json()["detail"]
    right = _token("alice", RIGHT, "10.4.1.2")
    assert right.status_code == 429 and "token" not in right.json()
    assert int(right["Retry-After"]) > 0
    entries = AuditEntry.objects.filter(action="user.sign_in_failed").order_by("seq")
    assert entries.last().details["locked_out"] is True


def test_token_endpoint_rate_limits_an_address_even_with_forged_forwarding(alice):
    client = APIClient(REMOTE_ADDR="10.5.0.1")
    answers = [
        client.post(
            "/api/auth/token/", {"username": "alice", "password": RIGHT}, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}"
        ).status_code
        for i in range(12)
    ]
    assert answers[:10] == [200] * 10
    assert answers[10:] == [429, 429]
    assert (
        APIClient(REMOTE_ADDR="10.5.0.2").post("/api/auth/token/", {"username": "alice", "password": RIGHT}).status_code
        == 200
    )


def test_sign_in_without_a_request_is_not_throttled(alice):
    # Management commands and the test client's login() authenticate without a request.
    from django.contrib.auth import authenticate

    for i in range(LIMIT):
        _login("alice", f"guess-{i}", "10.6.0.1")
    assert authenticate(username="alice", password=RIGHT) == alice
