"""What every job task does around its engine call: claim, report, finish.

Tasks are the only code that touches both worlds: they load by id, call one
engine function with plain values, and save through the evaluation services.
No database transaction is open while the model runs.
"""

from __future__ import annotations

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
from django.db import transaction

from evalsvc.core.exceptions import ApplicationError
from evalsvc.evaluations import services
from evalsvc.evaluations.models import EvaluationRun, RunStatus
from workers.engine.errors import Cancelled, EngineError
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback

from .artifacts import dataset_ref, model_spec, tokenizer_path

logger = logging.getLogger(__name__)

#: Seconds between progress writes; the last batch is always written.
PROGRESS_INTERVAL_S = 0.5


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
        status = services.run_progress(run_id=run_id, fraction=fraction, message=f"{done:,} of {total:,} {unit}")
        if status == RunStatus.CANCELLED:
            raise Cancelled()

    return report


def execute_run(task: Task, run_id: str, compute: Compute, *, resume: bool = False) -> str:
    """Run `compute` for a run and record the outcome; returns the final status.

    ``resume``: a later step of a run already started (see ``services.run_start``).
    """
    run = services.run_start(
        run_id=run_id, worker=task.request.hostname or socket.gethostname(), task_id=task.request.id, resume=resume
    )
    if run is None:
        return "skipped"
    started = time.monotonic()
    outcome: Outcome | None = None
    try:
        computed = compute(run, progress_reporter(run_id))
        outcome = computed if isinstance(computed, Outcome) else Outcome(computed)
        return _succeed(run_id, outcome, started)
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
