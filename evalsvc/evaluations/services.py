"""Writes to evaluation runs: submission and the state machine.

Every transition is a conditional UPDATE on the current status, so a cancel
racing a worker, or a task delivered twice, can never move a run backwards
or overwrite a finished result.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evalsvc.core.exceptions import Conflict, ValidationFailed
from evalsvc.core.models import Pk
from evalsvc.core.users import User
from evalsvc.registry.deferred import require_ready
from evalsvc.registry.selectors import dataset_version_get, model_version_get
from evalsvc.teams.selectors import require_write

from .auditing import audited_transition, record_run
from .headline import run_headline
from .kinds import get_kind
from .models import FINISHED, EvaluationRun, RunStatus
from .selectors import run_get

logger = logging.getLogger(__name__)


@transaction.atomic
def run_submit(
    *,
    user: User,
    model_version_id: Pk,
    dataset_version_id: Pk | None,
    kind: str = "evaluate",
    params: dict[str, Any] | None = None,
) -> EvaluationRun:
    """Validate a job completely, store it queued, and enqueue it once the row is committed."""
    model_version = model_version_get(user=user, pk=model_version_id)
    job_kind = get_kind(kind)
    dataset_version = None
    if dataset_version_id:
        dataset_version = dataset_version_get(user=user, pk=dataset_version_id)
    elif job_kind.needs_dataset:
        raise ValidationFailed(f"a {job_kind.name} job needs a data set version ('dataset_version')")
    if dataset_version is not None and dataset_version.team_id != model_version.team_id:
        raise ValidationFailed("the model version and the data set version belong to different teams")
    require_write(user=user, team=model_version.team)
    require_ready(model_version)
    if dataset_version is not None:
        require_ready(dataset_version)
    if not isinstance(params or {}, dict):
        raise ValidationFailed("params must be a JSON object")
    cleaned = job_kind.clean_params(dict(params or {}), model_version, dataset_version)
    queue = job_kind.route(cleaned, model_version)

    run = EvaluationRun.objects.create(
        team=model_version.team,
        kind=job_kind.name,
        model_version=model_version,
        dataset_version=dataset_version,
        params=cleaned,
        queue=queue,
        created_by=user,
        progress_message="waiting for a worker",
    )
    record_run(run, "run.submitted", actor=user)
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


#: What a queued run says while the broker cannot take its message.
UNSENT_MESSAGE = "waiting for the job queue, which could not be reached; the job is sent as soon as it is back"


def _enqueue(run_id: Pk) -> bool:
    """Send a queued run's message; True when the broker took it.

    The run is claimed for this send first (its task id written where there
    was none), so two senders never both send it. When the broker cannot be
    reached the claim is undone and the run stays queued with no task id,
    saying so: :func:`evalsvc.evaluations.recovery.runs_unsent_enqueue` sends
    it once the broker is back. Nothing is lost and nothing runs twice.
    """
    run = EvaluationRun.objects.get(pk=run_id)
    job_kind = get_kind(run.kind)
    task_id = str(uuid.uuid4())
    claimed = EvaluationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, celery_task_id="").update(
        celery_task_id=task_id
    )
    if not claimed:
        return False  # sent already, or no longer queued
    try:
        current_app.send_task(job_kind.task_name, args=[str(run.pk)], queue=run.queue, task_id=task_id)
    except Exception as exc:  # the broker is down: keep the run queued, unsent, and say so
        logger.warning("could not enqueue run %s: %s: %s", run_id, exc.__class__.__name__, exc)
        EvaluationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, celery_task_id=task_id).update(
            celery_task_id="", progress_message=UNSENT_MESSAGE, updated_at=timezone.now()
        )
        return False
    EvaluationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, progress_message=UNSENT_MESSAGE).update(
        progress_message="waiting for a worker", updated_at=timezone.now()
    )
    return True


def run_cancel(*, user: User, run_id: Pk) -> EvaluationRun:
    run = run_get(user=user, pk=run_id)
    require_write(user=user, team=run.team)
    changed = EvaluationRun.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.CANCELLED,
        finished_at=timezone.now(),
        progress_message="cancelled by user",
        updated_at=timezone.now(),
    )
    run.refresh_from_db()
    if not changed:
        raise Conflict(f"the run has already {run.status}; only queued or running runs can be cancelled")
    record_run(run, "run.cancelled", actor=user)
    if run.celery_task_id:
        try:  # a queued task is dropped; a running one stops at its next batch
            current_app.control.revoke(run.celery_task_id)
        except Exception:  # some transports have no broadcast; the worker still checks the status
            logger.info("revoke not delivered for run %s", run.pk)
    return run


# --- transitions driven by the worker -----------------------------------------


def run_start(*, run_id: Pk, worker: str, task_id: str | None = None, resume: bool = False) -> EvaluationRun | None:
    """Claim a run for execution; None when it was cancelled or already finished.

    A queued run is claimed by the first message that reaches it, which
    becomes its task. A run already `running` may be claimed again by the same
    task: that is a redelivery after a worker died mid-job (tasks are
    acknowledged late). Another task's message does not claim a running run:
    after a lost worker's run was requeued, the old message, handed out again
    when the broker's visibility timeout ends, must not run it a second time.
    ``resume`` claims it for a later step of the same execution (merging a
    split run's chunks, a task of its own): its start time and progress stay.
    """
    now = timezone.now()
    mine = EvaluationRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    fields: dict[str, Any] = {"status": RunStatus.RUNNING, "worker": worker[:200], "error": "", "updated_at": now}
    if task_id and not resume:
        mine = mine.filter(Q(status=RunStatus.QUEUED) | Q(celery_task_id__in=["", task_id]))
        fields["celery_task_id"] = task_id
    if resume:
        fields["progress_message"] = "merging"
    else:
        fields.update(started_at=now, progress=0.0, progress_message="starting")
    claimed = mine.update(**fields)
    if not claimed:
        return None
    run = EvaluationRun.objects.select_related("model_version", "dataset_version").get(pk=run_id)
    EvaluationRun.objects.filter(pk=run_id).update(attempts=run.attempts + 1)
    return run


def run_progress(*, run_id: Pk, fraction: float, message: str) -> str:
    """Record progress; returns the run's status so the worker notices a cancel."""
    EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        progress=max(0.0, min(1.0, fraction)), progress_message=message[:300], updated_at=timezone.now()
    )
    return EvaluationRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or RunStatus.CANCELLED


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±Infinity) as None: JSON, and PostgreSQL's json type, have none."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@audited_transition("run.succeeded")
def run_succeed(*, run_id: Pk, result: dict[str, Any], environment: dict[str, Any]) -> bool:
    now = timezone.now()
    result = _json_safe(result)
    return bool(
        EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.SUCCEEDED,
            result=result,
            headline=run_headline(result),
            environment=environment,
            progress=1.0,
            progress_message="done",
            finished_at=now,
            updated_at=now,
        )
    )


@audited_transition("run.failed")
def run_fail(*, run_id: Pk, message: str, result: dict[str, Any] | None = None) -> bool:
    """End a run as failed; `result` keeps what a job found before it failed (e.g. each candidate's error)."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": RunStatus.FAILED,
        "error": message,
        "progress_message": "failed",
        "finished_at": now,
        "updated_at": now,
    }
    if result is not None:
        fields["result"] = result
        fields["headline"] = run_headline(result)
    return bool(EvaluationRun.objects.filter(pk=run_id).exclude(status__in=FINISHED).update(**fields))


def run_requeue(*, run_id: Pk, message: str) -> bool:
    """Put a running run back in the queue before a retry of a transient failure."""
    return bool(
        EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.QUEUED, progress_message=f"retrying: {message}"[:300], updated_at=timezone.now()
        )
    )
