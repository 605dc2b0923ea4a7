"""The evaluate kind's task: one pass over the data set, or, past ``EVALSVC_CHUNK_ROWS`` rows, chunks across workers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from evalsvc.evaluations.models import EvaluationRun
from workers.engine.evaluate import evaluate
from workers.engine.evaluate.partial import PartialEvaluation, evaluate_rows, score_partials
from workers.engine.processing import parse_processing_spec
from workers.engine.types import ProgressCallback
from workers.queues import CPU

from .chunks import ChunkedJob, execute_chunked, register
from .common import execute_run, job_task, load_artifacts


def _options(run: EvaluationRun) -> dict[str, Any]:
    params = run.params
    processing = run.model_version.processing
    return {
        "task": params["task"],
        "batch_size": params.get("batch_size", 256),
        "feature_columns": params.get("feature_columns"),
        "class_labels": run.model_version.class_labels,
        "positive_label": params.get("positive_label"),
        "backend": params.get("backend", "onnxruntime"),
        "device": params.get("device", "cpu"),
        "processing": parse_processing_spec(processing) if processing else None,
        "backend_options": {"precision": params["precision"]} if params.get("precision") else None,
        "slice_columns": params.get("slice_columns") or None,
        "analytic_intervals_above": settings.EVALSVC_ANALYTIC_INTERVAL_ROWS,
    }


def _stored(run: EvaluationRun, result: dict[str, Any]) -> dict[str, Any]:
    if run.params.get("column_mapping"):
        # How the data's columns reached the model's input, decided at submission.
        result["column_mapping"] = run.params["column_mapping"]
    return result


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    model, data, tokenizer = load_artifacts(run, label_column=run.params["label_column"])
    result = evaluate(model, data, progress=progress, tokenizer_path=tokenizer, **_options(run))
    return _stored(run, result.to_dict())


def _compute_rows(run: EvaluationRun, start: int, stop: int, progress: ProgressCallback) -> dict[str, Any]:
    model, data, tokenizer = load_artifacts(run, label_column=run.params["label_column"])
    part = evaluate_rows(
        model, data, start=start, stop=stop, progress=progress, tokenizer_path=tokenizer, **_options(run)
    )
    return part.to_arrays()


def _merge(run: EvaluationRun, parts: list[dict[str, Any]]) -> dict[str, Any]:
    model, data, _ = load_artifacts(run, label_column=run.params["label_column"])
    merged = PartialEvaluation.merge([PartialEvaluation.from_arrays(p) for p in parts])
    result = score_partials(model, data, merged, **_options(run))
    if run.started_at is not None:  # from the split to the end of the merge, not just the merge
        result.duration_s = round((timezone.now() - run.started_at).total_seconds(), 4)
    return _stored(run, result.to_dict())


EVALUATE_CHUNKS = register(ChunkedJob(name="evaluate", compute=_compute_rows, merge=_merge))


@job_task("evalsvc.evaluate", queue=CPU)
def run_evaluate(self: Any, run_id: str) -> str:
    rows = EvaluationRun.objects.filter(pk=run_id).values_list("dataset_version__rows", flat=True).first()
    return execute_chunked(self, run_id, EVALUATE_CHUNKS, rows=rows, fallback=_compute)


__all__ = ["EVALUATE_CHUNKS", "execute_run", "run_evaluate"]
