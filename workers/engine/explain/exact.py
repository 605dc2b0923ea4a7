"""Exact Shapley values over a background, for a handful of features.

The value of a coalition S at row x is the background-weighted mean of the
model with S's features from x and the others from each background row (the
interventional value KernelSHAP estimates). Every one of the ``2**M``
coalitions is evaluated, in one block per group of rows, so the result is
exact up to floating point; for a linear model it is ``w_i (x_i - E[x_i])``.
"""

from __future__ import annotations

import math

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.explain.forward import Forward
from workers.engine.explain.kernel_shap import BLOCK_ROWS, ShapValues, _normalised

__all__ = ["MAX_EXACT_FEATURES", "exact_shapley", "model_rows_exact"]

#: 2**16 coalitions per row: beyond that, sample.
MAX_EXACT_FEATURES = 16


def model_rows_exact(rows: int, features: int, background_rows: int) -> int:
    return background_rows + rows + rows * (1 << features) * background_rows


def exact_shapley(
    forward: Forward, x: Array, background: Array, *, background_weights: Array | None = None
) -> ShapValues:
    """Exact Shapley values of ``forward`` at the rows of ``x``; at most :data:`MAX_EXACT_FEATURES` features."""
    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    rows, m = x.shape
    if m > MAX_EXACT_FEATURES:
        raise EngineError(
            f"exact Shapley values need 2**{m} coalitions per row; use it for at most {MAX_EXACT_FEATURES} "
            "features (or group features), or a sampling method"
        )
    w_bg = _normalised(background_weights, len(background))
    fnull = forward(background).T @ w_bg
    fx = forward(x) if rows else np.zeros((0, len(fnull)))
    codes = np.arange(2**m)
    masks = ((codes[:, None] >> np.arange(m)[None, :]) & 1).astype(bool)  # bit i = feature i in the coalition
    n_bg = len(background)
    block = max(1, BLOCK_ROWS // (len(codes) * n_bg))
    xs = x.astype(forward.dtype)
    bg = background.astype(forward.dtype)
    size = masks.sum(axis=1)
    # Shapley weight of a coalition S (not holding i): |S|! (M - |S| - 1)! / M!
    weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])
    values = np.empty((rows, m, len(fnull)))
    for start in range(0, rows, block):
        stop = min(rows, start + block)
        synth = np.where(masks[None, :, None, :], xs[start:stop, None, None, :], bg[None, None, :, :])
        y = forward(synth.reshape(-1, m)).reshape(stop - start, len(codes), n_bg, -1)
        v = np.einsum("rcnd,n->rcd", y, w_bg)
        for i in range(m):
            without = codes[~masks[:, i]]
            with_i = without | (1 << i)
            values[start:stop, i] = np.einsum(
                "rcd,c->rd", v[:, with_i] - v[:, without], weight[size[without]], optimize=True
            )
    return ShapValues(values=values, base_values=fnull, outputs=fx, samples=len(codes))
