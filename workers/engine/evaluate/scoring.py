"""Scoring an evaluation: outputs and labels are collected block by block and scored once at the end."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.classifier import ClassifierHead
from workers.engine.errors import EngineError
from workers.engine.evaluate.breakdown import classification_breakdown, regression_breakdown
from workers.engine.evaluate.result import EvaluationResult, residual_sample
from workers.engine.evaluate.setup import Plan
from workers.engine.labels import coerce_labels, preview
from workers.engine.metrics import regression_metrics
from workers.engine.metrics.intervals import wilson_interval
from workers.engine.processing.pipeline import OutputReader, regression_output
from workers.engine.types import ModelSpec, Runner, TensorSpec

__all__ = ["ClassificationScorer", "RegressionScorer", "Scorer", "make_scorer"]


class ClassificationScorer:
    """Class labels and scores through a :class:`ClassifierHead` (after the spec's output part, if any)."""

    def __init__(self, runner: Runner, model: ModelSpec, plan: Plan) -> None:
        self.plan = plan
        self.model = model
        #: Slice column -> every scored row's value, set before :meth:`result`.
        self.slices: dict[str, Array] | None = None
        self.reader = OutputReader(plan.spec_output) if plan.spec_output is not None else None
        self.head: ClassifierHead | None = (
            ClassifierHead(runner, model, plan.class_labels, plan.label) if self.reader is None else None  # type: ignore[arg-type]
        )

    def prepare(self, labels: Array) -> Array:
        """A block's labels in the model's kind, checked before the block runs: a bad label stops the job early."""
        head = self.head
        if head is None or head.kind is None:
            return labels
        labels = _coerce_distinct(labels, head.kind, f"label column {self.plan.label!r}")
        if head.labels is not None:
            head._check_known(labels, head.labels)
        return labels

    def add(self, outputs: dict[str, Array], labels: Array) -> None:
        if self.reader is not None:
            outputs = self.reader.read(outputs, labels)
            if self.head is None:  # the class count is known from the first block
                self.head = ClassifierHead(
                    self.reader, self.model, self.reader.class_labels, self.plan.label, from_model=False
                )
                self.head.source = "processing"
        assert self.head is not None
        if self.head.kind is not None:
            labels = _coerce_distinct(labels, self.head.kind, f"label column {self.plan.label!r}")
        self.head.add(outputs, labels)

    def result(self, common: dict[str, Any]) -> EvaluationResult:
        head = self.head
        assert head is not None
        positive_label = self.plan.positive_label
        reader = self.reader
        if reader is not None and positive_label is None and len(reader.class_labels or []) == 2:
            positive_label = (reader.class_labels or [])[1]  # the column a threshold tests
        scores = head.score(positive_label, analytic_above=self.plan.analytic_above)
        if reader is not None:
            top_k = reader.top_k_metrics()
            scores.update(top_k)
            for name in top_k:
                scores["intervals"][name] = wilson_interval(*reader.top_k_counts())
        assert head.scored is not None
        y_true, y_pred, proba, labels = head.scored
        spec = self.plan.spec_output
        breakdown = classification_breakdown(
            y_true,
            y_pred,
            proba,
            labels,
            scores.get("positive_label"),
            threshold=getattr(spec, "threshold", None) if spec is not None else None,
            slices=self.slices,
        )
        return EvaluationResult(
            labels=scores.pop("labels"),
            confusion_matrix=scores.pop("confusion_matrix"),
            per_class=scores.pop("per_class"),
            metrics=scores,
            labels_source=head.source,
            warnings=head.warnings,
            **breakdown,
            **common,
        )


class RegressionScorer:
    """One floating-point output per row against a numeric label."""

    def __init__(self, runner: Runner, plan: Plan, outputs: tuple[TensorSpec, ...]) -> None:
        self.plan = plan
        self.out_name = regression_output_name(outputs, plan.spec_output)
        self.truth: list[Array] = []
        self.predicted: list[Array] = []
        self.slices: dict[str, Array] | None = None

    def prepare(self, labels: Array) -> Array:
        """A block's targets as float64, checked before the block runs."""
        return _numeric_labels(labels, self.plan.label)

    def add(self, outputs: dict[str, Array], labels: Array) -> None:
        spec = self.plan.spec_output
        values = regression_output(outputs, spec, self.out_name) if spec else outputs[self.out_name]
        self.truth.append(labels)
        self.predicted.append(_regression_values(values, self.out_name, len(labels)))

    def result(self, common: dict[str, Any]) -> EvaluationResult:
        y_true, y_pred = np.concatenate(self.truth), np.concatenate(self.predicted)
        return EvaluationResult(
            metrics=regression_metrics(y_true, y_pred, analytic_above=self.plan.analytic_above),
            residuals=residual_sample(y_true, y_pred),
            **regression_breakdown(y_true, y_pred, self.slices),
            **common,
        )


Scorer = ClassificationScorer | RegressionScorer


def make_scorer(runner: Any, model: ModelSpec, plan: Plan) -> Scorer:
    if plan.classify:
        return ClassificationScorer(runner, model, plan)
    return RegressionScorer(runner, plan, runner.output_specs)


def regression_output_name(outputs: tuple[TensorSpec, ...], spec: Any = None) -> str:
    if spec is not None and spec.output_name is not None:
        return str(spec.output_name)
    floats = [o for o in outputs if o.dtype.startswith(("float", "bfloat"))]
    if len(outputs) == 1 and floats:
        return outputs[0].name
    if len(floats) == 1:
        return floats[0].name
    described = "; ".join(f"{o.name} {o.dtype}" for o in outputs)
    raise EngineError(f"a regression model needs exactly one floating-point output; it has: {described}")


def _coerce_distinct(labels: Array, kind: str, what: str) -> Array:
    """:func:`coerce_labels`, converting each distinct value once (a label column holds few)."""
    if labels.dtype.kind in "iub":
        return coerce_labels(labels, kind, what)
    codes, uniques = pd.factorize(labels, use_na_sentinel=False)
    return np.asarray(coerce_labels(np.asarray(uniques, dtype=object), kind, what)[codes])


def _regression_values(values: Array, name: str, rows: int) -> Array:
    if values.size != rows or values.shape[0] != rows:
        raise EngineError(f"regression output {name!r} has shape {values.shape}; expected one value per row")
    return values.reshape(rows).astype(np.float64)


def _numeric_labels(values: Array, label: str) -> Array:
    if values.dtype.kind == "f" and np.isfinite(values).all():
        return values.astype(np.float64, copy=False)
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        examples = preview(np.unique(values[bad].astype(str)))
        raise EngineError(f"label column {label!r} holds values that are not numbers: {examples}")
    return np.asarray(numbers)
