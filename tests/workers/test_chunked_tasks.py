"""An evaluation split into chunks, run in-process with eager Celery: equality, retries, failure, cancel."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.storage import default_storage

from evalsvc.celery import app
from evalsvc.evaluations.models import EvaluationRun, RunChunk
from evalsvc.evaluations.services import run_submit
from workers.engine.errors import EngineError
from workers.tasks import chunks as chunks_module
from workers.tasks.chunks import ChunkedJob, chunk_key
from workers.tasks.evaluate import EVALUATE_CHUNKS, run_evaluate

pytestmark = pytest.mark.django_db

VARYING = ("duration_s",)


@pytest.fixture
def eager(monkeypatch):
    """The group and the merge run here, one after another, as a worker would run them."""
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


def execute(run: EvaluationRun) -> EvaluationRun:
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    return run


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in VARYING}


def with_job(monkeypatch, compute=None) -> None:
    job = ChunkedJob(name="evaluate", compute=compute or EVALUATE_CHUNKS.compute, merge=EVALUATE_CHUNKS.merge)
    monkeypatch.setitem(chunks_module._JOBS, "evaluate", job)


@pytest.mark.parametrize("fixture", ["bc", "diabetes"])
def test_chunked_run_equals_the_single_run(request, settings, eager, alice, fixture):
    model, data = request.getfixturevalue(f"{fixture}_model"), request.getfixturevalue(f"{fixture}_data")
    single = execute(run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk))
    assert single.status == "succeeded", single.error
    assert not RunChunk.objects.filter(run=single).exists()

    settings.EVALSVC_CHUNK_ROWS = data.rows // 3 + 1  # three chunks
    run = execute(run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk))
    assert run.status == "succeeded", run.error
    chunks = list(RunChunk.objects.filter(run=run).order_by("index"))
    assert len(chunks) == 3
    assert all(c.done and c.attempts == 1 for c in chunks)
    assert [c.rows_done for c in chunks] == [c.stop - c.start for c in chunks]
    assert chunks[0].start == 0 and chunks[-1].stop == data.rows
    assert comparable(run.result) == comparable(single.result)
    assert run.progress == 1.0
    assert not any(default_storage.exists(chunk_key(run.pk, c.index)) for c in chunks)  # parts cleaned up


def test_a_transient_chunk_failure_is_retried(settings, eager, monkeypatch, alice, bc_model, bc_data):
    settings.EVALSVC_CHUNK_ROWS = 60  # 171 rows: three chunks
    failures = []

    def flaky(run, start, stop, progress):
        if start > 0 and not failures:
            failures.append(start)
            raise EngineError("the artifact store timed out", permanent=False)
        return EVALUATE_CHUNKS.compute(run, start, stop, progress)

    with_job(monkeypatch, flaky)
    monkeypatch.setattr(chunks_module.run_chunk, "default_retry_delay", 0)
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk))
    assert run.status == "succeeded", run.error
    assert failures == [57]
    attempts = dict(RunChunk.objects.filter(run=run).values_list("index", "attempts"))
    assert attempts == {0: 1, 1: 2, 2: 1}
    assert run.result["rows"] == 171
    assert sum(map(sum, run.result["confusion_matrix"])) == 171


def test_a_chunk_failing_for_good_fails_the_run_with_its_message(
    settings, eager, monkeypatch, alice, bc_model, bc_data
):
    settings.EVALSVC_CHUNK_ROWS = 60
    calls = []

    def broken(run, start, stop, progress):
        calls.append(start)
        if start == 57:
            raise EngineError("the artifact store is unreachable", permanent=False)
        return EVALUATE_CHUNKS.compute(run, start, stop, progress)

    with_job(monkeypatch, broken)
    monkeypatch.setattr(chunks_module.run_chunk, "default_retry_delay", 0)
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk))
    assert run.status == "failed"
    assert run.error == "chunk 2 of 3 (rows 58–114): the artifact store is unreachable"
    assert calls.count(57) == 4  # the first try and three retries
    assert 114 not in calls  # the chunk after the failure found the run failed and did nothing
    assert run.result is None


def test_cancel_stops_the_remaining_chunks(settings, eager, monkeypatch, alice, bc_model, bc_data):
    settings.EVALSVC_CHUNK_ROWS = 60
    calls = []

    def cancelling(run, start, stop, progress):
        calls.append(start)
        arrays = EVALUATE_CHUNKS.compute(run, start, stop, progress)
        EvaluationRun.objects.filter(pk=run.pk).update(status="cancelled")  # a user cancels meanwhile
        return arrays

    with_job(monkeypatch, cancelling)
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk))
    assert run.status == "cancelled"
    assert calls == [0]
    assert list(RunChunk.objects.filter(run=run, done=True).values_list("index", flat=True)) == [0]


def test_a_chunk_run_twice_counts_once(settings, eager, alice, bc_model, bc_data):
    settings.EVALSVC_CHUNK_ROWS = 60
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk))
    assert run.status == "succeeded", run.error
    finished = run.finished_at
    assert chunks_module.run_chunk.apply(args=[str(run.pk), "evaluate", 1]).get() == "skipped"
    run.refresh_from_db()
    assert run.finished_at == finished and run.status == "succeeded"
    assert RunChunk.objects.filter(run=run).count() == 3


def test_progress_counts_rows_across_chunks(settings, eager, monkeypatch, alice, bc_model, bc_data):
    settings.EVALSVC_CHUNK_ROWS = 60
    seen = []

    def watching(run, start, stop, progress):
        seen.append(EvaluationRun.objects.values_list("progress", "progress_message").get(pk=run.pk))
        return EVALUATE_CHUNKS.compute(run, start, stop, progress)

    with_job(monkeypatch, watching)
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk))
    assert run.status == "succeeded", run.error
    assert seen[0] == (0.0, "split into 3 chunks of at most 60 rows")
    assert seen[1] == (pytest.approx(57 / 171), "57 of 171 rows in 3 chunks, 1 done")
    assert seen[2] == (pytest.approx(114 / 171), "114 of 171 rows in 3 chunks, 2 done")


def test_a_requeued_run_sends_only_what_is_left(settings, eager, monkeypatch, alice, bc_model, bc_data):
    """Its worker was lost after every chunk was done but before the merge: a new start only merges."""
    settings.EVALSVC_CHUNK_ROWS = 60
    calls = []

    def counting(run, start, stop, progress):
        calls.append(start)
        return EVALUATE_CHUNKS.compute(run, start, stop, progress)

    with_job(monkeypatch, counting)
    with monkeypatch.context() as lost:
        lost.setattr(chunks_module.run_chunk_merge, "apply_async", lambda *a, **k: None)
        run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk))
    assert run.status == "running"
    assert RunChunk.objects.filter(run=run, done=True).count() == 3
    # Lost-worker recovery puts it back in the queue under a new task.
    EvaluationRun.objects.filter(pk=run.pk).update(status="queued", celery_task_id="")
    run = execute(run)
    assert run.status == "succeeded", run.error
    assert calls == [0, 57, 114]  # no chunk ran twice
    assert run.result["rows"] == 171
