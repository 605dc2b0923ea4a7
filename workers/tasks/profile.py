"""Latency profile job: the grid on this worker, then verdicts and (if asked) a regression check."""

from __future__ import annotations

from typing import Any

from evalsvc.evaluations.models import EvaluationRun
from workers.engine.errors import EngineError
from workers.engine.feed import raw_rows
from workers.engine.latency import (
    Objectives,
    ProfileGrid,
    RowsInputs,
    StabilityRule,
    SyntheticInputs,
    compare_profiles,
    concurrency_levels,
    profile_grid,
)
from workers.engine.types import ProgressCallback
from workers.queues import PROFILE

from .artifacts import model_spec
from .common import JobFailed, execute_run, job_task, load_artifacts


def _grid(params: dict[str, Any]) -> ProfileGrid:
    budget = params.get("max_seconds_per_cell", 20)
    return ProfileGrid(
        backends=tuple(params["backends"]),
        devices=tuple(params["devices"]),
        precisions=tuple(params["precisions"]),
        batch_sizes=tuple(params["batch_sizes"]),
        threads=tuple(params["threads"]),
        preprocessing=params.get("preprocessing", "out"),
        concurrency=tuple(concurrency_levels(params["concurrency"])) if params.get("concurrency") else (),
        rule=StabilityRule(max_seconds=budget, min_samples=params.get("min_samples_per_cell", 0)),
    )


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    grid = _grid(params)
    if run.dataset_version is not None:
        model, data, tokenizer = load_artifacts(run)
        table, preprocess = raw_rows(
            model,
            data,
            rows=max(grid.batch_sizes) * 4,
            feature_columns=params.get("feature_columns"),
            processing=run.model_version.processing,
            tokenizer_path=tokenizer,
        )
        inputs: Any = RowsInputs(table, preprocess, description=f"data set {run.dataset_version}")
    else:
        try:
            model = model_spec(run.model_version)
        except OSError as exc:
            raise EngineError(f"could not read a stored artifact: {exc}", permanent=False) from exc
        inputs = SyntheticInputs(dims=params.get("synthetic_dims") or None)
    objectives = Objectives.from_dict(params.get("objectives"))
    result = profile_grid(model, grid, inputs, objectives, progress=progress).to_dict()
    regression = params.get("regression")
    if regression:
        baseline = EvaluationRun.objects.get(pk=regression["baseline_run"])
        if baseline.result is None:
            raise EngineError(f"the baseline run {baseline.pk} has no stored result to compare with")
        report = compare_profiles(baseline.result, result, alpha=regression["alpha"], threshold=regression["threshold"])
        result["regression"] = {**report.to_dict(), "baseline_run": regression["baseline_run"]}
        if regression.get("warning"):
            result["regression"]["warning"] = regression["warning"]
            result.setdefault("warnings", []).append(f"regression check: {regression['warning']}")
    first_ok = next((c for c in result["cells"] if c.get("status") == "ok"), None)
    if first_ok is None:
        # Nothing was measured: not a success, whatever the objectives say of an empty grid.
        reasons = "; ".join(sorted({f"{c.get('status')}: {c.get('error')}" for c in result["cells"]}))
        raise JobFailed(f"no configuration could be measured ({reasons})", result=result)
    result["backend"] = first_ok["backend"]
    return result


@job_task("evalsvc.profile", queue=PROFILE, soft_time_limit=3 * 3600)
def run_profile(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
