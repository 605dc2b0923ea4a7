"""The report document: one JSON-able dict from stored rows, rendered as PDF, HTML and JSON.

Everything in it is read from what is already stored (registration records,
run parameters, results and environments, the team's thresholds): a report
never recomputes a metric. Sections with no data are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from evalsvc.core.exceptions import ApplicationError
from evalsvc.evaluations.kinds import JobKind, get_kind
from evalsvc.evaluations.models import EvaluationRun, RunStatus
from evalsvc.registry.models import DatasetVersion, ModelVersion

from .models import Report
from .monitor_history import monitor_history
from .sections import JobContext, build_section, numeric_results
from .svg import UnsupportedFigure, figure_svg
from .verdicts import MIN_ROWS, threshold_verdict

SCHEMA = "evalsvc.report/1"
#: Metrics that only a regression, or only a classification, has: a threshold on one is not listed for the other.
REGRESSION_METRICS = frozenset({"mae", "mse", "rmse", "r2", "max_error", "median_absolute_error"})
CLASSIFICATION_METRICS = frozenset(
    {"accuracy", "precision", "recall", "f1", "roc_auc", "balanced_accuracy", "log_loss", "brier", "top_k_accuracy"}
    | {f"macro_{m}" for m in ("precision", "recall", "f1")}
)
#: Where a job's stored result lists what it compared or measured, each with a status.
_COMPARED = {"candidates": "candidate", "variants": "variant", "cells": "configuration"}
#: What the threshold bounds mean, for the summary.
BOUNDS = {"min": "≥", "max": "≤"}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _short(pk: Any) -> str:
    return str(pk)[:8]


def _registered(kind: str) -> JobKind | None:
    try:
        return get_kind(kind)
    except ApplicationError:  # a kind since removed from this deployment still has a stored result
        return None


def _kind_label(kind: str) -> str:
    registered = _registered(kind)
    return registered.label if registered else kind.replace("_", " ").capitalize()


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    """Fields that only some deployments' registries have (processing, parent version, …)."""
    value = getattr(obj, name, default)
    return default if value in ("", None) else value


# --- identity --------------------------------------------------------------------


def model_identity(version: ModelVersion) -> dict[str, Any]:
    registered = version.registered_model
    parent = _attr(version, "parent")
    identity: dict[str, Any] = {
        "id": str(version.pk),
        "name": registered.name,
        "version": version.version,
        "sha256": version.sha256,
        "format": version.get_format_display(),
        "size_bytes": version.size_bytes,
        "original_filename": version.original_filename,
        "opset": version.opset or {},
        "ir_version": version.ir_version,
        "producer": " ".join(p for p in (version.producer_name, version.producer_version) if p),
        "inputs": version.inputs or [],
        "outputs": version.outputs or [],
        "class_labels": version.class_labels,
        "processing": _attr(version, "processing"),
        "variant": _attr(version, "variant"),
        "weights_sha256": _attr(version, "weights_sha256"),
        "tokenizer_sha256": _attr(version, "tokenizer_sha256"),
        "parent": (
            {
                "id": str(parent.pk),
                "name": parent.registered_model.name,
                "version": parent.version,
                "sha256": parent.sha256,
            }
            if parent is not None
            else None
        ),
        "registered_by": version.created_by.get_username(),
        "registered_at": _iso(version.created_at),
        "notes": version.notes,
        "description": registered.description,
    }
    return identity


def dataset_identity(version: DatasetVersion, used_by: list[str]) -> dict[str, Any]:
    return {
        "id": str(version.pk),
        "name": version.dataset.name,
        "version": version.version,
        "sha256": version.sha256,
        "format": version.get_format_display(),
        "size_bytes": version.size_bytes,
        "rows": version.rows,
        "label_column": version.label_column,
        "columns": version.columns or [],
        "time_range": _attr(version, "time_range"),
        "registered_by": version.created_by.get_username(),
        "registered_at": _iso(version.created_at),
        "notes": version.notes,
        "used_by": used_by,
    }


def _environment(run: EvaluationRun) -> dict[str, Any]:
    env = run.environment or {}
    params = run.params or {}
    seeds = {k: v for k, v in params.items() if "seed" in k.lower()}
    if isinstance(env.get("seeds"), dict):
        seeds.update(env["seeds"])
    return {
        "job": _short(run.pk),
        "job_id": str(run.pk),
        "kind": run.kind,
        "worker": run.worker,
        "host": env.get("host"),
        "platform": env.get("platform"),
        "python": env.get("python"),
        "backend": env.get("backend") or params.get("backend"),
        "backend_version": env.get("version") or env.get("backend_version"),
        "provider": env.get("provider"),
        "device": env.get("device") or params.get("device"),
        "precision": env.get("precision") or params.get("precision"),
        "packages": env.get("packages") or {},
        "seeds": seeds,
        "duration_s": env.get("duration_s"),
    }


# --- jobs ----------------------------------------------------------------------------


def _mapping(value: Any) -> dict[str, Any]:
    """A stored result's part that should be an object; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _figures(run: EvaluationRun) -> list[dict[str, Any]]:
    kind = _registered(run.kind)
    if kind is None or not run.result:
        return []
    drawn: list[dict[str, Any]] = []
    for title, figure in kind.figures(run.result):
        try:
            drawn.append({"title": title, "svg": figure_svg(figure, show_title=False)})
        except UnsupportedFigure as exc:
            drawn.append(
                {"title": title, "svg": None, "unavailable": f"not drawn in reports ({exc}); see the dashboard"}
            )
    return drawn


def _history(run: EvaluationRun) -> list[dict[str, Any]]:
    kind = _registered(run.kind)
    if kind is None or not kind.history:
        return []
    runs = (
        EvaluationRun.objects.filter(
            model_version_id=run.model_version_id, kind=run.kind, status=RunStatus.SUCCEEDED, finished_at__isnull=False
        )
        .select_related("dataset_version__dataset")
        .order_by("finished_at")
    )
    return [
        {
            "id": str(r.pk),
            "finished_at": _iso(r.finished_at),
            "dataset": str(r.dataset_version) if r.dataset_version else None,
            "result": r.result or {},
        }
        for r in runs
    ]


def _job(run: EvaluationRun) -> dict[str, Any]:
    result = run.result or {}
    label = _kind_label(run.kind)
    dataset = str(run.dataset_version) if run.dataset_version else None
    built = build_section(
        JobContext(
            kind=run.kind, label=label, params=run.params or {}, result=result, dataset=dataset, history=_history(run)
        )
    )
    return {
        "id": str(run.pk),
        "short_id": _short(run.pk),
        "kind": run.kind,
        "label": label,
        "status": run.status,
        "model_version": str(run.model_version),
        "dataset": dataset,
        "dataset_id": str(run.dataset_version_id) if run.dataset_version_id else None,
        "submitted_by": run.created_by.get_username(),
        "submitted_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_s": (run.environment or {}).get("duration_s"),
        "method": built.method,
        "params": run.params or {},
        "tables": built.tables,
        "notes": built.notes,
        "figures": _figures(run),
    }


# --- summary ----------------------------------------------------------------------


def summarise(
    *, thresholds: dict[str, dict[str, float]], runs: list[EvaluationRun], jobs: list[dict[str, Any]]
) -> dict[str, Any]:
    verdicts: list[dict[str, Any]] = []
    issues: list[str] = []
    measured: set[str] = set()
    nothing_compared = 0
    for run, job in zip(runs, jobs, strict=True):
        result = run.result or {}
        numbers = numeric_results(result)
        metrics = _mapping(result.get("metrics"))
        for metric, bounds in sorted(thresholds.items()):
            if metric in metrics and metrics[metric] is None:
                measured.add(metric)
                issues.append(
                    f"{metric} is not defined for {job['label'].lower()} {job['short_id']} on {job['dataset']}"
                )
                continue
            if metric not in numbers:
                continue
            measured.add(metric)
            value = numbers[metric]
            intervals = _mapping(metrics.get("intervals"))
            for bound, limit in sorted(bounds.items()):
                decided = threshold_verdict(value, bound, limit, intervals.get(metric))
                verdicts.append(
                    {
                        "job": job["short_id"],
                        "job_id": job["id"],
                        "kind": job["label"],
                        "dataset": job["dataset"],
                        "metric": metric,
                        "value": value,
                        "bound": bound,
                        "op": BOUNDS[bound],
                        "threshold": limit,
                        "passed": decided["verdict"] == "pass",
                        **decided,
                    }
                )
                where = f"({job['label'].lower()} {job['short_id']})"
                if decided["verdict"] == "fail":
                    word = "below the minimum" if bound == "min" else "above the maximum"
                    issues.append(f"{metric} {value:.4g} is {word} {limit:g} {where}")
                elif decided["verdict"] == "inconclusive":
                    issues.append(f"{metric} {value:.4g} against {BOUNDS[bound]} {limit:g} is inconclusive: "
                                  f"{decided['reason']} {where}")  # fmt: skip
        issues += [
            f"{job['label']} {job['short_id']}: {note}" for note in job["notes"] if "could not be computed" in note
        ]
        issues += [f"{job['label']} {job['short_id']}: {w}" for w in result.get("warnings") or []]
        empty = _not_compared(job, result)
        issues += empty
        nothing_compared += sum(1 for issue in empty if "compared or measured nothing" in issue)
    for metric in sorted(set(thresholds) - measured):
        wanted = ", ".join(f"{BOUNDS[b]} {v:g}" for b, v in sorted(thresholds[metric].items()))
        issues.append(f"no included job measured {metric} (threshold {wanted})")
    failed = sum(1 for v in verdicts if v["verdict"] == "fail")
    inconclusive = sum(1 for v in verdicts if v["verdict"] == "inconclusive")
    overall = ("fail" if failed else "inconclusive" if inconclusive else "pass") if verdicts else "none"
    if overall == "pass" and nothing_compared:  # a job in the report gave no evidence at all
        overall = "inconclusive"
    limitations = []
    if not thresholds:
        limitations.append("The team has set no report thresholds, so the summary gives no pass/fail verdicts.")
    # Jobs on the same data set version score the same rows: count each version once.
    scored: dict[Any, int] = {}
    for r in runs:
        if r.dataset_version_id is not None:
            rows_of = int((r.result or {}).get("rows") or 0)
            scored[r.dataset_version_id] = max(scored.get(r.dataset_version_id, 0), rows_of)
    rows = sum(scored.values())
    if rows:
        limitations.append(
            f"The results hold for the data sets listed under Data identity ({rows:,} rows scored in all); "
            "they say nothing about data the model has not been evaluated on."
        )
    limitations.append("Figures and tables are the stored results of the jobs listed; nothing was recomputed.")
    if verdicts:
        limitations.append(
            "A threshold is met (pass) when the metric's whole 95 % interval lies on the right side of it, missed "
            "(fail) when the whole interval lies on the wrong side, and inconclusive when the interval straddles "
            f"it or rests on fewer than {MIN_ROWS} rows; a number without an interval is compared as it stands."
        )
    return {
        "overall": overall,
        "nothing_compared": nothing_compared,
        "checks": len(verdicts),
        "failed": failed,
        "inconclusive": inconclusive,
        "verdicts": verdicts,
        "open_issues": issues,
        "limitations": limitations,
    }


def _not_compared(job: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Open issues for what a job could not compare or measure, and for a job that compared nothing."""
    issues: list[str] = []
    where = f"{job['label']} {job['short_id']}"
    for key, noun in _COMPARED.items():
        entries = result.get(key)
        if not isinstance(entries, list):
            continue
        failed = [e for e in entries if isinstance(e, dict) and e.get("status") not in (None, "ok")]
        if len(failed) == len(entries):
            issues.append(f"{where} compared or measured nothing: no {noun} ran")
            continue
        for entry in failed:
            name = entry.get("variant") or entry.get("label") or _target(entry.get("target") or entry.get("key"))
            issues.append(f"{where}: {noun} {name} {entry.get('status')}: {entry.get('error') or 'no reason given'}")
    return issues


def _target(target: Any) -> str:
    if not isinstance(target, dict):
        return str(target or "")
    return "/".join(str(target[k]) for k in ("backend", "device", "precision", "batch_size") if target.get(k))


def model_task(version: ModelVersion, runs: list[EvaluationRun]) -> str:
    """What the model does, as its evaluations recorded it, else as its outputs declare it."""
    from evalsvc.evaluations.kinds.evaluate.params import infer_task

    for run in runs:
        task = (run.result or {}).get("task")
        if task in ("classification", "regression"):
            return task
    return infer_task(version)


def applicable_thresholds(thresholds: dict[str, Any], task: str) -> dict[str, Any]:
    """The team's thresholds that can apply to a model of this task (a classifier has no RMSE)."""
    other = REGRESSION_METRICS if task == "classification" else CLASSIFICATION_METRICS
    return {metric: bounds for metric, bounds in thresholds.items() if metric not in other}


# --- the document -----------------------------------------------------------------


def report_document_build(
    *,
    report: Report,
    runs: list[EvaluationRun],
    thresholds: dict[str, Any],
    generated_at: datetime,
    monitors: Sequence[tuple[Any, datetime, datetime]] = (),
) -> dict[str, Any]:
    version = report.model_version
    registered = version.registered_model
    jobs = [_job(run) for run in runs]
    used_by: dict[Any, list[str]] = {}
    datasets: dict[Any, DatasetVersion] = {}
    for run in runs:
        if run.dataset_version is not None:
            datasets.setdefault(run.dataset_version_id, run.dataset_version)
            used_by.setdefault(run.dataset_version_id, []).append(_short(run.pk))
    supersedes = report.supersedes
    thresholds = applicable_thresholds(thresholds, model_task(version, runs))
    return {
        "schema": SCHEMA,
        "report": {
            "id": str(report.pk),
            "title": report.title,
            "version": report.version,
            "supersedes": {"id": str(supersedes.pk), "version": supersedes.version} if supersedes else None,
            "generated_at": _iso(generated_at),
            "generated_by": report.created_by.get_username(),
            "team": {"slug": report.team.slug, "name": report.team.name},
        },
        "summary": summarise(thresholds=thresholds, runs=runs, jobs=jobs),
        "thresholds": {metric: thresholds[metric] for metric in sorted(thresholds)},
        "model": model_identity(version),
        "intended_use": getattr(registered, "intended_use", "") or "",
        "limitations": getattr(registered, "limitations", "") or "",
        "datasets": [dataset_identity(dv, used_by[pk]) for pk, dv in datasets.items()],
        "environment": [_environment(run) for run in runs],
        "jobs": jobs,
        "monitors": [monitor_history(monitor, start, end) for monitor, start, end in monitors],
        "signoff": {
            "prepared_by": report.created_by.get_username(),
            "prepared_at": _iso(generated_at),
            "roles": ["Model owner", "Model risk reviewer"],
        },
    }
