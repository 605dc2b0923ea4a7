"""The `parity` kind's params: a reference target and candidates (by default every engine a worker offers)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds.common import map_columns
from evalsvc.fleet.selectors import offers, require_worker_for
from evalsvc.registry.deferred import require_ready
from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.registry.same_model import declared_same_model

from ..common import DEVICES, PRECISIONS
from ..inputs import check_model_inputs


class TargetParams(serializers.Serializer):
    backend = serializers.CharField()
    device = serializers.ChoiceField(choices=DEVICES, default="cpu")
    precision = serializers.ChoiceField(choices=PRECISIONS, default="fp32")


class CandidateParams(TargetParams):
    model_version = serializers.UUIDField(
        required=False,
        help_text="Another version declared the same model (e.g. its TorchScript export); defaults to the job's.",
    )


class ParityParams(serializers.Serializer):
    reference = TargetParams(required=False, help_text="Defaults to onnxruntime on cpu in fp32.")
    candidates = CandidateParams(
        many=True, required=False, help_text="Defaults to every backend and device a live worker offers."
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=65536, default=64)
    max_rows = serializers.IntegerField(min_value=1, max_value=1_000_000, default=5000)
    feature_columns = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
    top_n = serializers.IntegerField(min_value=1, max_value=100, default=10)


def _key(target: dict[str, Any]) -> tuple[str, str, str]:
    return target["backend"], target["device"], target.get("precision") or "fp32"


def _same_key(target: dict[str, Any]) -> tuple[str, str, str, str]:
    return (*_key(target), target.get("model_version") or "")


def _candidate_model(model: ModelVersion, candidate: dict[str, Any]) -> dict[str, Any]:
    """A candidate naming its own model version: one of this team's, declared the same model as the job's."""
    version_id = candidate.pop("model_version", None)
    if version_id is None or version_id == model.pk:
        return candidate
    other = ModelVersion.objects.select_related("registered_model").filter(pk=version_id, team=model.team_id).first()
    if other is None:
        raise ValidationFailed(f"candidate model_version {version_id} not found")
    require_ready(other)
    if not declared_same_model(model, other):
        raise ValidationFailed(
            f"candidate model_version {other} is not declared the same model as {model}: "
            "link them with same_model_as (PATCH /api/model-versions/{id}/) first"
        )
    return {**candidate, "model_version": str(other.pk), "model_format": other.format}


def clean_params(params: dict[str, Any], model: ModelVersion, dataset: DatasetVersion | None) -> dict[str, Any]:
    assert dataset is not None
    serializer = ParityParams(data=params)
    if not serializer.is_valid():
        raise ValidationFailed("invalid params", extra={"errors": {"params": serializer.errors}})
    data = serializer.validated_data
    reference = dict(data.get("reference") or {"backend": "onnxruntime", "device": "cpu", "precision": "fp32"})
    if "candidates" in data:
        candidates = [_candidate_model(model, dict(c)) for c in data["candidates"]]
    else:
        fits = [o for o in offers() if not o.formats or model.format in o.formats]
        candidates = [
            {"backend": o.backend, "device": o.device, "precision": "fp32"}
            for o in sorted({(o.backend, o.device): o for o in fits}.values(), key=lambda o: (o.backend, o.device))
        ]
    candidates = [c for c in candidates if _same_key(c) != _same_key(reference)]
    unique = list({_same_key(c): c for c in candidates}.values())
    if not unique:
        raise ValidationFailed("parity needs at least one candidate other than the reference")
    features = data.get("feature_columns")
    if features:
        missing = [c for c in features if c not in dataset.column_names]
        if missing:
            raise ValidationFailed(f"feature columns not in data set {dataset}: {', '.join(missing)}")
    cleaned = {k: v for k, v in data.items() if k not in ("reference", "candidates")}
    label = cleaned.get("label_column") or dataset.label_column or None
    cleaned = map_columns(cleaned, model, dataset, label)
    check_model_inputs(model=model, dataset=dataset, feature_columns=cleaned.get("feature_columns"), label=None)
    return {**cleaned, "reference": reference, "candidates": unique}


def route(params: dict[str, Any], model: ModelVersion) -> str:
    targets = [_key(params["reference"]), *(_key(c) for c in params["candidates"])]
    formats = [model.format, *(c.get("model_format") or model.format for c in params["candidates"])]
    return require_worker_for(targets=targets, formats=formats)
