"""What an evaluation returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from workers.engine.arrays import Array

__all__ = ["RESIDUAL_SAMPLE", "EvaluationResult", "residual_sample"]

#: Most (y_true, y_pred) pairs kept for a regression residual plot.
RESIDUAL_SAMPLE = 2000


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
    #: ROC and precision-recall curves per class (binary: the positive class), areas exact, points bounded.
    curves: dict[str, Any] | None = None
    #: Reliability diagram, Brier score and expected calibration error.
    calibration: dict[str, Any] | None = None
    #: Binary: precision, recall, F1 and false positive rate by threshold, the operating point marked.
    threshold_sweep: dict[str, Any] | None = None
    #: Metrics per slice of each column named in ``slice_columns``.
    slices: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; keys that do not apply to the task are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def residual_sample(y_true: Array, y_pred: Array) -> dict[str, list[float]]:
    n = y_true.size
    # Evenly spaced rows: deterministic, and it spans the whole file.
    idx = np.arange(n) if n <= RESIDUAL_SAMPLE else np.linspace(0, n - 1, RESIDUAL_SAMPLE).round().astype(np.int64)
    return {"y_true": y_true[idx].tolist(), "y_pred": y_pred[idx].tolist()}
