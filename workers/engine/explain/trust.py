"""How far to trust an explanation: faithfulness and stability scores, and flags against thresholds.

* additivity (SHAP family): ``|sum(phi) + base - f(x)| / max(|f(x) - base|, 1e-12)`` per row;
* completeness (integrated gradients): captum's convergence delta over
  ``|f(x) - f(baseline)|`` per row;
* infidelity (Yeh et al. 2019, as ``captum.metrics.infidelity``): the mean
  squared difference between ``I . phi`` and ``f(x) - f(x - I)`` over random
  perturbations ``I`` (Gaussian, each element's scale its spread in the
  background), reported as a fraction of the mean squared output change so
  it reads the same for any model scale (0: the attributions predict every
  perturbation's effect, 1: no better than nothing);
* sensitivity_max (``captum.metrics.sensitivity_max``): the largest change
  of the attributions, relative to their norm, under input perturbations of
  the given radius (scaled like the infidelity noise);
* stability: Spearman rank correlation of the top features' attributions
  between runs with different seeds (1.0 for deterministic methods).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.explain.forward import Forward

__all__ = [
    "DEFAULT_THRESHOLDS",
    "TrustReport",
    "additivity_errors",
    "completeness_errors",
    "flags",
    "infidelity",
    "sensitivity_max",
    "stability",
]

#: Limits an explanation must stay within; a failed one is flagged on the page and in the report.
DEFAULT_THRESHOLDS: dict[str, tuple[str, float]] = {
    "additivity_error": ("max", 1e-3),
    "completeness_error": ("max", 0.01),
    "infidelity": ("max", 0.5),
    "sensitivity_max": ("max", 0.5),
    "stability": ("min", 0.8),
}


@dataclass
class TrustReport:
    #: None where a score came out non-finite (nothing to compare).
    scores: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "details": self.details, "flags": self.flags}


def additivity_errors(values: Array, base: Array, outputs: Array) -> Array:
    gap = np.abs(values.sum(axis=1) + base - outputs)
    return np.asarray(gap / np.maximum(np.abs(outputs - base), 1e-12))


def completeness_errors(deltas: Array, outputs: Array, baseline_outputs: Array) -> Array:
    return np.asarray(np.abs(deltas) / np.maximum(np.abs(outputs - baseline_outputs), 1e-12))


def noise_scale(background: Array) -> Array:
    """Per element: the background's standard deviation, or 1 where it is constant."""
    sd = np.asarray(background, dtype=np.float64).std(axis=0)
    return np.where(sd > 0, sd, 1.0)


def infidelity(
    forward: Forward,
    x: Array,
    element_attr: Array,
    targets: Array,
    scale: Array,
    *,
    n_perturb: int = 64,
    sigma: float = 0.1,
    seed: int = 0,
    noise: Array | None = None,
    baseline: Array | None = None,
) -> tuple[Array, Array]:
    """Per row: (infidelity, mean squared output change) over ``n_perturb`` Gaussian perturbations.

    ``element_attr`` has the input's shape per row. All rows' perturbations
    go to the model in one block. ``noise`` (rows, n_perturb, *shape) replaces the random draws.
    """
    rows = len(x)
    if noise is None:
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, 1.0, size=(rows, n_perturb, *x.shape[1:])) * (sigma * scale)
    n_perturb = noise.shape[1]
    perturbed = (x[:, None] - noise).reshape(rows * n_perturb, *x.shape[1:])
    fx = forward(x)[np.arange(rows), targets]
    fp = forward(perturbed).reshape(rows, n_perturb, -1)[np.arange(rows), :, targets]
    weights = noise
    if baseline is not None:
        # Attributions that are total effects (SHAP, IG: attribution ~ slope × (x - baseline)) are compared
        # with the perturbation as a fraction of (x - baseline), as captum's
        # infidelity_perturb_func_decorator(multiply_by_inputs=True) does; 0 where x equals the baseline.
        span = (x - baseline)[:, None]
        weights = np.divide(noise, span, out=np.zeros_like(noise), where=span != 0)
    predicted = np.einsum("rpk,rk->rp", weights.reshape(rows, n_perturb, -1), element_attr.reshape(rows, -1))
    actual = fx[:, None] - fp
    return ((predicted - actual) ** 2).mean(axis=1), (actual**2).mean(axis=1)


def sensitivity_max(
    explain: Callable[[Array], Array],
    x: Array,
    scale: Array,
    *,
    radius: float = 0.02,
    n_perturb: int = 5,
    seed: int = 0,
) -> Array:
    """Per row: captum's ``sensitivity_max`` with uniform noise of ``radius`` × each element's scale."""
    import torch
    from captum.metrics import sensitivity_max as captum_sensitivity

    torch.manual_seed(seed)
    sc = torch.tensor(scale, dtype=torch.float32)

    def perturb(inputs: Any, perturb_radius: float = radius) -> torch.Tensor:
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs
        noise = torch.empty_like(inputs).uniform_(-perturb_radius, perturb_radius)
        perturbed: torch.Tensor = inputs + noise * sc
        return perturbed

    def explanation(inputs: Any, **_: Any) -> tuple[torch.Tensor]:
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs
        # A tuple: captum iterates over the explanation as over a tuple of tensors.
        return (torch.tensor(explain(inputs.detach().numpy().astype(np.float64)), dtype=torch.float32),)

    xt = torch.tensor(x, dtype=torch.float32)
    out = captum_sensitivity(explanation, xt, perturb_func=perturb, perturb_radius=radius, n_perturb_samples=n_perturb)
    return np.asarray(out.detach().numpy().astype(np.float64))


def stability(runs: list[Array], *, top_k: int = 10) -> float:
    """Mean over rows and seed pairs of Spearman's rho on the union of both runs' top-k features (by |attribution|)."""
    from scipy.stats import spearmanr

    if len(runs) < 2:
        return 1.0
    rhos = []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            for a, b in zip(runs[i], runs[j], strict=True):
                k = min(top_k, len(a))
                keep = np.union1d(np.argsort(-np.abs(a))[:k], np.argsort(-np.abs(b))[:k])
                if np.ptp(a[keep]) == 0 and np.ptp(b[keep]) == 0:
                    rhos.append(1.0)
                    continue
                rho = spearmanr(a[keep], b[keep]).statistic
                rhos.append(0.0 if np.isnan(rho) else float(rho))
    return float(np.mean(rhos))


def flags(scores: Mapping[str, float | None], thresholds: dict[str, tuple[str, float]] | None = None) -> list[str]:
    """A plain sentence for every score beyond its threshold."""
    out = []
    for name, (kind, limit) in (thresholds or DEFAULT_THRESHOLDS).items():
        value = scores.get(name)
        if value is None or not np.isfinite(value):
            continue
        if (kind == "max" and value > limit) or (kind == "min" and value < limit):
            word = "above" if kind == "max" else "below"
            out.append(f"{name.replace('_', ' ')} {value:.3g} is {word} the threshold {limit:g}")
    return out
