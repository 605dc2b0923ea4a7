"""The `evaluate` kind's params: checked at submission, routed to a worker that offers the backend."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.fleet.selectors import require_offer
from evalsvc.registry.models import DatasetVersion, ModelVersion
from workers.catalog import BACKEND_NAMES

from ..common import DEVICES, PRECISIONS, map_columns
from ..inputs import check_model_inputs

_LABEL_DTYPES = {"int64", "int32", "string", "bool"}

#: Most columns one evaluation is sliced by.
MAX_SLICE_COLUMNS = 5


class EvaluateParams(serializers.Serializer):
    task = serializers.ChoiceField(
        choices=["classification", "regression"],
        required=False,
        help_text="Inferred from the model's outputs when left out.",
    )
    label_column = serializers.CharField(required=False, help_text="Defaults to the data set's label column.")
    feature_columns = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=65536, default=256)
    positive_label = serializers.JSONField(required=False, help_text="Binary classification: the positive class.")
    backend = serializers.CharField(default="onnxruntime")
    device = serializers.ChoiceField(choices=DEVICES, default="cpu")
    precision = serializers.ChoiceField(choices=PRECISIONS, required=False)
    slice_columns = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_empty=False,
        max_length=MAX_SLICE_COLUMNS,
        help_text=(
            "Columns of the data set to report metrics per slice of: by value, numbers with many values in "
            "quartile bins. They need not be model inputs."
        ),
    )


def infer_task(model: ModelVersion) -> str:
    """Classification when the model says it classifies: class labels, a label output, or a
    declared classifier head (softmax/sigmoid, labels, top-k, threshold); else regression."""
    if model.class_labels:
        return "classification"
    output = (model.processing or {}).get("output") or {}
    if output.get("activation") in ("softmax", "sigmoid") or output.get("labels") or output.get("top_k"):
        return "classification"
    for spec in model.outputs:
        shape = spec.get("shape") or []
        if spec.get("dtype") in _LABEL_DTYPES and len(shape) == 1:
            return "classification"
    return "regression"


def clean_params(params: dict[str, Any], model: ModelVersion, dataset: DatasetVersion | None) -> dict[str, Any]:
    assert dataset is not None
    serializer = EvaluateParams(data=params)
    if not serializer.is_valid():
        raise ValidationFailed("invalid params", extra={"errors": {"params": serializer.errors}})
    data = dict(serializer.validated_data)
    if data["backend"] not in BACKEND_NAMES:
        known = ", ".join(BACKEND_NAMES)
        raise ValidationFailed(f"unknown backend {data['backend']!r}; available: {known}")
    columns = dataset.column_names
    label = data.get("label_column") or dataset.label_column
    if not label:
        raise ValidationFailed(
            f"data set {dataset} has no label column: set params.label_column to one of {', '.join(columns[:20])}"
        )
    if label not in columns:
        raise ValidationFailed(f"label column {label!r} is not in data set {dataset}")
    data["label_column"] = label
    features = data.get("feature_columns")
    if features:
        missing = [c for c in features if c not in columns]
        if missing:
            raise ValidationFailed(f"feature columns not in data set {dataset}: {_names(missing)}")
        if label in features:
            raise ValidationFailed(f"the label column {label!r} cannot also be a feature")
    slices = data.get("slice_columns")
    if slices:
        unknown = [c for c in slices if c not in columns]
        if unknown:
            raise ValidationFailed(
                f"slice columns not in data set {dataset}: {_names(unknown)}; its columns are: "
                f"{', '.join(columns[:30])}"
            )
        if len(set(slices)) != len(slices):
            raise ValidationFailed("slice columns are listed more than once")
    data = map_columns(data, model, dataset, label)
    check_model_inputs(model=model, dataset=dataset, feature_columns=data.get("feature_columns"), label=label)
    data.setdefault("task", infer_task(model))
    return data


def _names(names: list[str], *, most: int = 10, length: int = 60) -> str:
    """Names as a message quotes them: a few, each cut short, so a hostile list is not echoed whole."""
    shown = [n if len(n) <= length else n[:length] + "…" for n in names[:most]]
    return ", ".join(shown) + (f" and {len(names) - most} more" if len(names) > most else "")


def route(params: dict[str, Any], model: ModelVersion) -> str:
    offer = require_offer(
        backend=params["backend"], device=params["device"], precision=params.get("precision"), model_format=model.format
    )
    return offer.queue
