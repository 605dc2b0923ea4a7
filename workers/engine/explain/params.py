"""Explanation methods and their parameters: one typed, validated dataclass per method.

:func:`parse_method` turns a method name and a JSON object into the method's
parameter dataclass, or raises a permanent :class:`EngineError` that names
every problem (unknown method, unknown key, wrong type, out of range), so a
submission can be refused before anything runs. :data:`METHODS` says for each
method which library computes it and whether it needs gradients (a
differentiable torch form of the model) or only a forward function.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from workers.engine.errors import EngineError

__all__ = ["METHODS", "TEXT_METHODS", "MethodInfo", "parse_method"]

#: Methods that explain a text model's tokens (each row against its padding baseline).
TEXT_METHODS = ("kernel_shap",)


def _f(default: Any, *, lo: float | None = None, hi: float | None = None, choices: tuple[Any, ...] = ()) -> Any:
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True)
class Common:
    #: Output column explained (class index); None: the predicted class of each row.
    target: int | None = _f(None, lo=0)
    seed: int = _f(0, lo=0)


@dataclass(frozen=True)
class KernelShapParams(Common):
    nsamples: int = _f(512, lo=4, hi=1_000_000)


@dataclass(frozen=True)
class ExactShapleyParams(Common):
    pass


@dataclass(frozen=True)
class IntegratedGradientsParams(Common):
    n_steps: int = _f(50, lo=2, hi=10_000)
    method: str = _f("gausslegendre", choices=("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right"))
    internal_batch_size: int = _f(4096, lo=1)
    #: Rows whose completeness error (|delta| over |f(x) - f(baseline)|) exceeds this are redone with
    #: twice the steps, up to ``max_steps``; 0 turns the refinement off.
    target_delta: float = _f(0.01, lo=0.0)
    max_steps: int = _f(1024, lo=2, hi=100_000)


@dataclass(frozen=True)
class SaliencyParams(Common):
    abs: bool = _f(True)


@dataclass(frozen=True)
class DeepLiftParams(Common):
    multiply_by_inputs: bool = _f(True)


@dataclass(frozen=True)
class GradientShapParams(Common):
    n_samples: int = _f(20, lo=1, hi=10_000)
    stdevs: float = _f(0.0, lo=0.0)


@dataclass(frozen=True)
class NoiseTunnelParams(Common):
    base: str = _f("saliency", choices=("saliency", "integrated_gradients"))
    nt_type: str = _f("smoothgrad", choices=("smoothgrad", "smoothgrad_sq", "vargrad"))
    nt_samples: int = _f(10, lo=1, hi=1000)
    stdevs: float = _f(0.1, lo=0.0)


@dataclass(frozen=True)
class OcclusionParams(Common):
    #: Window and stride in input elements (tabular: columns; images: pixels, per side).
    window: int = _f(1, lo=1)
    stride: int = _f(1, lo=1)
    perturbations_per_eval: int = _f(512, lo=1)


@dataclass(frozen=True)
class FeatureAblationParams(Common):
    perturbations_per_eval: int = _f(512, lo=1)


@dataclass(frozen=True)
class SamplingParams(Common):
    n_samples: int = _f(25, lo=1, hi=1_000_000)
    perturbations_per_eval: int = _f(512, lo=1)


@dataclass(frozen=True)
class SurrogateParams(Common):
    """captum's KernelShap and Lime: one weighted surrogate fit per row."""

    n_samples: int = _f(512, lo=4, hi=1_000_000)
    perturbations_per_eval: int = _f(512, lo=1)


@dataclass(frozen=True)
class ShapSamplingParams(Common):
    max_evals: int = _f(500, lo=10, hi=10_000_000)


@dataclass(frozen=True)
class ShapKernelParams(Common):
    nsamples: int = _f(512, lo=4, hi=1_000_000)


@dataclass(frozen=True)
class ShapGradientParams(Common):
    nsamples: int = _f(200, lo=1, hi=100_000)


Kind = Literal["perturbation", "gradient"]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    library: str
    kind: Kind
    params: type[Common]
    #: Text of the method for the report.
    title: str
    #: Attributions add up to f(x) - E[f] (SHAP family): the additivity check applies.
    additive: bool = False


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        MethodInfo("kernel_shap", "evalsvc", "perturbation", KernelShapParams, "KernelSHAP (batched)", True),
        MethodInfo("exact_shapley", "evalsvc", "perturbation", ExactShapleyParams, "Exact Shapley values", True),
        MethodInfo("integrated_gradients", "captum", "gradient", IntegratedGradientsParams, "Integrated Gradients"),
        MethodInfo("saliency", "captum", "gradient", SaliencyParams, "Saliency"),
        MethodInfo("deeplift", "captum", "gradient", DeepLiftParams, "DeepLift"),
        MethodInfo("gradient_shap", "captum", "gradient", GradientShapParams, "GradientSHAP"),
        MethodInfo("noise_tunnel", "captum", "gradient", NoiseTunnelParams, "NoiseTunnel (SmoothGrad)"),
        MethodInfo("occlusion", "captum", "perturbation", OcclusionParams, "Occlusion"),
        MethodInfo("feature_ablation", "captum", "perturbation", FeatureAblationParams, "Feature ablation"),
        MethodInfo("shapley_value_sampling", "captum", "perturbation", SamplingParams, "Shapley value sampling"),
        MethodInfo("captum_kernel_shap", "captum", "perturbation", SurrogateParams, "KernelSHAP (captum)"),
        MethodInfo("lime", "captum", "perturbation", SurrogateParams, "LIME"),
        MethodInfo("shap_kernel", "shap", "perturbation", ShapKernelParams, "shap KernelExplainer", True),
        MethodInfo("shap_permutation", "shap", "perturbation", ShapSamplingParams, "shap PermutationExplainer", True),
        MethodInfo("shap_partition", "shap", "perturbation", ShapSamplingParams, "shap PartitionExplainer", True),
        MethodInfo("shap_deep", "shap", "gradient", Common, "shap DeepExplainer", True),
        MethodInfo("shap_gradient", "shap", "gradient", ShapGradientParams, "shap GradientExplainer"),
    )
}


def _check(name: str, value: Any, f: dataclasses.Field[Any]) -> tuple[Any, str | None]:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    meta = f.metadata
    if value is None:
        return (None, None) if "None" in kind else (None, f"{name} must not be null")
    if "bool" in kind:
        return (value, None) if isinstance(value, bool) else (None, f"{name} must be true or false")
    if "int" in kind and "float" not in kind:
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"{name} must be an integer"
    elif "float" in kind:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"{name} must be a number"
        value = float(value)
    elif "str" in kind and not isinstance(value, str):
        return None, f"{name} must be a string"
    if meta.get("choices") and value not in meta["choices"]:
        return None, f"{name} must be one of {', '.join(map(str, meta['choices']))} (got {value!r})"
    if meta.get("lo") is not None and value < meta["lo"]:
        return None, f"{name} must be at least {meta['lo']} (got {value})"
    if meta.get("hi") is not None and value > meta["hi"]:
        return None, f"{name} must be at most {meta['hi']} (got {value})"
    return value, None


def parse_method(method: str, params: dict[str, Any] | None = None) -> tuple[MethodInfo, Common]:
    """The method's description and its validated parameters; permanent :class:`EngineError` naming every problem."""
    if method not in METHODS:
        raise EngineError(f"unknown explanation method {method!r}; known: {', '.join(sorted(METHODS))}")
    info = METHODS[method]
    params = dict(params or {})
    fields = {f.name: f for f in dataclasses.fields(info.params)}
    problems = [
        f"unknown parameter {k!r} for {method} (known: {', '.join(sorted(fields))})" for k in params if k not in fields
    ]
    values: dict[str, Any] = {}
    for key, value in params.items():
        if key in fields:
            checked, problem = _check(key, value, fields[key])
            if problem:
                problems.append(problem)
            else:
                values[key] = checked
    if problems:
        raise EngineError("; ".join(problems))
    return info, info.params(**values)
