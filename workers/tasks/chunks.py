"""Splitting a job by row ranges across workers and merging the parts: a Celery group joined by a chord.

A kind whose work is a pass over rows describes its two halves as a
:class:`ChunkedJob` and registers it; its task then calls
:func:`execute_chunked` instead of :func:`~workers.tasks.common.execute_run`::

    JOB = register(ChunkedJob(
        name="evaluate",
        compute=lambda run, start, stop, progress: {...numpy arrays...},  # one row range
        merge=lambda run, parts: {...result...},   # every range's arrays, in row order
    ))

    @job_task("evalsvc.evaluate", queue=CPU)
    def run_evaluate(self, run_id):
        return execute_chunked(self, run_id, JOB, rows=..., fallback=_compute)

What happens:

- ``rows`` at most the job's chunk size (``settings.EVALSVC_CHUNK_ROWS``, or
  the setting the job names) or unknown: ``fallback`` runs the whole job in
  this task, as before.
- Otherwise the run is claimed. A job with a ``plan`` decides here, once,
  what every chunk and the merge must share (how many rows it splits, and a
  JSON object such as a sample count chosen from a time budget); it is stored
  as ``runs/<run id>/chunks/plan.json`` and read back with :func:`job_plan`
  (a requeued run keeps the plan its done chunks were computed with). The
  rows are split into ranges of at most the chunk size
  (:func:`~workers.engine.evaluate.partial.split_rows`; with ``align``, ranges
  of whole blocks of that many rows), one
  :class:`~evalsvc.evaluations.models.RunChunk` row each, and one
  ``evalsvc.chunk`` task per range is sent as a Celery ``group`` to the run's
  queue, so every worker on it takes a share.
- A chunk task calls ``compute(run, start, stop, progress)``; ``progress``
  counts rows within the range and the run's progress is the rows done
  across every chunk, with how many chunks are done. The arrays it returns are stored (``numpy.savez``, no
  pickles) in the default storage under ``runs/<run id>/chunks/<index>.npz``:
  keyed by (run, chunk index), so a chunk run twice (redelivered, retried)
  writes the same file and counts once.
- Transient failures (an :class:`EngineError` that is not permanent, a
  storage ``OSError``) are retried up to ``max_retries`` times; tasks are
  acknowledged late, so a chunk whose worker dies is run by another (the
  run's ``worker`` is the one that claimed its latest chunk, which is what
  lost-worker recovery watches; a requeued run sends only the chunks not
  yet done, or straight the merge). Any
  other failure, or a transient one after its retries, fails the run with
  the chunk's message. A cancelled or failed run stops its remaining chunks:
  each checks the status when it starts and at every progress report.
- The chord: the chunk that finds every chunk done (under a row lock on the
  run; no result backend is needed) sends ``evalsvc.chunk_merge``, which
  loads every part in row order, calls ``merge(run, parts)`` and records the
  result like any job (``execute_run``); the stored parts are deleted once
  the run has finished, whatever the outcome.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from celery import Task, group, shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from evalsvc.core.exceptions import ApplicationError
from evalsvc.evaluations import chunking, services
from evalsvc.evaluations.models import EvaluationRun, RunStatus
from workers.engine.errors import Cancelled, EngineError
from workers.engine.evaluate.partial import split_rows
from workers.engine.types import ProgressCallback

from .common import PROGRESS_INTERVAL_S, Compute, Outcome, execute_run, progress_reporter

logger = logging.getLogger(__name__)

__all__ = ["ChunkedJob", "execute_chunked", "job_plan", "register", "run_chunk", "run_chunk_merge"]

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ChunkedJob:
    """The two halves of a job split by rows (see the module docstring)."""

    name: str
    compute: Callable[[EvaluationRun, int, int, ProgressCallback], Arrays]
    merge: Callable[[EvaluationRun, list[Arrays]], dict[str, Any] | Outcome]
    #: The setting that holds the most rows a chunk has.
    setting: str = "EVALSVC_CHUNK_ROWS"
    #: Ranges start at multiples of this many rows (a job whose unit of work is a block of rows).
    align: int = 1
    #: Run once before the split: (rows to split, JSON-ready plan every chunk and the merge read with job_plan).
    plan: Callable[[EvaluationRun, ProgressCallback], tuple[int, dict[str, Any]]] | None = None


_JOBS: dict[str, ChunkedJob] = {}


def register(job: ChunkedJob) -> ChunkedJob:
    _JOBS[job.name] = job
    return job


def chunk_rows(job: ChunkedJob | None = None) -> int:
    size = max(1, int(getattr(settings, job.setting if job else "EVALSVC_CHUNK_ROWS")))
    if job is not None and job.align > 1:
        size = -(-size // job.align) * job.align
    return size


def split_ranges(rows: int, size: int, align: int = 1) -> list[tuple[int, int]]:
    """Balanced ``[start, stop)`` ranges of at most ``size`` rows; with ``align``, each starts on a block boundary."""
    if align <= 1:
        return split_rows(rows, size)
    blocks = split_rows(-(-rows // align), max(1, size // align))
    return [(a * align, min(b * align, rows)) for a, b in blocks]


def plan_key(run_id: object) -> str:
    return f"runs/{run_id}/chunks/plan.json"


def job_plan(run_id: object) -> dict[str, Any]:
    """The plan a job with a ``plan`` decided before its split (see :class:`ChunkedJob`)."""
    try:
        with default_storage.open(plan_key(run_id), "rb") as handle:
            stored = json.loads(handle.read())
    except OSError as exc:
        raise EngineError(f"could not read the job's plan: {exc}", permanent=False) from exc
    return dict(stored["plan"])


def _planned_rows(task: Task, run: EvaluationRun, job: ChunkedJob) -> int | str:
    """The rows the job's plan splits (stored with the plan), or the run's final status when planning ended it."""
    assert job.plan is not None
    run_id = str(run.pk)
    key = plan_key(run_id)
    if chunking.chunks_of(run_id) and default_storage.exists(key):
        with default_storage.open(key, "rb") as handle:  # requeued: the done chunks used this plan
            return int(json.loads(handle.read())["rows"])
    try:
        rows, plan = job.plan(run, progress_reporter(run_id))
        _store_bytes(key, json.dumps({"rows": rows, "plan": plan}).encode())
    except Cancelled:
        return RunStatus.CANCELLED
    except (EngineError, OSError) as exc:
        transient = isinstance(exc, OSError) or not exc.permanent
        message = exc.message if isinstance(exc, EngineError) else f"could not store the job's plan: {exc}"
        if transient and task.request.retries < (task.max_retries or 0):
            services.run_requeue(run_id=run_id, message=message)
            raise task.retry(exc=exc) from exc
        return _fail(run_id, message)
    except ApplicationError as exc:
        return _fail(run_id, exc.message)
    except Exception as exc:
        logger.exception("run %s failed with an internal error while planning its chunks", run_id)
        return _fail(run_id, f"internal error: {exc.__class__.__name__}: {exc}")
    return int(rows)


def execute_chunked(task: Task, run_id: str, job: ChunkedJob, *, rows: int | None, fallback: Compute) -> str:
    """Run the job whole (``fallback``) or split into chunks across workers; returns the status or ``"chunked"``.

    With a ``plan``, ``rows`` is an upper bound known before anything runs: above the chunk size the plan
    decides the rows actually split.
    """
    size = chunk_rows(job)
    if rows is None or rows <= size:
        return execute_run(task, run_id, fallback)
    run = services.run_start(
        run_id=run_id, worker=task.request.hostname or socket.gethostname(), task_id=task.request.id
    )
    if run is None:
        return "skipped"
    if job.plan is not None:
        planned = _planned_rows(task, run, job)
        if isinstance(planned, str):
            return planned
        rows = planned
    ranges = split_ranges(rows, size, job.align)
    count = chunking.chunks_create(run_id=run_id, ranges=ranges)
    services.run_progress(run_id=run_id, fraction=0.0, message=f"split into {count} chunks of at most {size:,} rows")
    queue = run.queue or None
    pending = [c.index for c in chunking.chunks_of(run_id) if not c.done]
    if not pending:  # a requeued run whose chunks were all done before: only the merge is left
        run_chunk_merge.apply_async(args=[str(run_id), job.name], queue=queue)
        return "chunked"
    group(run_chunk.si(str(run_id), job.name, i).set(queue=queue) for i in pending).apply_async()
    return "chunked"


def chunk_key(run_id: object, index: int) -> str:
    return f"runs/{run_id}/chunks/{index}.npz"


def _store(key: str, arrays: Arrays) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return _store_bytes(key, buffer.getvalue())


def _store_bytes(key: str, data: bytes) -> str:
    if default_storage.exists(key):
        default_storage.delete(key)
    saved = default_storage.save(key, ContentFile(data))
    if saved != key:
        raise OSError(f"the partial result was stored as {saved!r}, not {key!r}")
    return saved


def _load(key: str) -> Arrays:
    with default_storage.open(key, "rb") as handle:
        data = handle.read()
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def _chunk_reporter(run_id: str, index: int, start: int) -> ProgressCallback:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < PROGRESS_INTERVAL_S:
            return
        last[0] = now
        if chunking.chunk_progress(run_id=run_id, index=index, rows=done) != RunStatus.RUNNING:
            raise Cancelled()

    return report


@shared_task(
    bind=True,
    name="evalsvc.chunk",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=3,
    default_retry_delay=2,
)
def run_chunk(self: Task, run_id: str, job_name: str, index: int) -> str:
    """Compute and store one chunk; the last one done sends the merge."""
    job = _JOBS[job_name]
    chunk = chunking.chunk_claim(run_id=run_id, index=index, worker=self.request.hostname or socket.gethostname())
    if chunk is None:
        return "skipped"
    count = len(chunking.chunks_of(run_id))
    where = f"chunk {index + 1} of {count} (rows {chunk.start + 1:,}–{chunk.stop:,})"
    if chunk.done:
        return "done"
    try:
        run = EvaluationRun.objects.select_related("model_version", "dataset_version").get(pk=run_id)
        arrays = job.compute(run, chunk.start, chunk.stop, _chunk_reporter(run_id, index, chunk.start))
        key = _store(chunk_key(run_id, index), arrays)
    except Cancelled:
        return RunStatus.CANCELLED
    except (EngineError, OSError) as exc:
        transient = isinstance(exc, OSError) or not exc.permanent
        message = exc.message if isinstance(exc, EngineError) else f"could not store the partial result: {exc}"
        if transient and self.request.retries < (self.max_retries or 0):
            logger.warning("run %s %s failed, retrying: %s", run_id, where, message)
            raise self.retry(exc=exc) from exc
        return _fail(run_id, f"{where}: {message}")
    except ApplicationError as exc:
        return _fail(run_id, f"{where}: {exc.message}")
    except Exception as exc:
        logger.exception("run %s %s failed with an internal error", run_id, where)
        return _fail(run_id, f"{where}: internal error: {exc.__class__.__name__}: {exc}")
    if chunking.chunk_finish(run_id=run_id, index=index, rows=chunk.stop - chunk.start, storage_key=key):
        run_chunk_merge.apply_async(args=[run_id, job_name], queue=run.queue or None)
    else:
        chunking.chunk_progress(run_id=run_id, index=index, rows=chunk.stop - chunk.start)  # one more chunk done
    return "done"


@shared_task(
    bind=True,
    name="evalsvc.chunk_merge",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=3,
    default_retry_delay=5,
)
def run_chunk_merge(self: Task, run_id: str, job_name: str) -> str:
    """Merge every chunk's stored arrays and record the run's result."""
    job = _JOBS[job_name]
    chunks = chunking.chunks_of(run_id)

    def merge(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any] | Outcome:
        try:
            parts = [_load(c.storage_key) for c in chunks]
        except OSError as exc:
            raise EngineError(f"could not read a chunk's partial result: {exc}", permanent=False) from exc
        return job.merge(run, parts)

    status = execute_run(self, run_id, merge, resume=True)
    if status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        _discard(run_id)
    return status


def _fail(run_id: str, message: str) -> str:
    services.run_fail(run_id=run_id, message=message)
    _discard(run_id)
    return RunStatus.FAILED


def _discard(run_id: str) -> None:
    """Delete the run's stored parts (a chunk still running may store its own later; the next failure or merge
    of that run cannot, so such a file is the only thing left behind)."""
    keys = [c.storage_key or chunk_key(run_id, c.index) for c in chunking.chunks_of(run_id)]
    for key in [*keys, plan_key(run_id)]:
        if default_storage.exists(key):
            default_storage.delete(key)
