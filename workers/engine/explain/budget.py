"""What an explanation will cost before it starts, and a time budget turned into a sample count.

:func:`estimate_model_rows` counts the model rows a method will evaluate
(shown to the user before the job starts, and recorded beside what it
actually evaluated). :func:`samples_for_time` measures the model's speed on
a pilot block and picks the largest KernelSHAP budget that fits the time
given; :func:`sampling_error` reports the error that budget leaves: the
spread of the attributions over independent seeds on a pilot row.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.explain.coalitions import sample_budget
from workers.engine.explain.forward import Forward
from workers.engine.explain.kernel_shap import kernel_shap

__all__ = ["estimate_model_rows", "sampling_error", "samples_for_time"]


def estimate_model_rows(
    method: str, params: Any, *, rows: int, features: int, background_rows: int, windows: int | None = None
) -> int:
    """Model rows (forward evaluations, one per input row) ``method`` needs for ``rows`` rows over ``features`` features.

    Gradient methods count one forward (and one backward) pass per row per step.
    """
    m, n = features, background_rows
    p = params
    if method in ("kernel_shap", "shap_kernel"):
        return n + 2 * rows + rows * sample_budget(m, p.nsamples) * n
    if method == "exact_shapley":
        return n + 2 * rows + rows * (1 << m) * n
    if method == "shapley_value_sampling":
        return int(rows * (1 + p.n_samples * m))
    if method == "feature_ablation":
        return rows * (1 + m)
    if method == "occlusion":
        return rows * (1 + (windows if windows is not None else m))
    if method in ("captum_kernel_shap", "lime"):
        return int(rows * (1 + p.n_samples))
    if method in ("shap_permutation", "shap_partition"):
        return int(rows * (p.max_evals * n + 1))
    if method == "integrated_gradients":
        return int(rows * (p.n_steps + 2))
    if method in ("saliency", "deeplift"):
        return rows * 2
    if method == "gradient_shap":
        return int(rows * (p.n_samples + 1))
    if method == "noise_tunnel":
        inner = 52 if p.base == "integrated_gradients" else 1
        return int(rows * (p.nt_samples * inner + 1))
    if method == "shap_deep":
        return rows * n * 2
    if method == "shap_gradient":
        return int(rows * (p.nsamples + 1))
    raise EngineError(f"no cost model for method {method!r}")


def model_rows_per_second(forward: Forward, sample: Array, *, seconds: float = 0.2) -> float:
    """The model's throughput on blocks of real rows, measured for about ``seconds``."""
    block = np.concatenate([sample] * max(1, math.ceil(forward.batch_size / max(1, len(sample)))))[: forward.batch_size]
    forward(block)  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        forward(block)
        done += len(block)
    return done / (time.perf_counter() - t0)


def samples_for_time(
    seconds: float, *, rows: int, features: int, background_rows: int, rows_per_second: float, overhead: float = 1.5
) -> int:
    """The largest KernelSHAP budget per row that fits ``seconds`` (``overhead`` × the model's time).

    Raises a permanent EngineError when not even ``features + 2`` coalitions fit.
    """
    usable = seconds * rows_per_second / overhead - background_rows - 2 * rows
    per_row = usable / max(1, rows * background_rows)
    minimum = features + 2
    if per_row < minimum:
        needed = (minimum * rows * background_rows + background_rows + 2 * rows) * overhead / rows_per_second
        raise EngineError(
            f"a time budget of {seconds:g} s cannot be met: at {rows_per_second:,.0f} model rows/s it allows "
            f"{max(0, int(per_row))} coalitions per row and KernelSHAP needs at least {minimum} for {features} "
            f"features; give at least {needed:.1f} s, fewer rows or a smaller background"
        )
    return int(min(per_row, sample_budget(features, 2**30)))


def sampling_error(
    forward: Forward,
    x: Array,
    background: Array,
    *,
    nsamples: int,
    background_weights: Array | None = None,
    groups: Array | None = None,
    seeds: int = 3,
) -> dict[str, float]:
    """Standard deviation of KernelSHAP attributions across ``seeds`` seeds on the pilot row(s) ``x``.

    Returned as ``{"std": mean std over features and outputs, "relative": std
    over mean |attribution|}``: the error a single run at this budget carries.
    """
    runs = np.stack(
        [
            kernel_shap(
                forward,
                x,
                background,
                background_weights=background_weights,
                nsamples=nsamples,
                seed=1000 + s,
                groups=groups,
            ).values
            for s in range(seeds)
        ]
    )
    std = float(runs.std(axis=0, ddof=1).mean())
    scale = float(np.abs(runs).mean()) or 1.0
    return {"std": std, "relative": std / scale, "seeds": seeds, "pilot_rows": len(x)}
