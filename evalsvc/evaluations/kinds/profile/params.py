"""The `profile` kind's params: the grid (at most MAX_CELLS cells), objectives and a regression baseline."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds.common import map_columns
from evalsvc.fleet.selectors import require_worker_for
from evalsvc.registry.models import DatasetVersion, ModelVersion
from workers.queues import PROFILE

from ..common import DEVICES, PRECISIONS
from ..inputs import check_model_inputs

MAX_CELLS = 48


class LatencyObjectiveParams(serializers.Serializer):
    max_ms = serializers.FloatField(min_value=0.0001)
    percentile = serializers.ChoiceField(choices=[50, 90, 95, 99], default=99)
    batch_size = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    with_preprocessing = serializers.BooleanField(default=False)


class ThroughputObjectiveParams(serializers.Serializer):
    min_rows_s = serializers.FloatField(min_value=0.0001)
    with_preprocessing = serializers.BooleanField(default=False)


class ObjectivesParams(serializers.Serializer):
    latency = LatencyObjectiveParams(required=False)
    throughput = ThroughputObjectiveParams(required=False)
    prefer = serializers.ChoiceField(choices=["throughput", "latency"], default="throughput")


class RegressionParams(serializers.Serializer):
    baseline_run = serializers.UUIDField(help_text="A finished profile run to compare with, cell by cell.")
    threshold = serializers.FloatField(min_value=0, max_value=10, default=0.10, help_text="0.10 = 10% slower")
    alpha = serializers.FloatField(min_value=1e-6, max_value=0.5, default=0.01)


class ProfileParams(serializers.Serializer):
    backends = serializers.ListField(child=serializers.CharField(), default=["onnxruntime"], allow_empty=False)
    devices = serializers.ListField(child=serializers.ChoiceField(choices=DEVICES), default=["cpu"], allow_empty=False)
    precisions = serializers.ListField(
        child=serializers.ChoiceField(choices=PRECISIONS), default=["fp32"], allow_empty=False
    )
    batch_sizes = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=4096), default=[1, 8, 32], allow_empty=False
    )
    threads = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=256, allow_null=True), default=[None], allow_empty=False
    )
    preprocessing = serializers.ChoiceField(choices=["out", "in", "both"], default="out")
    concurrency = serializers.IntegerField(
        min_value=0, max_value=64, default=0, help_text="Sweep 1, 2, 4, … concurrent requests up to this; 0 for none."
    )
    max_seconds_per_cell = serializers.FloatField(min_value=1, max_value=600, default=20)
    min_samples_per_cell = serializers.IntegerField(
        min_value=0,
        max_value=100,
        default=0,
        help_text="Keep timing a cell past max_seconds_per_cell until it has this many calls (a regression "
        "check needs 20 per cell).",
    )
    objectives = ObjectivesParams(required=False)
    regression = RegressionParams(required=False)
    feature_columns = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
    synthetic_dims = serializers.DictField(
        child=serializers.IntegerField(min_value=1), required=False, help_text="Sizes of named dynamic dimensions."
    )


def clean_params(params: dict[str, Any], model: ModelVersion, dataset: DatasetVersion | None) -> dict[str, Any]:
    serializer = ProfileParams(data=params)
    if not serializer.is_valid():
        raise ValidationFailed("invalid params", extra={"errors": {"params": serializer.errors}})
    data = serializer.validated_data
    cells = 1
    for axis in ("backends", "devices", "precisions", "batch_sizes", "threads"):
        data[axis] = list(dict.fromkeys(data[axis]))
        cells *= len(data[axis])
    if cells > MAX_CELLS:
        raise ValidationFailed(f"the grid has {cells} cells; at most {MAX_CELLS} per profile job")
    if data["preprocessing"] != "out" and dataset is None:
        raise ValidationFailed("timing preprocessing needs real rows: choose a data set version")
    regression = data.get("regression")
    if regression:
        from evalsvc.evaluations.models import EvaluationRun

        baseline = EvaluationRun.objects.filter(
            pk=regression["baseline_run"], team=model.team, kind="profile", status="succeeded"
        ).first()
        if baseline is None:
            raise ValidationFailed("the baseline run is not a finished profile run of this team")
        regression["baseline_run"] = str(regression["baseline_run"])
        _same_inputs(baseline, data, dataset)
        if baseline.model_version.registered_model_id != model.registered_model_id:
            regression["warning"] = (
                f"the baseline profiled {baseline.model_version}, another model than {model}: "
                "the comparison says which is faster, not whether a new version of one model regressed"
            )
    if dataset is not None:  # a sample of its rows: missing values are the sample's business
        data = map_columns(data, model, dataset, data.get("label_column") or dataset.label_column or None)
        check_model_inputs(
            model=model, dataset=dataset, feature_columns=data.get("feature_columns"), label=None, whole=False
        )
    data["input_source"] = "dataset" if dataset is not None else "synthetic"
    return data


def _inputs(params: dict[str, Any], dataset_id: Any) -> tuple[Any, ...]:
    if params.get("input_source") == "dataset" or dataset_id is not None:
        return (
            "dataset",
            str(dataset_id),
            params.get("preprocessing", "out"),
            tuple(params.get("feature_columns") or ()),
        )
    return ("synthetic", tuple(sorted((params.get("synthetic_dims") or {}).items())))


def _describe(inputs: tuple[Any, ...]) -> str:
    if inputs[0] == "synthetic":
        dims = ", ".join(f"{k}={v}" for k, v in inputs[1])
        return "synthetic tensors" + (f" ({dims})" if dims else "")
    return f"rows of data set version {inputs[1][:8]} with preprocessing {inputs[2]!r}"


def _same_inputs(baseline: Any, params: dict[str, Any], dataset: DatasetVersion | None) -> None:
    """A regression check compares like with like: the same inputs, fed the same way."""
    before = _inputs(baseline.params or {}, baseline.dataset_version_id)
    now = _inputs({**params, "input_source": "dataset" if dataset else "synthetic"}, dataset.pk if dataset else None)
    if before != now:
        raise ValidationFailed(
            f"the baseline run measured {_describe(before)} and this job would measure {_describe(now)}: "
            "a regression check needs the same inputs on both sides"
        )


def route(params: dict[str, Any], model: ModelVersion) -> str:
    targets = [(b, d, p) for b in params["backends"] for d in params["devices"] for p in params["precisions"]]
    # Profiles have their own queue: a worker takes one at a time, so no other job shares its cores.
    return require_worker_for(targets=targets, model_format=model.format, queue=PROFILE)
