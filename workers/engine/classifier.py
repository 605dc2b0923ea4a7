"""Reading a classifier's outputs: predicted labels, class scores and their order."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.formats import inspect_model
from workers.engine.labels import (
    coerce_labels,
    infer_label_kind,
    kind_of_dtype,
    preview,
)
from workers.engine.metrics import classification_metrics, to_python
from workers.engine.metrics.intervals import ANALYTIC_ROWS
from workers.engine.types import ModelSpec, TensorSpec

__all__ = ["ClassifierHead"]


class DescribesOutputs(Protocol):
    """What the head reads outputs from: a loaded backend, or the processing spec's output reader."""

    @property
    def output_specs(self) -> tuple[TensorSpec, ...]: ...


class ClassifierHead:
    """Collects a classifier's outputs batch by batch and scores them at the end.

    Parameters
    ----------
    runner:
        The loaded backend; its output specs decide which output holds
        labels (int/str, one per row) and which holds class scores (2-D float,
        or a ZipMap sequence of maps).
    model:
        The model file, inspected for ONNX-ML class labels when
        ``class_labels`` is not given.
    class_labels:
        Class order of the score columns, as the caller declared it.
    label_column:
        The data set's label column, for messages.
    """

    def __init__(
        self,
        runner: DescribesOutputs,
        model: ModelSpec,
        class_labels: list[Any] | None,
        label_column: str,
        *,
        from_model: bool = True,
    ) -> None:
        self.label_column = label_column
        self._runner = runner
        outputs = runner.output_specs
        self.label_output = next((o.name for o in outputs if _is_label(o)), None)
        self.proba_output = next((o.name for o in outputs if _is_proba(o)), None)
        if self.label_output is None and self.proba_output is None:
            described = "; ".join(f"{o.name} {o.dtype}{list(o.shape) if o.shape else ''}" for o in outputs)
            raise EngineError(
                "a classifier needs a label output (integers or strings, one per row) or a 2-D "
                f"probability output; the model has: {described}"
            )
        self.warnings: list[str] = []
        found = inspect_model(model.path, model.format).class_labels if from_model else None
        declared: list[Any] | None
        if class_labels is not None:
            declared, self.source = list(class_labels), "parameter"
        else:
            declared, self.source = (list(found), "model") if found else (None, "data")
        label_dtype = next((o.dtype for o in outputs if o.name == self.label_output), None)
        self.kind = kind_of_dtype(label_dtype) if label_dtype else (infer_label_kind(declared) if declared else None)
        self.labels: list[Any] | None = None
        #: The class of each score column as the model declares it (ONNX-ML
        #: classlabels); ``None`` when only the position says which is which.
        self.column_labels: list[Any] | None = None
        if declared is not None:
            assert self.kind is not None
            self.labels = self._distinct(declared, "the class labels")
            if found:
                self.column_labels = self._distinct(list(found), "the model's class labels")
                if set(self.column_labels) != set(self.labels):
                    raise EngineError(
                        f"the model declares its classes as {preview(self.column_labels)}; class_labels "
                        f"({preview(self.labels)}) must name the same classes, in any order"
                    )
        self._truth: list[Array] = []
        self._pred: list[Array] = []
        self._proba: list[Array] = []
        self.scored: tuple[Array, Array, Array | None, list[Any]] | None = None

    def add(self, outputs: dict[str, Array], truth: Array) -> None:
        """Keep one batch's true labels, predicted labels and scores."""
        if self.kind is not None:
            # Converting now stores compact int64 rather than text, and a
            # label mismatch stops the run at the first batch, not the last.
            truth = coerce_labels(truth, self.kind, f"label column {self.label_column!r}")
            if self.labels is not None:
                self._check_known(truth, self.labels)
        self._truth.append(truth)
        if self.label_output is not None:
            self._pred.append(outputs[self.label_output].reshape(-1))
        if self.proba_output is not None:
            scores = outputs[self.proba_output]
            self._proba.append(scores.reshape(-1, 1) if scores.ndim == 1 else scores)

    def score(self, positive_label: Any = None, *, analytic_above: int | None = ANALYTIC_ROWS) -> dict[str, Any]:
        """Align labels and return :func:`classification_metrics` for everything collected."""
        truth = np.concatenate(self._truth)
        kind = self.kind or infer_label_kind(np.unique(truth.astype(str)))
        y_true = coerce_labels(truth, kind, f"label column {self.label_column!r}")
        y_pred = coerce_labels(np.concatenate(self._pred), kind, "the model's labels") if self._pred else None
        proba = np.concatenate(self._proba) if self._proba else None

        labels = self.labels
        if labels is None:
            seen = set(np.unique(y_true).tolist())
            if y_pred is not None:
                seen |= set(np.unique(y_pred).tolist())
            labels = sorted(seen)
            if proba is not None and proba.shape[1] not in (len(labels), 1):
                if y_pred is None:
                    raise EngineError(
                        f"the model's probability output has {proba.shape[1]} columns but the data and "
                        f"predictions hold {len(labels)} classes; pass class_labels to say which column is which"
                    )
                self.warnings.append(
                    f"ROC AUC not computed: the probability output has {proba.shape[1]} columns but "
                    f"{len(labels)} classes were seen and the model does not declare its class order"
                )
                proba = None
        if len(labels) < 2:
            raise EngineError(f"classification needs at least two classes; found only {preview(labels)}")
        if proba is not None:
            proba = self._check_proba(self._by_label(proba, labels, kind), labels)
        if y_pred is None:
            assert proba is not None
            y_pred = np.asarray(labels, dtype=object if kind == "str" else np.int64)[np.argmax(proba, axis=1)]

        known = set(labels)
        self._check_known(y_true, labels)
        strange = sorted(set(np.unique(y_pred).tolist()) - known)
        if strange:
            raise EngineError(f"the model predicted labels outside its declared classes: {preview(strange)}")
        positive = None
        if positive_label is not None:
            positive = to_python(coerce_labels([positive_label], kind, "positive_label")[0])
            if positive not in known:
                raise EngineError(f"positive_label {positive!r} is not one of the classes: {preview(labels)}")
        #: What was scored, aligned: for the curves, calibration and slices drawn from the same rows.
        self.scored = (y_true, y_pred, proba, labels)
        return classification_metrics(y_true, y_pred, proba, labels, positive, analytic_above=analytic_above)

    def _distinct(self, values: list[Any], what: str) -> list[Any]:
        assert self.kind is not None
        labels = [to_python(v) for v in coerce_labels(values, self.kind, what)]
        if len(set(labels)) != len(labels):
            raise EngineError(f"{what} repeat a value: {preview(labels)}")
        return labels

    def _by_label(self, proba: Array, labels: list[Any], kind: str) -> Array:
        """Put the score columns in ``labels`` order, reading each by the class it belongs to.

        A map output (ZipMap) names its columns itself; a tensor output's
        columns are the model's declared classes in declared order. Only
        when the model declares nothing does position decide.
        """
        keys = getattr(self._runner, "output_keys", {}).get(self.proba_output)
        columns = (
            [to_python(v) for v in coerce_labels(list(keys), kind, "the model's score keys")]
            if keys is not None
            else self.column_labels
        )
        if columns is None or (keys is None and proba.shape[1] != len(columns)):
            return proba
        where = {c: i for i, c in enumerate(columns)}
        missing = [label for label in labels if label not in where]
        if missing or len(columns) != len(labels):
            raise EngineError(
                f"the model's scores are for the classes {preview(columns)}, which do not match the class "
                f"labels {preview(labels)}"
            )
        order = [where[label] for label in labels]
        return proba if order == list(range(len(labels))) else proba[:, order]

    def _check_known(self, y_true: Array, labels: list[Any]) -> None:
        unknown = sorted(set(np.unique(y_true).tolist()) - set(labels))
        if unknown:
            raise EngineError(
                f"label column {self.label_column!r} holds values the model does not know: {preview(unknown)}; "
                f"the model's classes are: {preview(labels)}"
            )

    def _check_proba(self, proba: Array, labels: list[Any]) -> Array:
        if proba.shape[1] == 1 and len(labels) == 2:
            # A single sigmoid column is the score of the second class.
            p = proba[:, 0].astype(np.float64)
            return np.column_stack([1.0 - p, p])
        if proba.shape[1] != len(labels):
            raise EngineError(
                f"the probability output {self.proba_output!r} has {proba.shape[1]} columns but there are "
                f"{len(labels)} class labels ({preview(labels)})"
            )
        return proba


def _is_label(spec: TensorSpec) -> bool:
    if kind_of_dtype(spec.dtype) is None:
        return False
    return spec.shape is None or len(spec.shape) == 1 or (len(spec.shape) == 2 and spec.shape[1] == 1)


def _is_proba(spec: TensorSpec) -> bool:
    if spec.dtype.startswith("seq(map("):
        return True  # skl2onnx's ZipMap; the backend turns it into a 2-D array
    return spec.dtype.startswith(("float", "bfloat")) and spec.shape is not None and len(spec.shape) == 2
