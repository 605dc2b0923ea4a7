"""Backend parity job: the same rows through a reference and candidates; fails when no candidate ran."""

from __future__ import annotations

from typing import Any

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.registry.models import ModelVersion
from workers.engine.errors import EngineError
from workers.engine.feed import input_batches
from workers.engine.parity import Target, compare_backends, repeatable
from workers.engine.types import ProgressCallback
from workers.queues import CPU

from .artifacts import model_spec
from .common import JobFailed, execute_run, job_task, load_artifacts

_OWN = ("model_version", "model_format")


def _candidate_versions(run: EvaluationRun) -> list[ModelVersion | None]:
    """Per candidate, the other version (another format of the same model) it runs, if it names one."""
    wanted = [c.get("model_version") for c in run.params["candidates"]]
    found = {
        str(v.pk): v
        for v in ModelVersion.objects.select_related("registered_model").filter(pk__in=[w for w in wanted if w])
    }
    missing = [w for w in wanted if w and w not in found]
    if missing:
        raise JobFailed(f"candidate model version {missing[0]} was deleted after the job was submitted")
    return [found[w] if w else None for w in wanted]


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    model, data, tokenizer = load_artifacts(run)
    versions = _candidate_versions(run)
    try:
        own_models = [model_spec(v) if v is not None else None for v in versions]
    except OSError as exc:
        raise EngineError(f"could not read a stored artifact: {exc}", permanent=False) from exc
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
        candidates=[Target(**{k: v for k, v in c.items() if k not in _OWN}) for c in params["candidates"]],
        total_rows=rows,
        top_n=params.get("top_n", 10),
        progress=progress,
        candidate_models=own_models,
    )
    stored = {**result.to_dict(), "backend": result.reference_backend}
    candidates = stored.get("candidates") or []
    stored["reference"] = {**stored["reference"], **_names(run.model_version)}
    for candidate, version in zip(candidates, versions, strict=True):
        candidate["target"] = {**candidate["target"], **_names(version or run.model_version)}
    if not any(c.get("status") == "ok" for c in candidates):
        # The reference ran alone: nothing was compared, which is not a success.
        reasons = "; ".join(f"{_label(c)}: {c.get('error') or c.get('status')}" for c in candidates)
        raise JobFailed(f"no candidate could run, so nothing was compared ({reasons})", result=stored)
    return stored


def _names(version: ModelVersion) -> dict[str, str]:
    return {"model_version": str(version.pk), "model": str(version), "format": version.format}


def _label(candidate: dict[str, Any]) -> str:
    target = candidate.get("target") or {}
    return "/".join(str(target.get(k)) for k in ("backend", "device", "precision") if target.get(k)) or "candidate"


@job_task("evalsvc.parity", queue=CPU)
def run_parity(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
