"""Will the data set feed the model? Checked at submission from the stored schemas, before a queue.

The model version's stored signature (inputs, shapes) and processing spec, and
the data set version's stored schema (columns, missing counts) say most of
what would otherwise fail only in the worker: the wrong number of columns,
columns a spec reads that the data set lacks, missing values in a column the
job reads, an input of the wrong rank. The rules are the input feed's own
(`workers.engine.feed`), applied to the stored schemas.
"""

from __future__ import annotations

from typing import Any

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.registry.models import DatasetFormat, DatasetVersion, ModelVersion
from workers.engine.errors import EngineError
from workers.engine.feed.convert import tabular_input
from workers.engine.processing import parse_processing_spec
from workers.engine.processing.pipeline import input_columns
from workers.engine.types import TensorSpec


def _tensor(spec: dict[str, Any]) -> TensorSpec:
    shape = spec.get("shape")
    return TensorSpec(name=spec["name"], dtype=spec["dtype"], shape=tuple(shape) if shape is not None else None)


def _names(columns: list[str], limit: int = 12) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def check_model_inputs(
    *,
    model: ModelVersion,
    dataset: DatasetVersion,
    feature_columns: list[str] | None,
    label: str | None,
    whole: bool = True,
) -> None:
    """Refuse a job whose data set cannot feed its model, saying what is wrong and naming columns.

    Raises
    ------
    ValidationFailed
        when a column the model (or its processing spec) needs is absent, a
        column the job reads has missing values (with ``whole``: the job reads
        every row, not a sample), or a plain table cannot
        give the model's input (not one input, not rank 2, another width).
    """
    if dataset.format == DatasetFormat.IMAGEFOLDER:
        return  # images are shaped by the processing spec, which registration validated
    columns = dataset.column_names
    declared = (model.processing or {}).get("input")
    if declared:
        spec = parse_processing_spec({"input": declared}).input
        assert spec is not None
        features = input_columns(spec)
        absent = [c for c in features if c not in columns]
        if absent:
            raise ValidationFailed(
                f"data set {dataset} lacks columns that {model}'s processing spec reads: {_names(absent)}"
            )
    else:
        features = feature_columns or [c for c in columns if c != label and c != dataset.label_column]
        inputs = [_tensor(s) for s in model.inputs]
        named = [s.name for s in inputs]
        if len(inputs) > 1 and any(n in columns for n in named):
            absent = [n for n in named if n not in columns]
            if absent:  # one input per column, named after it
                raise ValidationFailed(f"data set {dataset} lacks columns {model} takes as inputs: {_names(absent)}")
        try:
            tabular_input(inputs, features)
        except EngineError as exc:
            hint = _width_hint(exc.message, model, columns)
            raise ValidationFailed(f"data set {dataset} cannot feed {model}: {hint}") from None
    if not whole:
        return
    read = features + ([label] if label and label not in features else [])
    missing = {c["name"]: c.get("missing") or 0 for c in dataset.columns if c["name"] in read}
    holes = [f"{name} ({count:,} missing)" for name, count in missing.items() if count]
    if holes:
        raise ValidationFailed(
            f"data set {dataset} has missing values in columns the job reads: {_names(holes)}; "
            "fill or drop those rows and upload the data set again"
        )


def _width_hint(message: str, model: ModelVersion, columns: list[str]) -> str:
    """The feed's message, plus which columns are missing where an earlier evaluation of the model recorded them."""
    if "features but" not in message:
        return message
    from evalsvc.evaluations.models import EvaluationRun, RunStatus

    earlier = (
        EvaluationRun.objects.filter(model_version=model, kind="evaluate", status=RunStatus.SUCCEEDED)
        .order_by("-finished_at")
        .values_list("result", flat=True)
    )
    for result in earlier[:20]:
        used = (result or {}).get("feature_columns") or []
        absent = [c for c in used if c not in columns]
        if absent:
            return f"{message}; missing here, and read when it was last evaluated: {_names(absent)}"
    return message + "; choose the model's columns with params.feature_columns or register a data set that has them"
