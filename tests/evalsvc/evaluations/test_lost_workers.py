"""Runs of a worker that stopped reporting: requeued up to three starts, then failed with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.recovery import runs_of_lost_workers_recover
from evalsvc.evaluations.services import run_start
from evalsvc.fleet.models import WorkerStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(alice, alpha, bc_model, bc_data):
    def make(worker: str, *, attempts: int = 1, minutes_ago: int = 5) -> EvaluationRun:
        return EvaluationRun.objects.create(
            team=alpha, kind="evaluate", model_version=bc_model, dataset_version=bc_data, created_by=alice,
            status="running", worker=worker, attempts=attempts, queue="cpu", celery_task_id="old-task",
            started_at=timezone.now() - timedelta(minutes=minutes_ago),
        )  # fmt: skip

    return make


def _worker(name: str, seconds_ago: int) -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    WorkerStatus.objects.create(hostname=name, queues=["cpu"], started_at=seen, last_seen=seen)


def test_lost_workers_runs_are_requeued_or_failed(running, django_capture_on_commit_callbacks):
    from evalsvc.celery import app

    _worker("gone@host", seconds_ago=300)
    _worker("alive@host", seconds_ago=5)
    lost = running("gone@host")
    worn = running("gone@host", attempts=3)
    healthy = running("alive@host")
    fresh = running("gone@host", minutes_ago=0)  # just started: within the window
    with django_capture_on_commit_callbacks(execute=True):
        recovered = runs_of_lost_workers_recover()
    assert sorted((r.run_id, r.action) for r in recovered) == sorted(
        [(str(lost.pk), "requeued"), (str(worn.pk), "failed")]
    )
    lost.refresh_from_db()
    assert lost.status == "queued" and "gone@host stopped reporting" in lost.progress_message
    assert lost.celery_task_id not in ("", "old-task")  # sent again, under a new id
    worn.refresh_from_db()
    assert worn.status == "failed" and "stopped reporting" in worn.error and "submit it again" in worn.error
    for run in (healthy, fresh):
        run.refresh_from_db()
        assert run.status == "running"
    app.control.purge()


def test_the_old_message_no_longer_claims_a_requeued_run(running):
    run = running("gone@host")
    EvaluationRun.objects.filter(pk=run.pk).update(status="queued", celery_task_id="new-task")
    # The requeued message reaches the queued run first and owns it.
    assert run_start(run_id=run.pk, worker="w@host", task_id="new-task") is not None
    # The lost worker's message, handed out again by the broker later, does not run it twice.
    assert run_start(run_id=run.pk, worker="late@host", task_id="old-task") is None
    # A redelivery of the owning message (a pool child killed) still claims it.
    assert run_start(run_id=run.pk, worker="w2@host", task_id="new-task") is not None
    run.refresh_from_db()
    assert run.worker == "w2@host" and run.celery_task_id == "new-task"


def test_a_queued_run_is_claimed_by_whichever_message_reaches_it(running):
    run = running("w@host")
    EvaluationRun.objects.filter(pk=run.pk).update(status="queued", celery_task_id="sent-id")
    assert run_start(run_id=run.pk, worker="w@host", task_id="eager-id") is not None  # e.g. task.apply()
    run.refresh_from_db()
    assert run.celery_task_id == "eager-id"


def test_runs_the_broker_could_not_take_are_sent_once_it_answers(running, monkeypatch):
    from evalsvc.celery import app
    from evalsvc.evaluations import services
    from evalsvc.evaluations.recovery import UNSENT_AFTER_S, runs_unsent_enqueue

    old = running("w@host")
    EvaluationRun.objects.filter(pk=old.pk).update(
        status="queued", celery_task_id="", progress_message=services.UNSENT_MESSAGE,
        updated_at=timezone.now() - timedelta(seconds=UNSENT_AFTER_S + 1),
    )  # fmt: skip
    fresh = running("w@host")  # its own request may still be sending it
    EvaluationRun.objects.filter(pk=fresh.pk).update(status="queued", celery_task_id="")
    sent = running("w@host")
    EvaluationRun.objects.filter(pk=sent.pk).update(
        status="queued", celery_task_id="taken", updated_at=timezone.now() - timedelta(minutes=5)
    )

    def refused(*args, **kwargs):
        raise ConnectionRefusedError("the broker is down")

    with monkeypatch.context() as patch:  # the broker refusing: the run stays queued, unsent, saying why
        patch.setattr(app, "send_task", refused)
        assert runs_unsent_enqueue() == 0
    old.refresh_from_db()
    assert (old.status, old.celery_task_id, old.progress_message) == ("queued", "", services.UNSENT_MESSAGE)

    EvaluationRun.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(seconds=UNSENT_AFTER_S + 1))
    assert runs_unsent_enqueue() == 1  # the real broker answers
    assert runs_unsent_enqueue() == 0  # and nothing is sent twice
    old.refresh_from_db()
    assert old.status == "queued" and old.celery_task_id not in ("", "taken")
    assert old.progress_message == "waiting for a worker"
    fresh.refresh_from_db()
    sent.refresh_from_db()
    assert fresh.celery_task_id == "" and sent.celery_task_id == "taken"
    app.control.purge()
