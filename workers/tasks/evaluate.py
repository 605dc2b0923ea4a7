from __future__ import annotations

from typing import Any

from evalsvc.evaluations.models import EvaluationRun
from workers.engine.evaluate import evaluate
from workers.engine.processing import parse_processing_spec
from workers.engine.types import ProgressCallback
from workers.queues import CPU

from .common import execute_run, job_task, load_artifacts


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    model, data, tokenizer = load_artifacts(run, label_column=params["label_column"])
    processing = run.model_version.processing
    result = evaluate(
        model,
        data,
        task=params["task"],
        batch_size=params.get("batch_size", 256),
        feature_columns=params.get("feature_columns"),
        class_labels=run.model_version.class_labels,
        positive_label=params.get("positive_label"),
        backend=params.get("backend", "onnxruntime"),
        device=params.get("device", "cpu"),
        progress=progress,
        processing=parse_processing_spec(processing) if processing else None,
        tokenizer_path=tokenizer,
        backend_options={"precision": params["precision"]} if params.get("precision") else None,
    )
    out = result.to_dict()
    if params.get("column_mapping"):
        # How the data's columns reached the model's input, decided at submission.
        out["column_mapping"] = params["column_mapping"]
    return out


@job_task("evalsvc.evaluate", queue=CPU)
def run_evaluate(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
