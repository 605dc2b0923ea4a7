"""What every job task does around its engine call: claim, report, finish.

Tasks are the only code that touches both worlds: they load by id, call one
engine function with plain values, and save through the evaluation services.
No database transaction is open while the model runs.

A database that goes away mid-job (a restart, a failover, a network cut)
costs progress writes only: the job keeps computing, skipping them. Saving
the result waits up to ``DATABASE_WAIT_S`` for the database to come back.
Any other query that fails for that reason ends the attempt: once the
database answers again the run is put back in the queue and the task
retried (``max_retries`` times, then the run fails with the reason).
"""

from __future__ import annotations

import contextlib
import logging
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, connection, transaction

from evalsvc.core.exceptions import ApplicationError
from evalsvc.evaluations import services
from evalsvc.evaluations.models import EvaluationRun, RunStatus
from workers.engine.errors import Cancelled, EngineError
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback

from .artifacts import dataset_ref, model_spec, tokenizer_path

logger = logging.getLogger(__name__)

#: Seconds between progress writes; the last batch is always written.
PROGRESS_INTERVAL_S = 0.5
#: How long a job waits for a database that went away to answer again before it gives up.
DATABASE_WAIT_S = 120.0
#: The errors of a connection lost or refused (a restart, a failover, a network cut), not of a bad query.
DATABASE_LOST = (OperationalError, InterfaceError)


def database_back(timeout: float = DATABASE_WAIT_S) -> bool:
    """Drop the broken connection and wait, backing off, until a new one opens; False after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    while True:
        with contextlib.suppress(*DATABASE_LOST):  # the old connection is gone either way
            connection.close()
        try:
            connection.ensure_connection()
            return True
        except DATABASE_LOST:
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@dataclass
class Outcome:
    """A computed result whose side effects wait for the run to succeed.

    `commit` runs in the same transaction as the success transition (it may
    fill in the result, e.g. the ids of versions it registered), so a run that
    fails, is cancelled or cannot record its success leaves nothing behind;
    `cleanup` runs afterwards whatever happened.
    """

    result: dict[str, Any]
    commit: Callable[[dict[str, Any]], None] | None = None
    cleanup: Callable[[], None] | None = None


class JobFailed(EngineError):
    """The job ran but produced nothing worth calling a success; `result` keeps what it found."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message, permanent=True)
        self.result = result


class _NotRunning(Exception):
    """The run left `running` (cancelled) before its success was recorded."""


Compute = Callable[[EvaluationRun, ProgressCallback], "dict[str, Any] | Outcome"]

_VERSIONED = ("numpy", "onnx", "onnxruntime", "scikit-learn", "pandas", "pyarrow")


def load_artifacts(run: EvaluationRun, *, label_column: str | None = None) -> tuple[ModelSpec, DatasetRef, str | None]:
    """The run's model, data set and tokenizer as local files; storage hiccups are worth a retry."""
    try:
        model = model_spec(run.model_version)
        assert run.dataset_version is not None
        data = dataset_ref(run.dataset_version, label_column=label_column)
        tokenizer = tokenizer_path(run.model_version)
    except OSError as exc:
        raise EngineError(f"could not read a stored artifact: {exc}", permanent=False) from exc
    return model, data, tokenizer


def host_environment() -> dict[str, Any]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
    }


def progress_reporter(run_id: str, unit: str = "rows") -> ProgressCallback:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < PROGRESS_INTERVAL_S:
            return
        last[0] = now
        fraction = done / total if total else 0.0
        try:
            status = services.run_progress(run_id=run_id, fraction=fraction, message=f"{done:,} of {total:,} {unit}")
        except DATABASE_LOST as exc:  # progress can wait; the job goes on and the next write tries again
            logger.warning("run %s: progress not recorded, the database is unreachable: %s", run_id, exc)
            with contextlib.suppress(*DATABASE_LOST):
                connection.close()
            return
        if status == RunStatus.CANCELLED:
            raise Cancelled()

    return report


def execute_run(task: Task, run_id: str, compute: Compute, *, resume: bool = False) -> str:
    """Run `compute` for a run and record the outcome; returns the final status.

    ``resume``: a later step of a run already started (see ``services.run_start``).
    """
    try:
        run = services.run_start(
            run_id=run_id, worker=task.request.hostname or socket.gethostname(), task_id=task.request.id, resume=resume
        )
    except DATABASE_LOST as exc:  # the run cannot even be claimed: try again once the database is back
        logger.warning("run %s: the database is unreachable at start: %s", run_id, exc)
        database_back()
        raise task.retry(exc=exc, countdown=1, max_retries=(task.max_retries or 0) + 3) from exc
    if run is None:
        return "skipped"
    started = time.monotonic()
    outcome: Outcome | None = None
    try:
        computed = compute(run, progress_reporter(run_id))
        outcome = computed if isinstance(computed, Outcome) else Outcome(computed)
        return _succeed_when_saved(run_id, outcome, started)
    except DATABASE_LOST as exc:
        return _database_lost(task, run_id, exc)
    except (Cancelled, _NotRunning):
        return RunStatus.CANCELLED
    except SoftTimeLimitExceeded:
        services.run_fail(run_id=run_id, message=f"the job ran past its time limit of {task.soft_time_limit} s")
        return RunStatus.FAILED
    except ApplicationError as exc:  # a service refused something the job produced
        services.run_fail(run_id=run_id, message=exc.message)
        return RunStatus.FAILED
    except JobFailed as exc:
        services.run_fail(run_id=run_id, message=exc.message, result=exc.result)
        return RunStatus.FAILED
    except EngineError as exc:
        if not exc.permanent and task.request.retries < (task.max_retries or 0):
            services.run_requeue(run_id=run_id, message=exc.message)
            raise task.retry(exc=exc) from exc
        services.run_fail(run_id=run_id, message=exc.message)
        return RunStatus.FAILED
    except Exception as exc:
        logger.exception("run %s failed with an internal error", run_id)
        services.run_fail(run_id=run_id, message=f"internal error: {exc.__class__.__name__}: {exc}")
        return RunStatus.FAILED
    finally:
        if outcome is not None and outcome.cleanup is not None:
            outcome.cleanup()


def _database_lost(task: Task, run_id: str, exc: Exception) -> str:
    """A query failed because the database went away: rerun the job once it is back, or fail it with the reason."""
    logger.warning("run %s: the database went away mid-job: %s", run_id, exc)
    what = f"the database connection was lost mid-job ({exc.__class__.__name__})"
    if not database_back():
        raise task.retry(exc=exc, countdown=5) from exc  # nothing can be recorded yet; a later attempt will
    if task.request.retries < (task.max_retries or 0):
        services.run_requeue(run_id=run_id, message=f"{what}; running it again")
        raise task.retry(exc=exc, countdown=1) from exc
    services.run_fail(run_id=run_id, message=f"{what} on each of {task.request.retries + 1} attempts; submit it again")
    return RunStatus.FAILED


def _succeed_when_saved(run_id: str, outcome: Outcome, started: float) -> str:
    """:func:`_succeed`, waiting for the database if it went away just then (the transaction makes it safe to redo)."""
    try:
        return _succeed(run_id, outcome, started)
    except DATABASE_LOST as exc:
        logger.warning("run %s: could not save the result, waiting for the database: %s", run_id, exc)
        if not database_back():
            raise
        if EvaluationRun.objects.filter(pk=run_id, status=RunStatus.SUCCEEDED).exists():
            return RunStatus.SUCCEEDED  # the commit went through before the connection broke
        return _succeed(run_id, outcome, started)


def _succeed(run_id: str, outcome: Outcome, started: float) -> str:
    result = outcome.result
    with transaction.atomic():
        if outcome.commit is not None:
            outcome.commit(result)
        environment = {
            **host_environment(),
            **(result.get("backend") or {}),
            "duration_s": time.monotonic() - started,
        }
        if not services.run_succeed(run_id=run_id, result=result, environment=environment):
            raise _NotRunning()  # roll back what `commit` wrote
    return RunStatus.SUCCEEDED


def job_task(name: str, *, queue: str, soft_time_limit: int = 3600) -> Callable[[Callable[..., Any]], Any]:
    """The run-time policy every job task shares, in one place.

    Acknowledged after it finishes (a worker that dies mid-job hands the run
    to another), bounded retries for transient errors only (execute_run
    decides which), and a soft limit that ends the run with a clear message.
    The queue here is the default; submission routes each run to the queue of
    a worker that offers what it asked for.
    """
    return shared_task(
        bind=True,
        name=name,
        queue=queue,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=soft_time_limit,
        time_limit=soft_time_limit + 60,
        max_retries=3,
        default_retry_delay=5,
    )
