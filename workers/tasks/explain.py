"""Explanation job: attributions for chosen rows and a global sample, with trust scores and budget.

A tabular explanation over more rows than ``EVALSVC_EXPLAIN_CHUNK_ROWS`` is
split across workers (:mod:`workers.tasks.chunks`): the plan opens the
explanation once to count the rows it explains and to fix what a time
budget chooses, each chunk explains a range of whole blocks of those rows,
and the merge adds the trust scores, drift and cohorts. The draws of each
block are seeded from the job's seed and the block's index, so the merged
result is the one an unsplit run with the same seed gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.utils import timezone

from evalsvc.evaluations.models import EvaluationRun
from workers.engine.errors import EngineError
from workers.engine.explain.pipeline import BLOCK_ROWS, ExplainRequest, TabularExplanation, run_explanation
from workers.engine.types import ProgressCallback
from workers.queues import CPU

from .artifacts import dataset_ref
from .chunks import ChunkedJob, execute_chunked, job_plan, register
from .common import execute_run, job_task, load_artifacts


def _request(run: EvaluationRun) -> ExplainRequest:
    params = run.params
    return ExplainRequest(
        method=params["method"],
        method_params=params.get("method_params") or {},
        rows=params["rows"],
        global_rows=params["global_rows"],
        baseline=params["baseline"],
        background_k=params["background_k"],
        time_budget_s=params.get("time_budget_s"),
        cohort_by=params.get("cohort_by"),
        feature_columns=tuple(params["feature_columns"]) if params.get("feature_columns") else None,
        backend=params["backend"],
        device=params["device"],
        batch_size=params["batch_size"],
        patch_size=params.get("patch_size") or 8,
        superpixels=params.get("superpixels"),
    )


def _reference(run: EvaluationRun) -> Any:
    if not run.params.get("reference_dataset"):
        return None
    from evalsvc.registry.models import DatasetVersion

    return dataset_ref(DatasetVersion.objects.get(pk=run.params["reference_dataset"]))


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    model, data, tokenizer = load_artifacts(run, label_column=params.get("label_column"))
    result = run_explanation(
        model,
        data,
        _request(run),
        processing=run.model_version.processing,
        reference=_reference(run),
        class_labels=run.model_version.class_labels,
        progress=progress,
        tokenizer_path=tokenizer,
    )
    result["estimated_model_rows"] = params.get("estimated_model_rows")
    return result


def _open(run: EvaluationRun, decided: dict[str, Any] | None) -> TabularExplanation:
    model, data, _ = load_artifacts(run, label_column=run.params.get("label_column"))
    return TabularExplanation(
        model,
        data,
        _request(run),
        processing=run.model_version.processing,
        reference=_reference(run),
        class_labels=run.model_version.class_labels,
        decided=decided,
    )


def _plan(run: EvaluationRun, progress: ProgressCallback) -> tuple[int, dict[str, Any]]:
    with _open(run, None) as explanation:
        return explanation.rows, {"rows": explanation.rows, "decided": explanation.decided}


def _opened(run: EvaluationRun) -> TabularExplanation:
    plan = job_plan(run.pk)
    explanation = _open(run, plan["decided"]).__enter__()
    if explanation.rows != plan["rows"]:
        explanation.__exit__(None, None, None)
        raise EngineError(
            f"the data set now gives {explanation.rows} rows to explain, not the {plan['rows']} the job was split "
            "into; submit it again"
        )
    return explanation


def _compute_rows(run: EvaluationRun, start: int, stop: int, progress: ProgressCallback) -> dict[str, np.ndarray]:
    explanation = _opened(run)
    with explanation:
        return explanation.explain(start, stop, progress=progress)


def _merge(run: EvaluationRun, parts: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    explanation = _opened(run)
    with explanation:
        # From the split to the end of the merge, not just the merge.
        seconds = (timezone.now() - run.started_at).total_seconds() if run.started_at else None
        result = explanation.finish(parts, seconds=seconds)
    result["estimated_model_rows"] = run.params.get("estimated_model_rows")
    return result


EXPLAIN_CHUNKS = register(
    ChunkedJob(
        name="explain",
        compute=_compute_rows,
        merge=_merge,
        setting="EVALSVC_EXPLAIN_CHUNK_ROWS",
        align=BLOCK_ROWS,
        plan=_plan,
    )
)


def rows_bound(run: EvaluationRun) -> int | None:
    """At most how many rows the run explains, known before anything runs; None where it is not split (images)."""
    processing = run.model_version.processing or {}
    if (processing.get("input") or {}).get("kind") in ("image", "text"):
        return None
    total = run.dataset_version.rows if run.dataset_version is not None else None
    if not total:
        return None
    params = run.params
    sample = min(int(params.get("global_rows") or 0), total)
    rows = params.get("rows") or {"indices": [0]}
    if "indices" in rows:
        return len({int(i) for i in rows["indices"]} | set(range(sample)))
    limit = int(rows.get("limit", 20)) or total
    return min(total, limit + sample)


@job_task("evalsvc.explain", queue=CPU)
def run_explain(self: Any, run_id: str) -> str:
    run = EvaluationRun.objects.select_related("model_version", "dataset_version").filter(pk=run_id).first()
    if run is None:
        return execute_run(self, run_id, _compute)  # gone: execute_run says so
    return execute_chunked(self, run_id, EXPLAIN_CHUNKS, rows=rows_bound(run), fallback=_compute)
