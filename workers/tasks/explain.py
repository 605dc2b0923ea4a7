"""Explanation job: attributions for chosen rows and a global sample, with trust scores and budget."""

from __future__ import annotations

from typing import Any

from evalsvc.evaluations.models import EvaluationRun
from workers.engine.explain.pipeline import ExplainRequest, run_explanation
from workers.engine.types import ProgressCallback
from workers.queues import CPU

from .artifacts import dataset_ref
from .common import execute_run, job_task, load_artifacts


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    model, data, _ = load_artifacts(run, label_column=params.get("label_column"))
    reference = None
    if params.get("reference_dataset"):
        from evalsvc.registry.models import DatasetVersion

        reference = dataset_ref(DatasetVersion.objects.get(pk=params["reference_dataset"]))
    request = ExplainRequest(
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
    )
    result = run_explanation(
        model,
        data,
        request,
        processing=run.model_version.processing,
        reference=reference,
        class_labels=run.model_version.class_labels,
        progress=progress,
    )
    result["estimated_model_rows"] = params.get("estimated_model_rows")
    return result


@job_task("evalsvc.explain", queue=CPU)
def run_explain(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
