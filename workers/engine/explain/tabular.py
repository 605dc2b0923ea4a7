"""Tabular explanations over the columns the user knows, not the model's input tensor.

The user's view of a row is one number per feature column: the value for a
numeric column, the category's position for a categorical one. The model's
declared preprocessing (standard scaling, one-hot) runs *inside* the
forward function, so perturbation methods mix whole user columns and a
one-hot block is attributed as one column. Gradient methods work on the
model input; :func:`model_groups` maps its columns back to user columns so
their attributions are summed per column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.explain.forward import Forward
from workers.engine.processing.spec import TabularInput

__all__ = ["TabularView", "baseline_rows", "tabular_view"]


@dataclass(frozen=True)
class TabularView:
    """The user's columns and how they become model input."""

    columns: tuple[str, ...]
    #: Column -> its categories (the code of a category is its position).
    categories: dict[str, tuple[str, ...]]
    scaling: dict[str, tuple[float, float]]
    dtype: str = "float32"

    @property
    def categorical(self) -> Array:
        return np.array([c in self.categories for c in self.columns])

    def encode(self, frame: pd.DataFrame) -> Array:
        """(rows, columns) float64 user matrix; an unknown category is an error naming it."""
        out = np.empty((len(frame), len(self.columns)))
        for j, column in enumerate(self.columns):
            if column not in frame.columns:
                raise EngineError(f"the data set has no column {column!r}")
            values = frame[column]
            if column in self.categories:
                cats = self.categories[column]
                codes = pd.Categorical(values.astype(str), categories=list(cats)).codes
                if (codes < 0).any():
                    bad = values.astype(str).to_numpy()[codes < 0][0]
                    raise EngineError(f"column {column!r} holds {bad!r}, which is not one of its categories")
                out[:, j] = codes
            else:
                out[:, j] = pd.to_numeric(values, errors="raise").to_numpy(np.float64)
        return out

    def to_model(self, z: Array) -> Array:
        """User matrix -> model input (scaled numbers, one-hot blocks in place)."""
        parts = []
        for j, column in enumerate(self.columns):
            col = z[:, j]
            if column in self.categories:
                k = len(self.categories[column])
                codes = np.clip(np.rint(col).astype(np.int64), 0, k - 1)
                parts.append(np.eye(k)[codes])
            else:
                mean, std = self.scaling.get(column, (0.0, 1.0))
                parts.append(((col - mean) / std)[:, None])
        return np.asarray(np.concatenate(parts, axis=1).astype(self.dtype))

    def model_groups(self) -> Array:
        """For each model input column, the user column it comes from."""
        ids = []
        for j, column in enumerate(self.columns):
            ids.extend([j] * (len(self.categories[column]) if column in self.categories else 1))
        return np.array(ids, dtype=np.int64)

    def forward(self, model: Forward) -> Forward:
        """A forward over user matrices: the preprocessing, then ``model``."""
        return Forward(
            lambda z: model(self.to_model(np.asarray(z, dtype=np.float64))),
            batch_size=model.batch_size,
            dtype=np.float64,
            output_names=model.output_names,
        )


def tabular_view(spec: TabularInput | None, columns: list[str]) -> TabularView:
    """From the model's processing spec, or the raw columns when it declares none."""
    if spec is None:
        return TabularView(columns=tuple(columns), categories={}, scaling={})
    return TabularView(
        columns=tuple(spec.feature_columns),
        categories={c: tuple(v) for c, v in spec.categories},
        scaling={c: (m, s) for c, m, s in spec.scaling},
        dtype=spec.dtype,
    )


def baseline_rows(
    kind: str, reference: Array, categorical: Array, *, k: int = 10, seed: int = 0
) -> tuple[Array, Array]:
    """Baseline or background rows in the user's space, with weights.

    ``zeros``: one row of zeros (category 0); ``mean`` / ``median``: one row
    (the most frequent category for categorical columns); ``kmeans``: ``k``
    cluster centres of the reference rows weighted by cluster size, each value
    snapped to the nearest value the column really takes (shap.kmeans), so a
    category stays a category.
    """
    reference = np.asarray(reference, dtype=np.float64)
    if len(reference) == 0:
        raise EngineError("the reference data set for the baseline has no rows")
    if kind == "zeros":
        return np.zeros((1, reference.shape[1])), np.ones(1)
    if kind in ("mean", "median"):
        row = reference.mean(axis=0) if kind == "mean" else np.median(reference, axis=0)
        for j in np.flatnonzero(categorical):
            values, counts = np.unique(reference[:, j], return_counts=True)
            row[j] = values[np.argmax(counts)]
        return row[None], np.ones(1)
    if kind == "kmeans":
        import shap

        k = min(k, len(np.unique(reference, axis=0)))
        np.random.seed(seed)
        summary = shap.kmeans(reference, k)
        return np.asarray(summary.data, dtype=np.float64), np.asarray(summary.weights, dtype=np.float64)
    raise EngineError(f"unknown baseline {kind!r}; use zeros, mean, median or kmeans")
