"""Setting up an evaluation: which columns, which label, which task, before any row is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.engine.errors import EngineError
from workers.engine.metrics.intervals import ANALYTIC_ROWS
from workers.engine.processing.pipeline import check_data_format, input_columns
from workers.engine.processing.spec import InputSpec, OutputSpec, ProcessingSpec
from workers.engine.tabular import list_names
from workers.engine.types import DatasetRef

__all__ = ["TASKS", "Plan", "feed_backend_options", "plan_evaluation"]

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Plan:
    """The checked parameters of one evaluation."""

    task: str
    batch_size: int
    label: str
    features: list[str]
    class_labels: list[Any] | None
    positive_label: Any
    spec_input: InputSpec | None
    spec_output: OutputSpec | None
    #: Above this many rows the metrics' intervals are analytic rather than bootstrapped (``None``: never).
    analytic_above: int | None = ANALYTIC_ROWS

    @property
    def classify(self) -> bool:
        return self.task == "classification"


def plan_evaluation(
    data: DatasetRef,
    *,
    task: str,
    batch_size: int,
    feature_columns: list[str] | None,
    class_labels: list[Any] | None,
    positive_label: Any,
    processing: ProcessingSpec | None,
    analytic_above: int | None = ANALYTIC_ROWS,
) -> Plan:
    """Check the parameters against the data set's columns; raise a permanent :class:`EngineError` if wrong."""
    if task not in TASKS:
        raise EngineError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if batch_size < 1:
        raise EngineError(f"batch_size must be at least 1, got {batch_size}")
    label = _label_column(data)
    spec_input = processing.input if processing is not None else None
    spec_output = processing.output if processing is not None else None
    features = _input_columns(data, label, feature_columns, spec_input)
    if spec_output is not None and spec_output.labels is not None and class_labels is not None:
        raise EngineError("class labels come from the processing spec's label map; do not pass class_labels too")
    return Plan(
        task, batch_size, label, features, class_labels, positive_label, spec_input, spec_output, analytic_above
    )


def feed_backend_options(backend: str, options: dict[str, Any] | None) -> dict[str, Any] | None:
    """The backend's options for a job that reads data between calls: ONNX Runtime's pools do not spin.

    Spinning threads would take the cores the data reader needs between
    inference calls; an explicit ``allow_spinning`` is kept.
    """
    if backend != "onnxruntime":
        return options
    return {"allow_spinning": False, **(options or {})}


def _label_column(data: DatasetRef) -> str:
    label = data.label_column
    if not label:
        raise EngineError("the data set has no label column set; choose one before evaluating")
    if data.columns and label not in data.columns:
        raise EngineError(
            f"label column {label!r} is not in the data set; columns are: {list_names(list(data.columns))}"
        )
    return label


def _feature_columns(data: DatasetRef, label: str, chosen: list[str] | None) -> list[str]:
    if chosen is None:
        features = [c for c in data.columns if c != label]
    else:
        features = list(chosen)
        if label in features:
            raise EngineError(f"the label column {label!r} cannot also be a feature")
        unknown = [c for c in features if c not in data.columns]
        if unknown:
            raise EngineError(f"feature columns not in the data set: {list_names(unknown)}")
        if len(set(features)) != len(features):
            raise EngineError("feature columns are listed more than once")
    if not features:
        raise EngineError("no feature columns: the data set has only the label column")
    return features


def _input_columns(data: DatasetRef, label: str, chosen: list[str] | None, spec: InputSpec | None) -> list[str]:
    check_data_format(spec, data)
    if spec is None:
        return _feature_columns(data, label, chosen)
    columns = input_columns(spec)
    if chosen is not None and list(chosen) != columns:
        raise EngineError(
            f"feature_columns ({list_names(list(chosen))}) differ from the columns the processing spec reads "
            f"({list_names(columns)}); leave feature_columns out"
        )
    return _feature_columns(data, label, columns)
