"""Regression metrics: MAE, RMSE and R²."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.metrics.intervals import ANALYTIC_ROWS, DEFAULT_RESAMPLES, DEFAULT_SEED
from workers.engine.metrics.uncertainty import regression_intervals

__all__ = ["regression_metrics"]


def regression_metrics(
    y_true: Sequence[float] | Array,
    y_pred: Sequence[float] | Array,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    analytic_above: int | None = ANALYTIC_ROWS,
) -> dict[str, Any]:
    """Mean absolute error, root mean squared error and R² of ``y_pred``.

    R² = 1 − SS_res / SS_tot. With a constant ``y_true`` SS_tot is 0 and R²
    is undefined: it is ``None`` and flagged, where scikit-learn's default
    ``force_finite=True`` would report 1.0 or 0.0.

    ``resamples`` and ``seed`` set the bootstrap behind the intervals
    (``resamples=0`` leaves them out); above ``analytic_above`` rows the
    intervals are normal-theory ones instead (see
    :mod:`workers.engine.metrics.analytic`; ``None`` always bootstraps).

    Returns
    -------
    dict
        ``{"mae", "rmse", "r2", "support", "flags", "intervals",
        "interval_method"}``; ``flags`` maps a metric to why it is undefined
        or degenerate.
    """
    yt = np.asarray(y_true, dtype=np.float64).ravel()
    yp = np.asarray(y_pred, dtype=np.float64).ravel()
    if yt.size == 0:
        raise ValueError("no samples to score")
    if yt.size != yp.size:
        raise ValueError(f"y_true has {yt.size} values but y_pred has {yp.size}")
    err = yt - yp
    ss_res = float(np.dot(err, err))
    centred = yt - yt.mean()
    ss_tot = float(np.dot(centred, centred))
    flags: dict[str, str] = {}
    r2: float | None
    if ss_tot == 0.0:
        r2 = None
        flags["r2"] = (
            f"undefined: the target is constant (every value is {yt[0]:g}), so R² = 1 − SS_res/SS_tot divides by zero"
        )
    else:
        r2 = 1.0 - ss_res / ss_tot
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt(ss_res / yt.size)),
        "r2": r2,
        "support": int(yt.size),
        "flags": flags,
        **regression_intervals(err, yt, resamples=resamples, seed=seed, analytic_above=analytic_above),
    }
