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

- ``rows`` at most ``settings.EVALSVC_CHUNK_ROWS`` (or unknown): ``fallback``
  runs the whole job in this task, as before.
- Otherwise the run is claimed, split into ranges of at most that many rows
  (:func:`~workers.engine.evaluate.partial.split_rows`), one
  :class:`~evalsvc.evaluations.models.RunChunk` row each, and one
  ``evalsvc.chunk`` task per range is sent as a Celery ``group`` to the run's
  queue, so every worker on it takes a share.
- A chunk task calls ``compute(run, start, stop, progress)``; ``progress``
  counts rows within the range and the run's progress is the rows done
  across every chunk. The arrays it returns are stored (``numpy.savez``, no
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

from .common import PROGRESS_INTERVAL_S, Compute, Outcome, execute_run

logger = logging.getLogger(__name__)

__all__ = ["ChunkedJob", "execute_chunked", "register", "run_chunk", "run_chunk_merge"]

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ChunkedJob:
    """The two halves of a job split by rows (see the module docstring)."""

    name: str
    compute: Callable[[EvaluationRun, int, int, ProgressCallback], Arrays]
    merge: Callable[[EvaluationRun, list[Arrays]], dict[str, Any] | Outcome]


_JOBS: dict[str, ChunkedJob] = {}


def register(job: ChunkedJob) -> ChunkedJob:
    _JOBS[job.name] = job
    return job


def chunk_rows() -> int:
    return int(settings.EVALSVC_CHUNK_ROWS)


def execute_chunked(task: Task, run_id: str, job: ChunkedJob, *, rows: int | None, fallback: Compute) -> str:
    """Run the job whole (``fallback``) or split into chunks across workers; returns the status or ``"chunked"``."""
    size = chunk_rows()
    if rows is None or rows <= size:
        return execute_run(task, run_id, fallback)
    run = services.run_start(
        run_id=run_id, worker=task.request.hostname or socket.gethostname(), task_id=task.request.id
    )
    if run is None:
        return "skipped"
    ranges = split_rows(rows, size)
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
    if default_storage.exists(key):
        default_storage.delete(key)
    saved = default_storage.save(key, ContentFile(buffer.getvalue()))
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
    for c in chunking.chunks_of(run_id):
        key = c.storage_key or chunk_key(run_id, c.index)
        if default_storage.exists(key):
            default_storage.delete(key)
