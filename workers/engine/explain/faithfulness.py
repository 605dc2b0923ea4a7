"""Trust scores for one explanation run: every score computed, each failure recorded, thresholds flagged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.explain.methods import Attributions, Inputs, run_method
from workers.engine.explain.params import Common, MethodInfo
from workers.engine.explain.trust import (
    TrustReport,
    additivity_errors,
    completeness_errors,
    flags,
    infidelity,
    sensitivity_max,
    stability,
)

__all__ = ["assess"]


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def assess(
    info: MethodInfo,
    params: Common,
    inputs: Inputs,
    out: Attributions,
    *,
    forward: Any,
    torch_form: Any,
    scale: Array,
    expand: Callable[[Array], Array],
    baseline_output: Array | None,
    seeds: int = 3,
    max_rows: int = 10,
    thresholds: dict[str, tuple[str, float]] | None = None,
) -> TrustReport:
    """Scores over (at most ``max_rows`` of) the explained rows; a score that fails records why and the rest go on.

    ``expand`` maps per-feature attributions back to per-element ones (the
    input's shape) for infidelity; ``scale`` is each element's perturbation
    scale (0 for elements that must not be perturbed, such as category codes).
    """
    report = TrustReport()
    n = min(max_rows, len(inputs.x))
    sub = Inputs(
        x=inputs.x[:n],
        baseline=inputs.baseline if len(inputs.baseline) == 1 else inputs.baseline[:n],
        background=inputs.background,
        background_weights=inputs.background_weights,
        groups=inputs.groups,
        targets=inputs.targets[:n],
    )
    if info.additive and out.base_values is not None:
        errors = additivity_errors(out.values, np.asarray(out.base_values), out.outputs)
        report.scores["additivity_error"] = float(errors.max())
    if out.deltas is not None and baseline_output is not None:
        errors = completeness_errors(out.deltas, out.outputs, baseline_output)
        report.scores["completeness_error"] = float(errors.max())
        if out.steps is not None:
            report.details["integration_steps"] = {"min": int(out.steps.min()), "max": int(out.steps.max())}

    def attempt(name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # one failing score never sinks the explanation
            report.details[f"{name}_error"] = f"{type(exc).__name__}: {exc}"

    def do_infidelity() -> None:
        total_effect = info.name not in ("saliency", "noise_tunnel") and not (
            info.name == "deeplift" and not getattr(params, "multiply_by_inputs", True)
        )
        inf, change = infidelity(
            forward, sub.x, expand(out.values[:n]), sub.targets, scale, seed=params.seed, n_perturb=32,
            baseline=sub.baseline if total_effect else None,
        )  # fmt: skip
        mean_change = float(change.mean())
        report.details["infidelity_absolute"] = float(inf.mean())
        if mean_change > 0:
            report.scores["infidelity"] = _finite(float(inf.mean()) / mean_change)
        else:
            report.details["infidelity_note"] = "the perturbations did not change the output: nothing to compare"

    def do_sensitivity() -> None:
        k = min(3, n)

        def explain(x: Array) -> Array:
            reps = len(x) // k
            again = Inputs(
                x=x,
                baseline=sub.baseline if len(sub.baseline) == 1 else np.repeat(sub.baseline[:k], reps, axis=0),
                background=sub.background,
                background_weights=sub.background_weights,
                groups=sub.groups,
                targets=np.repeat(sub.targets[:k], reps) if len(x) != k else sub.targets[:k],
            )
            return expand(run_method(info, params, again, forward=forward, torch_form=torch_form).values)

        value = float(sensitivity_max(explain, sub.x[:k], scale, seed=params.seed).max())
        report.scores["sensitivity_max"] = _finite(value)
        if report.scores["sensitivity_max"] is None:
            report.details["sensitivity_max_note"] = (
                "not finite: the explained rows' attributions were all zero (or overflowed) while nearby inputs' "
                "were not, so no bound on the change can be given"
            )

    def do_stability() -> None:
        k = min(5, n)
        part = Inputs(
            x=sub.x[:k],
            baseline=sub.baseline if len(sub.baseline) == 1 else sub.baseline[:k],
            background=sub.background,
            background_weights=sub.background_weights,
            groups=sub.groups,
            targets=sub.targets[:k],
        )
        runs = [out.values[:k]]
        for s in range(1, seeds):
            again = type(params)(**{**params.__dict__, "seed": params.seed + s})
            runs.append(run_method(info, again, part, forward=forward, torch_form=torch_form).values)
        report.scores["stability"] = stability(runs)
        report.details["stability_seeds"] = [params.seed + s for s in range(seeds)]

    attempt("infidelity", do_infidelity)
    attempt("sensitivity_max", do_sensitivity)
    if _stochastic(info):
        attempt("stability", do_stability)
    else:
        report.scores["stability"] = 1.0
        report.details["stability_note"] = "deterministic method: the same attributions for every seed"
    report.flags = flags(report.scores, thresholds)
    return report


def _stochastic(info: MethodInfo) -> bool:
    return info.name in {
        "kernel_shap",
        "shapley_value_sampling",
        "captum_kernel_shap",
        "lime",
        "gradient_shap",
        "noise_tunnel",
        "shap_kernel",
        "shap_permutation",
        "shap_gradient",
    }
