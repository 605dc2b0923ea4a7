"""Quantization job: make the variants, register them, and compare them with their parent."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from itertools import islice
from typing import Any

from evalsvc.evaluations.kinds.evaluate.params import infer_task
from evalsvc.evaluations.models import EvaluationRun
from evalsvc.registry.services import model_variant_register
from workers.engine import quantize
from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.inputs import input_batches
from workers.engine.parity import Target, compare_models, repeatable
from workers.engine.processing import parse_processing_spec
from workers.engine.types import ModelSpec, ProgressCallback
from workers.queues import CPU

from .common import execute_run, job_task, load_artifacts


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


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    parent = run.model_version
    model, data, tokenizer = load_artifacts(run, label_column=params.get("label_column"))
    assert run.dataset_version is not None
    rows = min(params["max_rows"], run.dataset_version.rows)

    def batches(limit: int):  # noqa: ANN202
        return input_batches(
            model,
            data,
            batch_size=params["batch_size"],
            max_rows=limit,
            feature_columns=params.get("feature_columns"),
            processing=parent.processing,
            tokenizer_path=tokenizer,
        )

    variants: dict[str, Any] = {}
    failures: dict[str, str] = {}
    made: dict[str, ModelSpec] = {}
    with tempfile.TemporaryDirectory(prefix="evalsvc-quantize-") as scratch:
        for index, name in enumerate(params["variants"]):
            _stage(progress, 0.0, 0.3)(index, len(params["variants"]))
            target = os.path.join(scratch, f"{name}.onnx")
            try:
                variant = _make(
                    name, model.path, target, lambda: list(islice(batches(params["calibration_rows"]), 10_000))
                )
            except EngineError as exc:  # one variant failing must not stop the others
                failures[name] = exc.message
                continue
            version = model_variant_register(user=run.created_by, parent=parent, path=variant.path, variant=name)
            made[name] = ModelSpec(path=variant.path, format="onnx", sha256=version.sha256)
            variants[name] = {
                "variant": name,
                "status": "ok",
                "model_version_id": str(version.pk),
                "version": version.version,
                "sha256": version.sha256,
                "size_bytes": variant.size_bytes,
                "size_ratio": variant.size_bytes / parent.size_bytes,
                "notes": variant.notes,
            }
        comparison = None
        if made:
            comparison = compare_models(
                model,
                made,
                repeatable(lambda: batches(rows)),
                target=Target("onnxruntime"),
                total_rows=rows,
                progress=_stage(progress, 0.3, 0.7),
            )
            parent_seconds = comparison.reference["seconds"]
            for result in comparison.candidates:
                entry = variants[result.target["model"]]
                entry["agreement"] = [o.__dict__ for o in result.outputs]
                entry["worst_rows"] = result.worst_rows
                entry["seconds"] = result.seconds
                entry["speedup"] = parent_seconds / result.seconds if result.seconds else None
        metrics = _accuracy(run, model, data, made, progress, tokenizer) if data.label_column else {}
    for name, entry in variants.items():
        entry["metrics"] = metrics.get(name)
    return {
        "rows": rows,
        "parent": {
            "model_version_id": str(parent.pk),
            "sha256": parent.sha256,
            "size_bytes": parent.size_bytes,
            "seconds": comparison.reference["seconds"] if comparison else None,
            "metrics": metrics.get("parent"),
        },
        "variants": [variants[n] for n in params["variants"] if n in variants]
        + [{"variant": n, "status": "failed", "error": e} for n, e in failures.items()],
        "backend": comparison.reference_backend if comparison else {},
    }


def _accuracy(
    run: EvaluationRun,
    model: ModelSpec,
    data: Any,
    made: dict[str, ModelSpec],
    progress: ProgressCallback,
    tokenizer: str | None,
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
            batch_size=run.params["batch_size"],
            feature_columns=run.params.get("feature_columns"),
            class_labels=run.model_version.class_labels,
            progress=_stage(progress, 0.7 + index * share, 0.7 + (index + 1) * share),
            processing=processing,
            tokenizer_path=tokenizer,
        )
        scored[name] = result.to_dict()["metrics"]
    return scored


@job_task("evalsvc.quantize", queue=CPU)
def run_quantize(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
