"""Prediction drift: the model's predicted classes on the reference and on the current data.

The model version runs on up to ``max_rows`` rows of each data set through
the one input feed every job uses; the predicted class of a row is the
model's label output where it has one (ONNX-ML classifiers), else the argmax
of its 2-D score output. The two class distributions are then compared like
a categorical column (chi-square, PSI, Jensen–Shannon) by
:func:`~workers.engine.drift.detect.prediction_drift`. This is the stand-in
for accuracy while labels have not arrived.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.classifier import _is_label, _is_proba
from workers.engine.errors import EngineError
from workers.engine.feed import input_batches
from workers.engine.inference.registry import get_backend_class
from workers.engine.types import DatasetRef, ModelSpec

__all__ = ["predicted_classes"]


def predicted_classes(
    model: ModelSpec,
    data: DatasetRef,
    *,
    max_rows: int,
    backend: str = "onnxruntime",
    device: str = "cpu",
    batch_size: int = 1024,
    feature_columns: list[str] | None = None,
    processing: dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
) -> Array:
    backend_cls = get_backend_class(backend)
    if not backend_cls.supports(model):
        raise EngineError(f"backend {backend!r} cannot run {model.format!r} models")
    with backend_cls(model, device=device) as runner:
        outputs = runner.output_specs
        label = next((o.name for o in outputs if _is_label(o)), None)
        proba = next((o.name for o in outputs if _is_proba(o)), None)
        key = label if label is not None else proba
        if key is None:
            raise EngineError("prediction drift needs a classifier: a label output or a 2-D score output")
        parts = []
        for inputs in input_batches(
            model,
            data,
            batch_size=batch_size,
            max_rows=max_rows,
            feature_columns=feature_columns,
            processing=processing,
            tokenizer_path=tokenizer_path,
        ):
            out = runner.predict(inputs)
            scores = np.asarray(out[key])
            parts.append(scores.reshape(-1) if key == label else scores.argmax(axis=1))
    if not parts:
        raise EngineError("the data set has no rows to predict")
    return np.concatenate(parts)
