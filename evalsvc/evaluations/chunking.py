"""Writes to the chunks of a run split by row ranges: create, claim, progress, finish.

Like the run transitions these are conditional UPDATEs, so a chunk task
delivered twice, or racing a cancel, neither double-counts nor finishes a
run twice. The join (is every chunk done?) locks the run's row, so exactly
one finishing chunk sees the last one done and sends the merge.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from evalsvc.core.models import Pk

from .models import EvaluationRun, RunChunk, RunStatus
from .services import run_progress

__all__ = ["chunk_claim", "chunk_finish", "chunk_progress", "chunks_create", "chunks_of"]


def chunks_create(*, run_id: Pk, ranges: list[tuple[int, int]]) -> int:
    """One chunk per ``[start, stop)`` range; a repeated call (a redelivered task) keeps what exists."""
    RunChunk.objects.bulk_create(
        [RunChunk(run_id=run_id, index=i, start=a, stop=b) for i, (a, b) in enumerate(ranges)],
        ignore_conflicts=True,
    )
    return RunChunk.objects.filter(run__pk=run_id).count()


def chunks_of(run_id: Pk) -> list[RunChunk]:
    return list(RunChunk.objects.filter(run__pk=run_id).order_by("index"))


def chunk_claim(*, run_id: Pk, index: int, worker: str) -> RunChunk | None:
    """The chunk to compute, or None when the run is no longer running (cancelled, failed, finished).

    The run's ``worker`` becomes this chunk's, so lost-worker recovery watches a worker still at work on it.
    """
    now = timezone.now()
    if not EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        worker=worker[:200], updated_at=now
    ):
        return None
    RunChunk.objects.filter(run__pk=run_id, index=index).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    return RunChunk.objects.filter(run__pk=run_id, index=index).first()


def chunk_progress(*, run_id: Pk, index: int, rows: int) -> str:
    """Record a chunk's rows done and the run's progress over every chunk; returns the run's status."""
    RunChunk.objects.filter(run__pk=run_id, index=index, done=False).update(rows_done=rows, updated_at=timezone.now())
    totals = RunChunk.objects.filter(run__pk=run_id).aggregate(done=Sum("rows_done"), span=Sum(F("stop") - F("start")))
    done, span = int(totals["done"] or 0), int(totals["span"] or 0)
    count = RunChunk.objects.filter(run__pk=run_id).count()
    finished = RunChunk.objects.filter(run__pk=run_id, done=True).count()
    return run_progress(
        run_id=run_id,
        fraction=done / span if span else 0.0,
        message=f"{done:,} of {span:,} rows in {count} chunks, {finished} done",
    )


def chunk_finish(*, run_id: Pk, index: int, rows: int, storage_key: str) -> bool:
    """Mark a chunk done; True for the one call that finds every chunk done while the run still runs."""
    with transaction.atomic():
        status = EvaluationRun.objects.select_for_update().filter(pk=run_id).values_list("status", flat=True).first()
        changed = RunChunk.objects.filter(run__pk=run_id, index=index, done=False).update(
            done=True, rows_done=rows, storage_key=storage_key, updated_at=timezone.now()
        )
        pending = RunChunk.objects.filter(run__pk=run_id, done=False).exists()
    return bool(changed) and not pending and status == RunStatus.RUNNING
