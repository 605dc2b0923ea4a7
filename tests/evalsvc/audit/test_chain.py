"""The hash chain: what is recorded, and that editing, deleting or inserting a row is caught."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from evalsvc.audit.models import AuditChainHead, AuditEntry
from evalsvc.audit.services import audit_record, audit_verify, entry_hash
from evalsvc.evaluations.services import run_cancel, run_submit
from evalsvc.teams.services import membership_set, team_create
from tests.factories import UserFactory
from workers.tasks.evaluate import run_evaluate

pytestmark = pytest.mark.django_db


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))


@pytest.fixture
def chain(alice, alpha):
    """Ten entries of team alpha."""
    for i in range(10):
        audit_record(actor=alice, team=alpha, action="test.action", details={"i": i, "ratio": i / 3, "big": 1e16})
    return list(AuditEntry.objects.order_by("seq"))


def test_state_changes_are_recorded_with_actor_team_object_and_details(client, alice, bob, alpha, bc_model, bc_data):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    run_evaluate.apply(args=[str(run.pk)])
    run_evaluate.apply(args=[str(run.pk)])  # delivered twice: finished once
    cancelled = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    run_cancel(user=alice, run_id=cancelled.pk)
    membership_set(team=alpha, user=bob, role="editor", actor=alice)
    membership_set(team=alpha, user=bob, role="editor", actor=alice)  # no change, no entry
    team = team_create(name="Delta", owner=alice)
    assert client.login(username="bob", password="pw-for-tests-1")

    assert actions() == [
        "model_version.registered",
        "dataset_version.registered",
        "run.submitted",
        "run.succeeded",
        "run.submitted",
        "run.cancelled",
        "membership.role_changed",
        "team.created",
        "user.signed_in",
    ]
    registered = AuditEntry.objects.get(action="model_version.registered")
    assert (registered.actor, registered.actor_label, registered.team) == (alice, "alice", alpha)
    assert registered.object_type == "registry.modelversion" and registered.object_id == str(bc_model.pk)
    assert registered.details["sha256"] == bc_model.sha256
    finished = AuditEntry.objects.get(action="run.succeeded")
    assert finished.actor is None and finished.actor_label.startswith("worker ")
    assert finished.details["status"] == "succeeded" and len(finished.details["result_sha256"]) == 64
    role = AuditEntry.objects.get(action="membership.role_changed")
    assert role.details == {"user": "bob", "role": "editor", "previous_role": "viewer"}
    assert AuditEntry.objects.get(action="team.created").team == team
    sign_in = AuditEntry.objects.get(action="user.signed_in")
    assert sign_in.team is None and sign_in.actor_label == "bob"

    result = audit_verify()
    assert result.ok, result.reason
    assert result.checked == len(actions()) == result.head_seq


def test_each_entry_links_to_the_one_before(chain):
    assert chain[0].prev_hash == "0" * 64
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.seq == before.seq + 1
        assert after.prev_hash == before.hash
        assert entry_hash(after) == after.hash
    assert chain[0].details["big"] == 10**16  # stored as jsonb reads it back: the hash still matches
    assert audit_verify().ok


def test_an_edited_row_is_named(chain):
    AuditEntry.objects.filter(seq=4).update(details={"i": 99})
    result = audit_verify()
    assert not result.ok
    assert result.first_broken_seq == 4 and "changed after it was written" in result.reason
    assert result.checked == 3


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(chain):
    entry = AuditEntry.objects.get(seq=4)
    entry.actor_label = "mallory"
    entry.hash = entry_hash(entry)
    entry.save()
    result = audit_verify()
    assert not result.ok and result.first_broken_seq == 5
    assert "does not link to entry #4" in result.reason


def test_a_deleted_row_is_named(chain):
    AuditEntry.objects.filter(seq=6).delete()
    result = audit_verify()
    assert not result.ok
    assert result.first_broken_seq == 6 and "#6 is missing" in result.reason


def test_deleting_the_last_rows_is_caught_by_the_chain_head(chain):
    AuditEntry.objects.filter(seq__gte=9).delete()
    result = audit_verify()
    assert not result.ok
    assert result.first_broken_seq == 9 and "cut short" in result.reason


def test_an_inserted_row_is_named(chain, alice, alpha):
    last = chain[-1]
    forged = AuditEntry(
        seq=last.seq + 1,
        team=alpha,
        actor=alice,
        actor_label="alice",
        action="report.approved",
        object_type="reports.report",
        object_id="forged",
        details={},
        created_at=last.created_at,
        prev_hash=last.hash,
    )
    forged.hash = entry_hash(forged)  # a perfectly formed entry, written around audit_record
    forged.save()
    result = audit_verify()
    assert not result.ok
    assert result.first_broken_seq == forged.seq and "not written by evalsvc" in result.reason


def test_an_inserted_row_out_of_sequence_is_named(chain, alpha):
    forged = AuditEntry(
        seq=0, team=alpha, actor_label="x", action="x", created_at=chain[0].created_at, prev_hash="0" * 64
    )
    forged.hash = entry_hash(forged)
    forged.save()
    result = audit_verify()
    assert not result.ok and result.first_broken_seq == 0 and "out of sequence" in result.reason


def test_the_management_command_exits_1_naming_the_first_broken_entry(chain, capsys):
    call_command("audit_verify")
    assert "intact: 10 entries" in capsys.readouterr().out
    call_command("audit_verify", "--team", "alpha")
    assert "10 of team alpha" in capsys.readouterr().out
    AuditEntry.objects.filter(seq=7).update(action="run.cancelled")
    with pytest.raises(CommandError) as raised:
        call_command("audit_verify")
    assert raised.value.returncode == 1
    assert "#7" in str(raised.value) and "BROKEN" in str(raised.value)


def test_an_anchor_kept_elsewhere_catches_a_rewritten_tail(chain):
    anchor = f"{chain[5].seq}:{chain[5].hash}"
    call_command("audit_verify", "--anchor", anchor)
    # Rewrite entry 6 and every later one, re-linking the chain and the head: internally consistent.
    prev = chain[4].hash
    for entry in AuditEntry.objects.filter(seq__gte=6).order_by("seq"):
        entry.details = {"i": "rewritten"}
        entry.prev_hash = prev
        entry.hash = prev = entry_hash(entry)
        entry.save()
    AuditChainHead.objects.filter(pk=1).update(last_hash=prev)
    assert audit_verify().ok  # undetectable from inside the database
    with pytest.raises(CommandError) as raised:
        call_command("audit_verify", "--anchor", anchor)
    assert raised.value.returncode == 1 and "#6" in str(raised.value)


def test_a_missing_chain_head_is_recreated_from_the_log(chain, alice, alpha):
    AuditChainHead.objects.all().delete()
    entry = audit_record(actor=alice, team=alpha, action="after.restart")
    assert entry.seq == 11 and entry.prev_hash == chain[-1].hash
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_two_threads_keep_one_unbroken_chain():
    """Two writers at once on PostgreSQL: the chain-head lock makes them take turns."""
    assert connection.vendor == "postgresql", "the suite runs against PostgreSQL (see evalsvc.settings.test)"
    user = UserFactory(username="writer")
    per_thread = 25
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def append(name: str) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                audit_record(actor=user, team=None, action=f"thread.{name}", details={"i": i})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 2 * per_thread + 1))
    assert AuditEntry.objects.filter(action="thread.a").count() == per_thread
    result = audit_verify()
    assert result.ok, result.reason
    assert result.checked == 2 * per_thread
