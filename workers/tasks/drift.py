"""The drift job: a current data set version against a reference one (engine: workers.engine.drift)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.registry.models import DatasetVersion
from workers.engine.datasets import iter_batches
from workers.engine.drift import (
    DriftConfig,
    DriftReport,
    MultivariateDrift,
    ReferenceProfile,
    UnivariateOptions,
    detect_drift,
    embedding_drift,
    prediction_drift,
)
from workers.engine.drift.embeddings import model_embeddings
from workers.engine.drift.predictions import predicted_classes
from workers.engine.errors import EngineError
from workers.engine.types import DatasetRef, ProgressCallback
from workers.queues import CPU

from .artifacts import dataset_ref, model_spec, tokenizer_path
from .common import execute_run, job_task

#: Rows per block read from a data set file.
BLOCK_ROWS = 65_536


def _dtypes(version: DatasetVersion, columns: list[str]) -> dict[str, str]:
    recorded = {c["name"]: c.get("dtype") for c in version.columns}
    return {c: recorded[c] for c in columns if recorded.get(c) in ("string", "float64", "int64", "bool")}


def _read(ref: DatasetRef, columns: list[str], dtypes: dict[str, str]):
    return iter_batches(ref, BLOCK_ROWS, columns, dtypes=dtypes)


def reference_profile_path(
    version: DatasetVersion,
    columns: list[str],
    *,
    kinds: dict[str, str],
    max_int_categories: int,
    sample_rows: int,
    seed: int,
) -> Path:
    """Where the profile for these (bytes, columns, settings) is cached."""
    key = json.dumps([version.sha256, columns, sorted(kinds.items()), max_int_categories, sample_rows, seed]).encode()
    return Path(settings.ARTIFACT_CACHE_DIR) / "drift" / f"{hashlib.sha256(key).hexdigest()}.npz"


def reference_profile(
    version: DatasetVersion,
    columns: list[str],
    *,
    kinds: dict[str, str],
    max_int_categories: int,
    sample_rows: int,
    seed: int,
) -> ReferenceProfile:
    """The reference's profile, built once per (bytes, columns, settings) and cached on the worker's disk."""
    path = reference_profile_path(
        version, columns, kinds=kinds, max_int_categories=max_int_categories, sample_rows=sample_rows, seed=seed
    )
    if path.exists():
        try:
            return ReferenceProfile.load(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a torn write: build it again
    try:
        ref = dataset_ref(version)
    except OSError as exc:
        raise EngineError(f"could not read the reference data set: {exc}", permanent=False) from exc
    frame = pd.concat(list(_read(ref, columns, _dtypes(version, columns))), ignore_index=True)
    profile = ReferenceProfile.from_frame(
        frame,
        kinds=kinds,  # type: ignore[arg-type]
        max_int_categories=max_int_categories,
        sample_rows=sample_rows,
        seed=seed,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    profile.save(partial)
    partial.replace(path)
    return profile


def config_from_params(params: dict[str, Any]) -> DriftConfig:
    return DriftConfig(
        alpha=params["alpha"],
        correction=params["correction"],
        univariate=UnivariateOptions(
            numeric_test=params["numeric_test"],
            binary_test=params["binary_test"],
            sample_rows=params["sample_rows"],
            seed=params["seed"],
        ),
        multivariate=tuple(params.get("multivariate") or ()),
        max_per_side=params["max_per_side"],
        n_permutations=params["n_permutations"],
        seed=params["seed"],
    )


def _compute(run: EvaluationRun, progress: ProgressCallback) -> dict[str, Any]:
    params = run.params
    current = run.dataset_version
    assert current is not None
    reference = DatasetVersion.objects.filter(pk=params["reference_dataset"]).first()
    if reference is None:
        raise EngineError("the reference data set version no longer exists")
    if params.get("images"):
        return _compute_images(run, reference, current, params, progress)
    columns = params["columns"]
    progress(0, 3)
    profile = reference_profile(
        reference,
        columns,
        kinds=params.get("column_kinds") or {},
        max_int_categories=params["max_int_categories"],
        sample_rows=params["sample_rows"],
        seed=params["seed"],
    )
    progress(1, 3)
    try:
        cur_ref = dataset_ref(current)
    except OSError as exc:
        raise EngineError(f"could not read the current data set: {exc}", permanent=False) from exc
    dtypes = _dtypes(current, columns)
    report = detect_drift(profile, lambda: _read(cur_ref, columns, dtypes), config_from_params(params))
    progress(2, 3)
    embedding_info = None
    if params.get("embedding"):
        found, embedding_info = _embedding_drift(run, reference, cur_ref, params)
        report = dataclasses.replace(
            report,
            multivariate=(*report.multivariate, found),
            timings={**report.timings, "embedding": found.seconds},
        )
    result = {**report.to_dict(), "reference_dataset": params["reference_dataset"]}
    if embedding_info is not None:
        result["embedding"] = embedding_info
    if params.get("prediction_drift"):
        result["prediction"] = _prediction_drift(run, reference, cur_ref, params)
    progress(3, 3)
    return result


def _embedding_drift(
    run: EvaluationRun, reference: DatasetVersion, cur_ref: DatasetRef, params: dict[str, Any]
) -> tuple[MultivariateDrift, dict[str, Any]]:
    """MMD on the model's embeddings of both data sets (penultimate layer or input, projected alike)."""
    settings_ = params["embedding"]
    try:
        model = model_spec(run.model_version)
        ref_ref = dataset_ref(reference)
        tokenizer = tokenizer_path(run.model_version)
    except OSError as exc:
        raise EngineError(f"could not read a stored artifact: {exc}", permanent=False) from exc
    common = {
        "source": settings_["source"],
        "layer": settings_.get("layer"),
        "max_rows": settings_["rows"],
        "feature_columns": params.get("feature_columns"),
        "processing": run.model_version.processing,
        "tokenizer_path": tokenizer,
    }
    started = time.perf_counter()
    ref_emb, info = model_embeddings(model, ref_ref, **common)
    cur_emb, _ = model_embeddings(model, cur_ref, **common)
    found = embedding_drift(
        ref_emb, cur_emb, dim=settings_["dim"], alpha=params["alpha"], n_permutations=params["n_permutations"],
        max_per_side=params["max_per_side"], seed=params["seed"],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    found = dataclasses.replace(found, params={**found.params, **info}, seconds=seconds)
    return found, {**info, "reference_rows": len(ref_emb), "current_rows": len(cur_emb), "seconds": seconds}


def _compute_images(
    run: EvaluationRun, reference: DatasetVersion, current: DatasetVersion, params: dict[str, Any], progress: Any
) -> dict[str, Any]:
    """Two image data sets: drift on the model's embeddings of them (no columns to compare)."""
    progress(0, 2)
    try:
        cur_ref = dataset_ref(current)
    except OSError as exc:
        raise EngineError(f"could not read the current data set: {exc}", permanent=False) from exc
    found, info = _embedding_drift(run, reference, cur_ref, params)
    progress(1, 2)
    report = DriftReport(
        alpha=params["alpha"],
        correction=params["correction"],
        n_reference=info["reference_rows"],
        n_current=info["current_rows"],
        features=(),
        multivariate=(found,),
        timings={"embedding": found.seconds},
        params={"embedding": params["embedding"], "alpha": params["alpha"]},
    )
    progress(2, 2)
    return {**report.to_dict(), "reference_dataset": params["reference_dataset"], "embedding": info}


def _prediction_drift(run: EvaluationRun, reference: DatasetVersion, cur_ref: DatasetRef, params: dict) -> dict:
    """The model's predicted-class distribution on both data sets, compared."""
    try:
        model = model_spec(run.model_version)
        ref_ref = dataset_ref(reference)
        tokenizer = tokenizer_path(run.model_version)
    except OSError as exc:
        raise EngineError(f"could not read a stored artifact: {exc}", permanent=False) from exc
    common = {
        "max_rows": params["prediction_rows"],
        "feature_columns": params.get("feature_columns"),
        "processing": run.model_version.processing,
        "tokenizer_path": tokenizer,
    }
    ref_pred = predicted_classes(model, ref_ref, **common)
    cur_pred = predicted_classes(model, cur_ref, **common)
    report = prediction_drift(ref_pred, cur_pred, alpha=params["alpha"])
    return {**report.feature("predicted_class").__dict__, "histogram": report.to_dict()["features"][0]["histogram"]}


@job_task("evalsvc.drift", queue=CPU)
def run_drift(self: Any, run_id: str) -> str:
    return execute_run(self, run_id, _compute)
