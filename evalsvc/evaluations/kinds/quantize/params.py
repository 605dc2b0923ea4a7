"""The `quantize` kind's params: ONNX only, the variants to make and the rows to calibrate and compare on."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds.common import map_columns
from evalsvc.fleet.selectors import require_offer
from evalsvc.registry.deferred import require_ready
from evalsvc.registry.models import DatasetFormat, DatasetVersion, ModelFormat, ModelVersion
from workers.catalog import QUANTIZE_VARIANTS

from ..inputs import check_model_inputs


class QuantizeParams(serializers.Serializer):
    variants = serializers.ListField(
        child=serializers.ChoiceField(choices=QUANTIZE_VARIANTS),
        required=False,
        allow_empty=False,
        default=list(QUANTIZE_VARIANTS),
    )
    calibration_rows = serializers.IntegerField(
        min_value=1,
        max_value=100_000,
        required=False,
        help_text="Rows the static INT8 variant is calibrated on; default 256, at most a fifth of a split data set.",
    )
    calibration_dataset = serializers.UUIDField(
        required=False,
        help_text="A data set version of the same team to calibrate on; default: a seeded stratified split of this one.",
    )
    seed = serializers.IntegerField(
        min_value=0, max_value=2**32 - 1, default=0, help_text="Seed of the calibration split."
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=65536, default=64)
    serving_batch_size = serializers.IntegerField(
        min_value=1,
        max_value=65536,
        required=False,
        help_text="Rows per call when outputs and accuracy are compared (dynamic INT8 depends on it); "
        "default: batch_size.",
    )
    max_rows = serializers.IntegerField(min_value=1, max_value=1_000_000, default=5000)
    timing_seconds = serializers.FloatField(
        min_value=1, max_value=120, default=6, help_text="Most seconds spent timing each model (warm, in windows)."
    )
    feature_columns = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
    label_column = serializers.CharField(required=False)


def clean_params(params: dict[str, Any], model: ModelVersion, dataset: DatasetVersion | None) -> dict[str, Any]:
    assert dataset is not None
    if model.format != ModelFormat.ONNX:
        raise ValidationFailed(f"quantization works on ONNX models; {model} is {model.get_format_display()}")
    if model.variant:
        source = f"{model.parent}" if model.parent_id else "its parent"
        raise ValidationFailed(
            f"{model} is already a {model.variant} variant of {source}: quantizing it again is not supported; "
            f"quantize {source} instead"
        )
    serializer = QuantizeParams(data=params)
    if not serializer.is_valid():
        raise ValidationFailed("invalid params", extra={"errors": {"params": serializer.errors}})
    data = dict(serializer.validated_data)
    data["variants"] = list(dict.fromkeys(data["variants"]))
    label = data.get("label_column") or dataset.label_column
    if label and label not in dataset.column_names:
        raise ValidationFailed(f"label column {label!r} is not in data set {dataset}")
    data["label_column"] = label or None
    data = map_columns(data, model, dataset, data["label_column"])
    check_model_inputs(model=model, dataset=dataset, feature_columns=data.get("feature_columns"), label=label or None)
    data["serving_batch_size"] = data.get("serving_batch_size") or data["batch_size"]
    return _calibration(data, model, dataset)


def _calibration(data: dict[str, Any], model: ModelVersion, dataset: DatasetVersion) -> dict[str, Any]:
    """Where the static INT8 variant's calibration rows come from: another data set, or a held-out split."""
    if data.get("calibration_dataset") is None:
        data.pop("calibration_dataset", None)
        if "calibration_rows" not in data:
            data["calibration_rows"] = max(1, min(256, (dataset.rows or 0) // 5))
        if "int8_static" in data["variants"] and dataset.rows is not None and data["calibration_rows"] >= dataset.rows:
            raise ValidationFailed(
                f"calibration_rows ({data['calibration_rows']}) leaves no row of data set {dataset} "
                f"({dataset.rows} rows) for the comparison: ask for fewer, or name a calibration_dataset"
            )
        return data
    data.setdefault("calibration_rows", 256)
    other = DatasetVersion.objects.filter(pk=data["calibration_dataset"], team_id=dataset.team_id).first()
    if other is None:
        raise ValidationFailed("calibration_dataset: no data set version with that id in this team")
    require_ready(other)
    if (other.format == DatasetFormat.IMAGEFOLDER) != (dataset.format == DatasetFormat.IMAGEFOLDER):
        raise ValidationFailed(
            f"calibration_dataset {other} is {other.get_format_display()} but {dataset} is "
            f"{dataset.get_format_display()}: calibrate on data of the same kind"
        )
    features = data.get("feature_columns")
    declared = (model.processing or {}).get("input")
    if not features and not declared and other.format != DatasetFormat.IMAGEFOLDER:
        # Read by position: the calibration table must have the same feature columns in the same order.
        label = data.get("label_column")
        mine = [c for c in dataset.column_names if c != label]
        theirs = [c for c in other.column_names if c not in (label, other.label_column)]
        if mine != theirs:
            raise ValidationFailed(
                f"calibration_dataset {other} lacks the feature columns of {dataset} in the same order "
                f"({len(theirs)} columns against {len(mine)}): the model names no features, so they are read by position"
            )
    if features:
        absent = [c for c in features if c not in other.column_names]
        if absent:
            raise ValidationFailed(f"calibration_dataset {other} lacks feature columns: {', '.join(absent)}")
    check_model_inputs(model=model, dataset=other, feature_columns=features, label=None)
    data["calibration_dataset"] = str(other.pk)
    data["calibration_label"] = str(other)
    return data


def route(params: dict[str, Any], model: ModelVersion) -> str:
    return require_offer(backend="onnxruntime", device="cpu", model_format=model.format).queue
