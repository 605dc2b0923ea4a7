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
from importlib import metadata
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from evalsvc.evaluations import services
from evalsvc.evaluations.models import EvaluationRun, RunStatus
from workers.engine.errors import Cancelled, EngineError
from workers.engine.types import ProgressCallback

logger = logging.getLogger(__name__)

#: Seconds between progress writes; the last batch is always written.
PROGRESS_INTERVAL_S = 0.5

Compute = Callable[[EvaluationRun, ProgressCallback], dict[str, Any]]

_VERSIONED = ("numpy", "onnx", "onnxruntime", "scikit-learn", "pandas", "pyarrow")


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


def execute_run(task: Task, run_id: str, compute: Compute) -> str:
    """Run `compute` for a run and record the outcome; returns the final status."""
    run = services.run_start(run_id=run_id, worker=task.request.hostname or socket.gethostname())
    if run is None:
        return "skipped"
    started = time.monotonic()
    try:
        result = compute(run, progress_reporter(run_id))
    except Cancelled:
        return RunStatus.CANCELLED
    except SoftTimeLimitExceeded:
        services.run_fail(run_id=run_id, message=f"the job ran past its time limit of {task.soft_time_limit} s")
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
    environment = {**host_environment(), **(result.get("backend") or {}), "duration_s": time.monotonic() - started}
    services.run_succeed(run_id=run_id, result=result, environment=environment)
    return RunStatus.SUCCEEDED
