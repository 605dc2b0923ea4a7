"""The evaluation pipeline: stream a data set through a model and score it.

Only the label, the predictions and (for classifiers) the class scores are
kept in memory; features are read, converted and dropped batch by batch, so
the data set itself can be far larger than the worker's memory.

With a :class:`ProcessingSpec` the model input is built by the spec (tabular
columns, images from an ImageFolder zip, or tokenized text) and the outputs
go through :func:`workers.engine.processing.post.apply_output` before
scoring, so a logits model with a softmax and a label map is scored on
probabilities and on the data set's own label strings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.classifier import ClassifierHead
from workers.engine.datasets import count_rows, iter_batches
from workers.engine.errors import EngineError
from workers.engine.inference.base import Backend
from workers.engine.inference.registry import get_backend_class
from workers.engine.labels import preview
from workers.engine.metrics import regression_metrics
from workers.engine.metrics.intervals import wilson_interval
from workers.engine.processing.pipeline import (
    InputFeed,
    OutputReader,
    check_data_format,
    input_columns,
    predict_in_chunks,
    regression_output,
    spec_frames,
)
from workers.engine.processing.spec import InputSpec, OutputSpec, ProcessingSpec
from workers.engine.tabular import list_names
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback, TensorSpec

__all__ = ["EvaluationResult", "evaluate", "RESIDUAL_SAMPLE"]

#: Most (y_true, y_pred) pairs kept for a regression residual plot.
RESIDUAL_SAMPLE = 2000
TASKS = ("classification", "regression")

_INPUT_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
    "string": object,
}


@dataclass
class EvaluationResult:
    """Scores of one model on one data set, ready to store as JSON via :meth:`to_dict`."""

    task: str
    rows: int
    metrics: dict[str, Any]
    backend: dict[str, Any]
    batch_size: int
    feature_columns: list[str]
    label_column: str
    duration_s: float
    labels: list[Any] | None = None
    confusion_matrix: list[list[int]] | None = None
    per_class: dict[str, dict[str, Any]] | None = None
    residuals: dict[str, list[float]] | None = None
    #: Where the class order came from: "parameter", "model" or "data".
    labels_source: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; keys that do not apply to the task are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def evaluate(
    model: ModelSpec,
    data: DatasetRef,
    *,
    task: str,
    batch_size: int = 256,
    feature_columns: list[str] | None = None,
    class_labels: list[Any] | None = None,
    positive_label: Any = None,
    backend: str = "onnxruntime",
    device: str = "cpu",
    progress: ProgressCallback | None = None,
    processing: ProcessingSpec | None = None,
    tokenizer_path: str | None = None,
    backend_options: dict[str, Any] | None = None,
) -> EvaluationResult:
    """Run ``model`` over every row of ``data`` and compute task metrics.

    Parameters
    ----------
    model, data:
        The model file and the data set; ``data.label_column`` is required.
    task:
        ``"classification"`` or ``"regression"``.
    batch_size:
        Rows per inference call.
    feature_columns:
        Columns fed to the model, in order; default: every column but the
        label, in data set order.
    class_labels:
        Class order of the model's probability columns. Default: the labels
        of the model's ONNX-ML classifier node, else the sorted labels seen in
        the data and the predictions.
    positive_label:
        For binary problems, the class scored by precision/recall/F1 and AUC;
        default: the last of the sorted labels.
    backend, device:
        Which runtime runs the model, and where.
    progress:
        Called as ``progress(rows_done, rows_total)`` after every batch; may
        raise :class:`Cancelled` to stop.
    processing:
        The model version's processing spec. Its input part decides the
        feature columns (tabular), reads images from an ``"imagefolder"``
        data set, or tokenizes a text column; its output part turns raw
        outputs into scores and labels (its label map replaces
        ``class_labels``; for two classes the second, whose score a
        threshold tests, is the default ``positive_label``), and ``top_k``
        adds ``top_<k>_accuracy``.
    tokenizer_path:
        The model version's ``tokenizer.json``, for a text input spec.

    Raises
    ------
    EngineError
        (permanent) when the model's signature does not fit the data (inputs,
        feature count, missing values, unknown labels), plus whatever the
        backend and the data set reader raise.
    """
    started = time.perf_counter()
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
    total = count_rows(data)

    backend_cls = get_backend_class(backend)
    if not backend_cls.supports(model):
        raise EngineError(f"backend {backend!r} cannot run {model.format!r} models")
    with backend_cls(model, device=device, options=backend_options) as runner:
        feed: _Feed | InputFeed = (
            _Feed.for_model(runner, features) if spec_input is None else InputFeed(runner, spec_input, tokenizer_path)
        )
        classify = task == "classification"
        reader = OutputReader(spec_output) if classify and spec_output is not None else None
        head = ClassifierHead(runner, model, class_labels, label) if classify and reader is None else None
        out_name = "" if classify else _regression_output(runner.output_specs, spec_output)
        truth: list[np.ndarray] = []
        predicted: list[np.ndarray] = []
        missing = _MissingTally(features, label)
        done = 0
        for frame in _batches(data, batch_size, features + [label], label, classify, spec_input):
            missing.add(frame, done)
            if not missing:  # once a value is missing, only count the rest
                outputs = feed.run(frame, done)
                if reader is not None:
                    outputs = reader.read(outputs, frame[label].to_numpy())
                    if head is None:  # the class count is known from the first batch
                        head = ClassifierHead(  # type: ignore[arg-type]
                            reader, model, reader.class_labels, label, from_model=False
                        )
                        head.source = "processing"
                if head is not None:
                    head.add(outputs, frame[label].to_numpy())
                else:
                    values = regression_output(outputs, spec_output, out_name) if spec_output else outputs[out_name]
                    truth.append(_numeric_labels(frame[label].to_numpy(), label))
                    predicted.append(_regression_values(values, out_name, len(frame)))
            done += len(frame)
            if progress is not None:
                progress(done, max(total, done))
        missing.raise_if_any()
        if done == 0:
            raise EngineError("the data set has no rows")
        description = runner.describe()

    common: dict[str, Any] = {
        "task": task,
        "rows": done,
        "backend": description,
        "batch_size": batch_size,
        "feature_columns": features,
        "label_column": label,
        "duration_s": 0.0,
    }
    if head is None:
        y_true, y_pred = np.concatenate(truth), np.concatenate(predicted)
        result = EvaluationResult(
            metrics=regression_metrics(y_true, y_pred), residuals=_residual_sample(y_true, y_pred), **common
        )
    else:
        assert head is not None
        if reader is not None and positive_label is None and len(reader.class_labels or []) == 2:
            positive_label = (reader.class_labels or [])[1]  # the column a threshold tests
        scores = head.score(positive_label)
        if reader is not None:
            top_k = reader.top_k_metrics()
            scores.update(top_k)
            for name in top_k:
                scores["intervals"][name] = wilson_interval(*reader.top_k_counts())
        result = EvaluationResult(
            labels=scores.pop("labels"),
            confusion_matrix=scores.pop("confusion_matrix"),
            per_class=scores.pop("per_class"),
            metrics=scores,
            labels_source=head.source,
            warnings=head.warnings,
            **common,
        )
    result.duration_s = round(time.perf_counter() - started, 4)
    return result


# ------------------------------------------------------------------ inputs


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


def _batches(
    data: DatasetRef, batch_size: int, columns: list[str], label: str, classify: bool, spec: InputSpec | None
) -> Iterator[pd.DataFrame]:
    # CSV types are guessed per batch; reading class labels as text and
    # converting them once keeps "1" and 1 from meeting.
    text = (label,) if classify else ()
    if spec is not None:
        return spec_frames(data, batch_size, columns, spec, text_columns=text)
    return iter_batches(data, batch_size, columns, dtypes={label: "string"} if text and data.format == "csv" else None)


@dataclass
class _Feed:
    """Turns a batch of rows into the model's single 2-D input and runs it."""

    runner: Backend
    spec: TensorSpec
    dtype: Any
    features: list[str]
    fixed_rows: int | None

    @classmethod
    def for_model(cls, runner: Backend, features: list[str]) -> _Feed:
        inputs = runner.input_specs
        described = "; ".join(f"{s.name} {s.dtype}{list(s.shape) if s.shape else '[?]'}" for s in inputs)
        if len(inputs) != 1:
            raise EngineError(f"the model must take exactly one input, a rows x features table; it takes: {described}")
        spec = inputs[0]
        # Unknown rank is let through: the runtime will say if 2-D is wrong.
        if spec.shape is not None and len(spec.shape) != 2:
            raise EngineError(f"the model input must be 2-D (rows x features); it has: {described}")
        if spec.dtype not in _INPUT_DTYPES:
            raise EngineError(f"the model input {spec.name!r} has type {spec.dtype}, which tabular data cannot feed")
        width = spec.shape[1] if spec.shape else None
        if isinstance(width, int) and width != len(features):
            raise EngineError(
                f"the model input {spec.name!r} takes {width} features but {len(features)} feature columns "
                f"were given ({list_names(features)})"
            )
        rows = spec.shape[0] if spec.shape else None
        return cls(runner, spec, _INPUT_DTYPES[spec.dtype], features, rows if isinstance(rows, int) else None)

    def run(self, frame: pd.DataFrame, offset: int = 0) -> dict[str, np.ndarray]:
        return predict_in_chunks(self.runner, {self.spec.name: self._matrix(frame[self.features])}, self.fixed_rows)

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        if self.dtype is object:
            return frame.astype(str).to_numpy(dtype=object)
        try:
            x = frame.to_numpy(dtype=self.dtype)
        except (ValueError, TypeError):
            x = None
        if x is not None and (np.dtype(self.dtype).kind not in "iu" or _integral(frame)):
            return np.ascontiguousarray(x)
        for column in frame.columns:
            values = frame[column]
            numeric = pd.to_numeric(values, errors="coerce")
            bad = values[numeric.isna() | ((numeric % 1 != 0) & (np.dtype(self.dtype).kind in "iu"))]
            if len(bad):
                raise EngineError(
                    f"column {column!r} holds values the model input {self.spec.name!r} ({self.spec.dtype}) "
                    f"cannot take, e.g. {bad.iloc[0]!r}"
                )
        raise EngineError(f"the feature columns cannot be converted to {self.spec.dtype}")


def _integral(frame: pd.DataFrame) -> bool:
    floats = frame.select_dtypes(include="floating").to_numpy()
    return bool((floats == np.round(floats)).all())


class _MissingTally:
    """Counts missing and infinite values per column; after the first one the run only counts.

    An infinite feature is invalid input just like a missing one: the model
    would turn it into an infinite or NaN prediction and every error metric
    into inf.
    """

    def __init__(self, features: list[str], label: str) -> None:
        self.columns = features + [label]
        self.label = label
        self.counts: dict[tuple[str, str], int] = {}
        self.first_row: dict[tuple[str, str], int] = {}

    def add(self, frame: pd.DataFrame, offset: int) -> None:
        selected = frame if list(frame.columns) == self.columns else frame[self.columns]
        self._tally("missing", self.columns, selected.isna().to_numpy(), offset)
        numeric = selected.select_dtypes(include="number")
        if numeric.shape[1]:
            self._tally("infinite", list(numeric.columns), np.isinf(numeric.to_numpy(dtype=np.float64)), offset)

    def _tally(self, what: str, columns: list[str], bad: np.ndarray, offset: int) -> None:
        if not bad.any():
            return
        for j in np.flatnonzero(bad.any(axis=0)):
            key = (columns[j], what)
            self.counts[key] = self.counts.get(key, 0) + int(bad[:, j].sum())
            self.first_row.setdefault(key, offset + int(np.argmax(bad[:, j])) + 1)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def raise_if_any(self) -> None:
        if not self.counts:
            return
        parts = [
            f"{'label ' if name == self.label else ''}column {name!r} has {n} {what} "
            f"value{'s' if n != 1 else ''} (first in data row {self.first_row[(name, what)]})"
            for (name, what), n in self.counts.items()
        ]
        raise EngineError(
            "; ".join(parts) + "; the model cannot take missing inputs or infinite ones, and rows without a "
            "label cannot be scored: fill or drop those rows and upload the data set again"
        )


# ----------------------------------------------------------------- outputs


def _regression_output(outputs: tuple[TensorSpec, ...], spec: OutputSpec | None = None) -> str:
    if spec is not None and spec.output_name is not None:
        return spec.output_name
    floats = [o for o in outputs if o.dtype.startswith(("float", "bfloat"))]
    if len(outputs) == 1 and floats:
        return outputs[0].name
    if len(floats) == 1:
        return floats[0].name
    described = "; ".join(f"{o.name} {o.dtype}" for o in outputs)
    raise EngineError(f"a regression model needs exactly one floating-point output; it has: {described}")


def _regression_values(values: np.ndarray, name: str, rows: int) -> np.ndarray:
    if values.size != rows or values.shape[0] != rows:
        raise EngineError(f"regression output {name!r} has shape {values.shape}; expected one value per row")
    return values.reshape(rows).astype(np.float64)


def _numeric_labels(values: np.ndarray, label: str) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        examples = preview(np.unique(values[bad].astype(str)))
        raise EngineError(f"label column {label!r} holds values that are not numbers: {examples}")
    return numbers


def _residual_sample(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, list[float]]:
    n = y_true.size
    # Evenly spaced rows: deterministic, and it spans the whole file.
    idx = np.arange(n) if n <= RESIDUAL_SAMPLE else np.linspace(0, n - 1, RESIDUAL_SAMPLE).round().astype(np.int64)
    return {"y_true": y_true[idx].tolist(), "y_pred": y_pred[idx].tolist()}
