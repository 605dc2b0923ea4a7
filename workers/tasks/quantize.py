"""Quantization job: make the variants, compare them with their parent, and register them if it all succeeds."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import numpy as np
from django.conf import settings

from evalsvc.evaluations.kinds.evaluate.params import infer_task
from evalsvc.evaluations.models import EvaluationRun
from evalsvc.registry.models import DatasetVersion
from evalsvc.registry.services import model_variant_register, registrations_all_or_nothing
from evalsvc.registry.storage import hash_file
from workers.engine import quantize
from workers.engine.calibration import Split, first_rows, sample_other, split_rows
from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.feed import model_feed, model_sized
from workers.engine.latency import CellKey, ProfileGrid, StabilityRule, SyntheticInputs, profile_cell
from workers.engine.parity import Target, compare_models, repeatable
from workers.engine.processing import parse_processing_spec
from workers.engine.types import ModelSpec, ProgressCallback
from workers.queues import CPU

from .artifacts import dataset_ref
from .common import JobFailed, Outcome, execute_run, job_task, load_artifacts


def _stage(progress: ProgressCallback, start: float, end: float) -> ProgressCallback:
    """Map one stage's (done, total) onto a slice of the whole job's progress."""

    def report(done: int, total: int) -> None:
        fraction = start + (end - start) * (done / total if total else 1.0)
        progress(int(fraction * 1000), 1000)

    return report


def _make(name: str, source: str, target: str, calibration: Callable[[], list[dict[str, Any]]]) -> quantize.Variant:
    if name == "fp16":
        return quantize.fp16(source, target)
    if name == "int8_dynamic":
        return quantize.int8_dynamic(source, target)
    return quantize.int8_static(source, target, calibration())


def _compute(run: EvaluationRun, progress: ProgressCallback) -> Outcome:
    """Make, compare and score the variants in a scratch folder; register them only when the run succeeds."""
    scratch = tempfile.mkdtemp(prefix="evalsvc-quantize-")
    try:
        result, files = _measure(run, progress, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    parent = run.model_version

    def register(result: dict[str, Any]) -> None:
        # One transaction with the success transition: a run that fails, is cancelled
        # or cannot record its success leaves no version and no stored file behind.
        with registrations_all_or_nothing():
            for entry in result["variants"]:
                if entry["status"] != "ok":
                    continue
                version = model_variant_register(
                    user=run.created_by, parent=parent, path=files[entry["variant"]], variant=entry["variant"]
                )
                entry["model_version_id"] = str(version.pk)
                entry["version"] = version.version

    return Outcome(result, commit=register, cleanup=lambda: shutil.rmtree(scratch, ignore_errors=True))


def _measure(run: EvaluationRun, progress: ProgressCallback, scratch: str) -> tuple[dict[str, Any], dict[str, str]]:
    params = run.params
    parent = run.model_version
    model, data, tokenizer = load_artifacts(run, label_column=params.get("label_column"))
    assert run.dataset_version is not None
    split, calibration_data = _split(run, data)
    # Every model is compared and scored on the same rows: the data set less the calibration rows.
    select = first_rows(split.evaluation, params["max_rows"]) if split is not None else None
    if select is None:
        rows = min(params["max_rows"], run.dataset_version.rows)
        select = np.zeros(run.dataset_version.rows, dtype=bool)
        select[:rows] = True
    rows = int(select.sum())
    serving = params.get("serving_batch_size") or params["batch_size"]

    def feed_of(dataset: Any, mask: np.ndarray) -> Any:
        return model_feed(
            model,
            dataset,
            feature_columns=params.get("feature_columns"),
            processing=parent.processing,
            tokenizer_path=tokenizer,
            select=mask,
        )

    feed = feed_of(data, select)

    def batches() -> Iterator[dict[str, Any]]:
        return feed.batches(serving)

    def calibration() -> list[dict[str, Any]]:
        # The quantizer runs the batches itself: a fixed-batch model gets its own size.
        assert split is not None and calibration_data is not None
        source = feed_of(calibration_data, split.calibration)
        return list(islice(model_sized(source.batches(params["batch_size"]), source.fixed_rows), 10_000))

    variants: dict[str, Any] = {}
    failures: dict[str, str] = {}
    made: dict[str, ModelSpec] = {}
    for index, name in enumerate(params["variants"]):
        _stage(progress, 0.0, 0.3)(index, len(params["variants"]))
        target = os.path.join(scratch, f"{name}.onnx")
        try:
            variant = _make(name, model.path, target, calibration)
        except EngineError as exc:  # one variant failing must not stop the others
            failures[name] = exc.message
            continue
        sha256, _ = hash_file(variant.path)
        made[name] = ModelSpec(path=variant.path, format="onnx", sha256=sha256)
        variants[name] = {
            "variant": name,
            "status": "ok",
            "sha256": sha256,
            "size_bytes": variant.size_bytes,
            "size_ratio": variant.size_bytes / parent.size_bytes,
            "notes": variant.notes,
        }
    failed = [{"variant": n, "status": "failed", "error": e} for n, e in failures.items()]
    if not made:
        # Nothing was made, so nothing was compared: that is not a success.
        reasons = "; ".join(f"{n}: {e}" for n, e in failures.items())
        raise JobFailed(
            f"no variant could be made, so nothing was compared ({reasons})",
            result={"rows": rows, "variants": failed},
        )
    comparison = compare_models(
        model,
        made,
        repeatable(batches),
        target=Target("onnxruntime"),
        total_rows=rows,
        progress=_stage(progress, 0.3, 0.7),
    )
    parent_seconds = comparison.reference["seconds"]
    for candidate in comparison.candidates:
        entry = variants[candidate.target["model"]]
        entry["agreement"] = [o.__dict__ for o in candidate.outputs]
        entry["worst_rows"] = candidate.worst_rows
        entry["seconds"] = candidate.seconds
    timing = _timing({"parent": model, **made}, params["batch_size"], params.get("timing_seconds", 6))
    for name, entry in variants.items():
        entry["timing"] = timing[name]
        entry["speedup"] = _speedup(timing["parent"], timing[name])
    metrics = _accuracy(run, model, data, made, progress, tokenizer, select) if data.label_column else {}
    for name, entry in variants.items():
        entry["metrics"] = metrics.get(name)
        entry["scored_rows"] = metrics.get(f"{name}:rows")
        entry["compared_rows"] = comparison.rows
    result = {
        "rows": rows,
        "parent": {
            "model_version_id": str(parent.pk),
            "sha256": parent.sha256,
            "size_bytes": parent.size_bytes,
            "seconds": parent_seconds,
            "timing": timing["parent"],
            "metrics": metrics.get("parent"),
            "scored_rows": metrics.get("parent:rows"),
        },
        "variants": [variants[n] for n in params["variants"] if n in variants] + failed,
        "backend": comparison.reference_backend,
        "serving_batch_size": serving,
        "calibration": _calibration_record(run, split),
    }
    return result, {name: spec.path for name, spec in made.items()}


def _timing(specs: dict[str, ModelSpec], batch_size: int, seconds: float) -> dict[str, dict[str, Any]]:
    """Time each model as the latency profiler does: load, warm up, then windows until they agree.

    The pass that compared outputs includes each model's first, cold call, so its
    duration is no measure of speed; this one is, with its spread.
    """
    grid = ProfileGrid(batch_sizes=(batch_size,), rule=StabilityRule(min_window_s=0.5, max_seconds=seconds))
    key = CellKey(backend="onnxruntime", device="cpu", precision="fp32", batch_size=batch_size, threads=None)
    timing: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        cell = profile_cell(spec, key, grid, SyntheticInputs())
        if cell.status != "ok" or cell.model is None:
            timing[name] = {"status": cell.status, "error": cell.error}
            continue
        lat = cell.model.latency
        timing[name] = {
            "status": "ok",
            "batch_size": batch_size,
            "count": lat.count,
            "p50_ms": lat.p50_ms,
            "p90_ms": lat.p90_ms,
            "p99_ms": lat.p99_ms,
            "std_ms": lat.std_ms,
            "us_per_row": 1000 * lat.p50_ms / batch_size,
            "stable": cell.model.stability.stable,
            "stability": cell.model.stability.reason,
        }
    return timing


def _speedup(parent: dict[str, Any], variant: dict[str, Any]) -> float | None:
    """Ratio of median latencies, parent over variant, both warm."""
    if parent.get("status") != "ok" or variant.get("status") != "ok" or not variant.get("p50_ms"):
        return None
    return parent["p50_ms"] / variant["p50_ms"]


def _accuracy(
    run: EvaluationRun,
    model: ModelSpec,
    data: Any,
    made: dict[str, ModelSpec],
    progress: ProgressCallback,
    tokenizer: str | None,
    select: np.ndarray,
) -> dict[str, Any]:
    """Score the parent and each variant on the labelled rows, the same way an evaluation job does."""
    task = infer_task(run.model_version)
    declared = run.model_version.processing
    processing = parse_processing_spec(declared) if declared else None
    specs = {"parent": model, **made}
    scored: dict[str, Any] = {}
    for index, (name, spec) in enumerate(specs.items()):
        share = 0.3 / len(specs)
        result = evaluate(
            spec,
            data,
            task=task,
            batch_size=run.params.get("serving_batch_size") or run.params["batch_size"],
            feature_columns=run.params.get("feature_columns"),
            class_labels=run.model_version.class_labels,
            progress=_stage(progress, 0.7 + index * share, 0.7 + (index + 1) * share),
            processing=processing,
            tokenizer_path=tokenizer,
            select=select,
            analytic_intervals_above=settings.EVALSVC_ANALYTIC_INTERVAL_ROWS,
        )
        scored[name] = result.to_dict()["metrics"]
        scored[f"{name}:rows"] = result.rows
    return scored


def _split(run: EvaluationRun, data: Any) -> tuple[Split | None, Any]:
    """The static INT8 variant's calibration rows, and the data set they come from (None: no calibration)."""
    params = run.params
    if "int8_static" not in params["variants"]:
        return None, None
    assert run.dataset_version is not None
    label = data.label_column
    if params.get("calibration_dataset"):
        other = DatasetVersion.objects.get(pk=params["calibration_dataset"])
        try:
            other_data = dataset_ref(other, label_column=label if label in other.column_names else None)
        except OSError as exc:
            raise EngineError(f"could not read a stored artifact: {exc}", permanent=False) from exc
        sampled = sample_other(
            other_data, rows=params["calibration_rows"], seed=params["seed"], label=other_data.label_column,
            total=other.rows,
        )  # fmt: skip
        whole = np.ones(run.dataset_version.rows, dtype=bool)
        return Split(sampled.calibration, whole, sampled.method, sampled.seed, sampled.classes), other_data
    classify = infer_task(run.model_version) == "classification"
    split = split_rows(
        data, rows=params["calibration_rows"], seed=params["seed"], label=label if classify else None,
        total=run.dataset_version.rows,
    )  # fmt: skip
    return split, data


def _calibration_record(run: EvaluationRun, split: Split | None) -> dict[str, Any] | None:
    if split is None:
        return None
    record = split.record()
    if run.params.get("calibration_dataset"):
        record["dataset_version_id"] = run.params["calibration_dataset"]
        record["dataset"] = run.params.get("calibration_label")
        record["held_out"] = False
    else:
        record["held_out"] = True
    return record


@job_task("evalsvc.quantize", queue=CPU)
def run_quantize(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
