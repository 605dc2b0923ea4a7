"""The `quantize` kind's params: ONNX only, the variants to make and the rows to calibrate and compare on."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds.common import map_columns
from evalsvc.fleet.selectors import require_offer
from evalsvc.registry.models import DatasetVersion, ModelFormat, ModelVersion
from workers.catalog import QUANTIZE_VARIANTS

from ..inputs import check_model_inputs


class QuantizeParams(serializers.Serializer):
    variants = serializers.ListField(
        child=serializers.ChoiceField(choices=QUANTIZE_VARIANTS),
        required=False,
        allow_empty=False,
        default=list(QUANTIZE_VARIANTS),
    )
    calibration_rows = serializers.IntegerField(min_value=1, max_value=100_000, default=256)
    batch_size = serializers.IntegerField(min_value=1, max_value=65536, default=64)
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
    return data


def route(params: dict[str, Any], model: ModelVersion) -> str:
    return require_offer(backend="onnxruntime", device="cpu", model_format=model.format).queue
