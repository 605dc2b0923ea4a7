"""An explanation split into chunks, run in-process with eager Celery: the same result as one pass, retries, budget."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.storage import default_storage

from evalsvc.celery import app
from evalsvc.evaluations.models import EvaluationRun, RunChunk
from evalsvc.evaluations.services import run_submit
from workers.engine.errors import EngineError
from workers.engine.explain.pipeline import block_seed
from workers.tasks import chunks as chunks_module
from workers.tasks.chunks import ChunkedJob, chunk_key, plan_key
from workers.tasks.explain import EXPLAIN_CHUNKS, run_explain

pytestmark = pytest.mark.django_db

#: Budget entries that measure time, or say how the job was split.
VARYING = ("explain_seconds", "model_seconds", "parts", "model_rows_per_second")

PARAMS = {
    "method": "kernel_shap",
    "method_params": {"nsamples": 128, "seed": 3},
    "rows": {"indices": [0, 40]},
    "global_rows": 60,  # with row 0 and 40 among them: 60 rows, four blocks of 16
    "cohort_by": "label",
}


@pytest.fixture
def eager():
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


def explain(user, model, data, **params: Any) -> EvaluationRun:
    run = run_submit(
        user=user, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain", params={**PARAMS, **params}
    )
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    return run


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    budget = {k: v for k, v in result["budget"].items() if k not in VARYING}
    return {**result, "budget": budget}


def test_a_split_explanation_equals_the_unsplit_one(settings, eager, alice, bc_model, bc_data):
    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 10_000
    single = explain(alice, bc_model, bc_data, reference_dataset=str(bc_data.pk))
    assert single.status == "succeeded", single.error
    assert not RunChunk.objects.filter(run=single).exists()

    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 20  # rounded up to whole blocks: 32 rows, so two chunks
    run = explain(alice, bc_model, bc_data, reference_dataset=str(bc_data.pk))
    assert run.status == "succeeded", run.error
    chunks = list(RunChunk.objects.filter(run=run).order_by("index"))
    assert [(c.start, c.stop) for c in chunks] == [(0, 32), (32, 60)]
    assert all(c.done and c.attempts == 1 for c in chunks)
    assert run.result["budget"]["parts"] == 2
    assert comparable(run.result) == comparable(single.result)
    assert run.result["budget"]["model_rows"] == single.result["budget"]["model_rows"] > 0
    assert run.progress == 1.0
    keys = [chunk_key(run.pk, c.index) for c in chunks] + [plan_key(run.pk)]
    assert not any(default_storage.exists(k) for k in keys)  # parts and plan cleaned up

    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 16  # one block a chunk: four chunks, still the same result
    run = explain(alice, bc_model, bc_data, reference_dataset=str(bc_data.pk))
    assert run.status == "succeeded", run.error
    assert RunChunk.objects.filter(run=run).count() == 4
    assert comparable(run.result) == comparable(single.result)


def test_a_transient_chunk_failure_is_retried_and_changes_nothing(
    settings, eager, monkeypatch, alice, bc_model, bc_data
):
    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 10_000
    single = explain(alice, bc_model, bc_data)
    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 16
    failures = []

    def flaky(run, start, stop, progress):
        if start == 32 and not failures:
            failures.append(start)
            raise EngineError("the artifact store timed out", permanent=False)
        return EXPLAIN_CHUNKS.compute(run, start, stop, progress)

    job = ChunkedJob(**{**EXPLAIN_CHUNKS.__dict__, "compute": flaky})
    monkeypatch.setitem(chunks_module._JOBS, "explain", job)
    monkeypatch.setattr(chunks_module.run_chunk, "default_retry_delay", 0)
    run = explain(alice, bc_model, bc_data)
    assert run.status == "succeeded", run.error
    assert failures == [32]
    assert dict(RunChunk.objects.filter(run=run).values_list("index", "attempts")) == {0: 1, 1: 1, 2: 2, 3: 1}
    assert comparable(run.result) == comparable(single.result)


def test_progress_counts_chunks(settings, eager, monkeypatch, alice, bc_model, bc_data):
    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 16
    seen = []

    def watching(run, start, stop, progress):
        seen.append(EvaluationRun.objects.values_list("progress_message", flat=True).get(pk=run.pk))
        return EXPLAIN_CHUNKS.compute(run, start, stop, progress)

    monkeypatch.setitem(chunks_module._JOBS, "explain", ChunkedJob(**{**EXPLAIN_CHUNKS.__dict__, "compute": watching}))
    run = explain(alice, bc_model, bc_data)
    assert run.status == "succeeded", run.error
    assert seen == [
        "split into 4 chunks of at most 16 rows",
        "16 of 60 rows in 4 chunks, 1 done",
        "32 of 60 rows in 4 chunks, 2 done",
        "48 of 60 rows in 4 chunks, 3 done",
    ]


def test_a_time_budget_is_decided_once_for_every_chunk(settings, eager, monkeypatch, alice, bc_model, bc_data):
    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 16
    plans = []

    def recording(run, start, stop, progress):
        plans.append(chunks_module.job_plan(run.pk))
        return EXPLAIN_CHUNKS.compute(run, start, stop, progress)

    monkeypatch.setitem(chunks_module._JOBS, "explain", ChunkedJob(**{**EXPLAIN_CHUNKS.__dict__, "compute": recording}))
    run = explain(alice, bc_model, bc_data, method_params={"seed": 3}, time_budget_s=5)
    assert run.status == "succeeded", run.error
    budget = run.result["budget"]
    assert len(plans) == 4 and all(p == plans[0] for p in plans)
    assert plans[0]["decided"]["budget"]["chosen_nsamples"] == budget["chosen_nsamples"]
    assert run.result["params"]["nsamples"] == budget["chosen_nsamples"]
    for row in run.result["explained"]:  # every chunk's rows are whole KernelSHAP explanations
        assert abs(sum(row["values"]) + row["base_value"] - row["output"]) < 1e-6


def test_a_requeued_explanation_keeps_its_plan_and_only_merges(settings, eager, monkeypatch, alice, bc_model, bc_data):
    settings.EVALSVC_EXPLAIN_CHUNK_ROWS = 16
    calls = []

    def counting(run, start, stop, progress):
        calls.append(start)
        return EXPLAIN_CHUNKS.compute(run, start, stop, progress)

    monkeypatch.setitem(chunks_module._JOBS, "explain", ChunkedJob(**{**EXPLAIN_CHUNKS.__dict__, "compute": counting}))
    with monkeypatch.context() as lost:
        lost.setattr(chunks_module.run_chunk_merge, "apply_async", lambda *a, **k: None)
        run = explain(alice, bc_model, bc_data, time_budget_s=5, method_params={"seed": 3})
    assert run.status == "running"
    plan = chunks_module.job_plan(run.pk)
    EvaluationRun.objects.filter(pk=run.pk).update(status="queued", celery_task_id="")  # lost-worker recovery
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert calls == [0, 16, 32, 48]  # no chunk ran twice
    assert run.result["budget"]["chosen_nsamples"] == plan["decided"]["budget"]["chosen_nsamples"]


def test_each_block_of_rows_has_its_own_seed():
    """The first block keeps the job's seed (the stability check names it); the others derive theirs from it."""
    assert block_seed(3, 0) == 3
    seeds = [block_seed(3, b) for b in range(200)]
    assert len(set(seeds)) == 200 and seeds == [block_seed(3, b) for b in range(200)]
    assert block_seed(4, 1) != block_seed(3, 1)
