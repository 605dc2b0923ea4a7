"""Backend parity job: the same rows through a reference and candidates; fails when no candidate ran."""

from __future__ import annotations

from typing import Any

from evalsvc.evaluations.models import EvaluationRun
from workers.engine.feed import input_batches
from workers.engine.parity import Target, compare_backends, repeatable
from workers.engine.types import ProgressCallback
from workers.queues import CPU

from .common import JobFailed, execute_run, job_task, load_artifacts


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    model, data, tokenizer = load_artifacts(run)
    assert run.dataset_version is not None
    rows = min(params["max_rows"], run.dataset_version.rows)
    batches = repeatable(
        lambda: input_batches(
            model,
            data,
            batch_size=params["batch_size"],
            max_rows=rows,
            feature_columns=params.get("feature_columns"),
            processing=run.model_version.processing,
            tokenizer_path=tokenizer,
        )
    )
    result = compare_backends(
        model,
        batches,
        reference=Target(**params["reference"]),
        candidates=[Target(**c) for c in params["candidates"]],
        total_rows=rows,
        top_n=params.get("top_n", 10),
        progress=progress,
    )
    stored = {**result.to_dict(), "backend": result.reference_backend}
    candidates = stored.get("candidates") or []
    if not any(c.get("status") == "ok" for c in candidates):
        # The reference ran alone: nothing was compared, which is not a success.
        reasons = "; ".join(f"{_label(c)}: {c.get('error') or c.get('status')}" for c in candidates)
        raise JobFailed(f"no candidate could run, so nothing was compared ({reasons})", result=stored)
    return stored


def _label(candidate: dict[str, Any]) -> str:
    target = candidate.get("target") or {}
    return "/".join(str(target.get(k)) for k in ("backend", "device", "precision") if target.get(k)) or "candidate"


@job_task("evalsvc.parity", queue=CPU)
def run_parity(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
