"""Runs whose worker is gone: put back in the queue, or failed with the reason.

Tasks are acknowledged late, so a pool child killed mid-job is redelivered
by Celery at once. A worker whose main process dies (``kill -9``, a lost
host) leaves its message unacknowledged with the broker until the broker's
visibility timeout (an hour on Redis), and the run ``running`` all that
time. Workers report in every ``HEARTBEAT_S``; a running run whose worker
has not reported for ``STALE_AFTER_S`` is requeued under a new task id (the
old message, if redelivered later, no longer matches and is skipped), up to
``MAX_ATTEMPTS`` starts, and failed with a clear message after that.

A run whose message the broker could not take (the broker was down when it
was submitted, or when it was requeued) stays queued without a task id;
:func:`runs_unsent_enqueue` sends it once the broker is back. Every worker's
heartbeat thread calls it, as does the beat task that recovers lost workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from evalsvc.fleet.models import WorkerStatus
from evalsvc.fleet.selectors import STALE_AFTER_S, live_workers

from .auditing import record_run
from .models import EvaluationRun, RunStatus
from .services import _enqueue, run_fail

#: A run younger than this may still be on its way to the broker from the request that created it.
UNSENT_AFTER_S = 10

logger = logging.getLogger(__name__)

#: Starts a run may have before a lost worker fails it instead of requeueing it.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Recovered:
    run_id: str
    worker: str
    action: str  # "requeued" or "failed"


def runs_unsent_enqueue() -> int:
    """Send every queued run that has no task id (its broker was down); returns how many the broker took."""
    cutoff = timezone.now() - timedelta(seconds=UNSENT_AFTER_S)
    unsent = EvaluationRun.objects.filter(status=RunStatus.QUEUED, celery_task_id="", updated_at__lt=cutoff)
    sent = 0
    for run_id in unsent.order_by("created_at").values_list("pk", flat=True):
        if _enqueue(run_id):
            sent += 1
        elif EvaluationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, celery_task_id="").exists():
            break  # the broker is still down: the next round tries again
        else:
            continue  # another sender took it, or it was cancelled
        logger.info("run %s sent to the job queue after it came back", run_id)
    return sent


def runs_of_lost_workers_recover() -> list[Recovered]:
    """Requeue (or fail) every running run whose worker stopped reporting."""
    cutoff = timezone.now() - timedelta(seconds=STALE_AFTER_S)
    live = set(live_workers().values_list("hostname", flat=True))
    orphans = EvaluationRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=cutoff).exclude(worker__in=live)
    recovered = []
    for run in orphans:
        seen = WorkerStatus.objects.filter(hostname=run.worker).values_list("last_seen", flat=True).first()
        when = f"last reported {seen:%Y-%m-%d %H:%M:%S} UTC" if seen else "never reported"
        if run.attempts < MAX_ATTEMPTS:
            with transaction.atomic():
                moved = EvaluationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=run.worker).update(
                    status=RunStatus.QUEUED,
                    celery_task_id="",
                    progress=0.0,
                    progress_message=f"requeued: worker {run.worker} stopped reporting ({when})"[:300],
                    updated_at=timezone.now(),
                )
                if moved:
                    record_run(run.pk, "run.requeued")
                    transaction.on_commit(partial(_enqueue, run.pk))
            action = "requeued"
        else:
            message = (
                f"the worker {run.worker} running this job stopped reporting ({when}) and the job was lost "
                f"with it, {run.attempts} times; submit it again"
            )
            moved = run_fail(run_id=run.pk, message=message)
            action = "failed"
        if moved:
            logger.warning("run %s: worker %s lost, run %s", run.pk, run.worker, action)
            recovered.append(Recovered(run_id=str(run.pk), worker=run.worker, action=action))
    return recovered
