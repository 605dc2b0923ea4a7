"""What a monitor check learns by running its model version on the window's rows.

Three parts, each recorded on its own (one that fails records its error and
the others still finish):

* **performance** — once labels have arrived for rows of the window, the
  model's metrics on those rows, scored by the evaluate engine
  (:func:`workers.engine.evaluate.evaluate`: accuracy, F1, ROC AUC for a
  classifier; MAE, RMSE, R² for a regressor);
* **prediction** — the predicted-class distribution on a sample of the
  window against the same number of reference rows (a classifier only);
* **attribution** — global importance (mean |KernelSHAP attribution|) on a
  sample of the window against as many reference rows, compared by nDCG and
  by each feature's share (:func:`workers.engine.explain.drift.attribution_drift`).

The last two stand in for accuracy while labels have not arrived. The rows
go to the engine as a temporary Parquet file, the one form every engine
function reads.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evalsvc.monitoring.models import Monitor
from workers.engine.drift import prediction_drift
from workers.engine.drift.predictions import predicted_classes
from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.explain.drift import attribution_drift
from workers.engine.explain.pipeline import ExplainRequest, run_explanation
from workers.engine.processing import parse_processing_spec
from workers.engine.types import DatasetRef

from .artifacts import dataset_ref, model_spec, tokenizer_path

#: Name of the label column in the rows handed to the evaluate engine.
LABEL = "__label__"


def feature_columns(monitor: Monitor, params: dict[str, Any]) -> list[str]:
    """The model's input columns: the detectors' ``feature_columns``, else the compared ones but the label."""
    chosen = params.get("feature_columns")
    if chosen:
        return list(chosen)
    label = monitor.reference_dataset.label_column
    return [c for c in monitor.columns if c != label]


def _as_ref(frame: pd.DataFrame, directory: str, name: str, label: str | None = None) -> DatasetRef:
    path = Path(directory) / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return DatasetRef(
        path=str(path),
        format="parquet",
        sha256=digest,
        columns=tuple(str(c) for c in frame.columns),
        label_column=label,
        rows=int(frame.shape[0]),
    )


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), rows, replace=False))
    return frame.iloc[picked].reset_index(drop=True)


def _guarded(part: str, fn: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        out = fn()
    except EngineError as exc:
        out = {"error": exc.message}
    except Exception as exc:  # one failing part does not sink the check
        out = {"error": f"{part} could not be computed: {exc}"}
    out["seconds"] = round(time.perf_counter() - started, 4)
    return out


def model_checks(
    monitor: Monitor, frame: pd.DataFrame, labels: pd.Series, params: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Performance (where labels arrived), prediction drift and attribution drift on the window's rows."""
    version = monitor.model_version
    try:
        model = model_spec(version)
        reference = dataset_ref(monitor.reference_dataset)
        tokenizer = tokenizer_path(version)
    except OSError as exc:
        return {"model": {"error": f"could not read a stored artifact: {exc}"}}
    features = feature_columns(monitor, params)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        return {"model": {"error": f"feature columns not in the monitor's batches: {', '.join(missing)}"}}
    task = monitor.task or "classification"
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="monitor-check-") as tmp:
        labelled = labels.notna().to_numpy()
        if labelled.any():

            def performance() -> dict[str, Any]:
                rows = frame.loc[labelled, features].reset_index(drop=True)
                rows[LABEL] = labels[labelled].reset_index(drop=True).to_numpy()
                rows = _sample(rows, params["metrics_rows"], params["seed"])
                result = evaluate(
                    model,
                    _as_ref(rows, tmp, "labelled", label=LABEL),
                    task=task,
                    feature_columns=features,
                    class_labels=version.class_labels,
                    processing=parse_processing_spec(version.processing) if version.processing else None,
                    tokenizer_path=tokenizer,
                ).to_dict()
                return {
                    "task": task,
                    "rows_labelled": int(labelled.sum()),
                    "rows": len(frame),
                    "rows_scored": len(rows),
                    "metrics": result["metrics"],
                    "labels": result.get("labels"),
                    "confusion_matrix": result.get("confusion_matrix"),
                    "warnings": result.get("warnings") or [],
                }

            out["performance"] = _guarded("performance", performance)
        if params["prediction_drift"] and task == "classification":

            def prediction() -> dict[str, Any]:
                rows = _sample(frame[features], params["prediction_rows"], params["seed"])
                common = {
                    "max_rows": params["prediction_rows"],
                    "feature_columns": features,
                    "processing": version.processing,
                    "tokenizer_path": tokenizer,
                }
                ref_pred = predicted_classes(model, reference, **common)
                cur_pred = predicted_classes(model, _as_ref(rows, tmp, "window"), **common)
                report = prediction_drift(ref_pred, cur_pred, alpha=params["alpha"])
                feature = report.to_dict()["features"][0]
                return {**feature, "reference_rows": len(ref_pred), "current_rows": len(cur_pred)}

            out["prediction"] = _guarded("prediction drift", prediction)
        if params["attribution_drift"]:

            def attribution() -> dict[str, Any]:
                rows = _sample(frame[features], params["attribution_rows"], params["seed"])
                request = ExplainRequest(
                    method="kernel_shap",
                    method_params={"nsamples": params["attribution_nsamples"], "seed": params["seed"]},
                    rows={"indices": [0]},
                    global_rows=len(rows),
                    feature_columns=tuple(features),
                    stability_seeds=1,
                )
                result = run_explanation(
                    model,
                    _as_ref(rows, tmp, "attribution"),
                    request,
                    processing=version.processing,
                    reference=reference,
                    class_labels=version.class_labels,
                )
                if "attribution_drift" not in result:
                    raise EngineError("attribution drift needs a tabular model explained by KernelSHAP")
                by_name = {f["feature"]: f for f in result["attribution_drift"]["features"]}
                names = list(result["features"])
                drift = attribution_drift(
                    np.array([by_name[n]["reference"] for n in names]),
                    np.array([by_name[n]["current"] for n in names]),
                    names,
                    threshold=params["attribution_threshold"],
                )
                return {
                    **drift,
                    "method": "kernel_shap",
                    "nsamples": params["attribution_nsamples"],
                    "current_rows": len(rows),
                    "reference_rows": len(rows),
                    "model_rows": result["budget"].get("model_rows"),
                }

            out["attribution"] = _guarded("attribution drift", attribution)
    return out
