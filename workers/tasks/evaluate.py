from __future__ import annotations

from typing import Any

from celery import shared_task

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.registry.selectors import dataset_ref, model_spec
from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.types import ProgressCallback
from workers.queues import CPU

from .common import execute_run


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    assert run.dataset_version is not None
    try:
        model = model_spec(run.model_version)
        data = dataset_ref(run.dataset_version, label_column=params["label_column"])
    except OSError as exc:  # storage briefly unreachable: worth a retry
        raise EngineError(f"could not read a stored artifact: {exc}", permanent=False) from exc
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
    )
    return result.to_dict()


@shared_task(
    bind=True,
    name="evalsvc.evaluate",
    queue=CPU,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=3,
    default_retry_delay=5,
)
def run_evaluate(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
