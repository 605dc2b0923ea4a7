"""Running one explanation method: evalsvc's own, captum's or shap's, all on the same inputs.

Every method gets the rows (``(rows, *shape)``), a baseline row, a
background, an optional feature-group map (one-hot blocks, image patches,
tokens: ``shape``-shaped ids 0..M-1) and the output to explain per row, and
returns :class:`Attributions` per feature (per group when groups are given).
Perturbation methods call only the numpy :class:`Forward` (captum through
:func:`as_torch_function`, with ``perturbations_per_eval`` large; shap with
its batched masker calls); gradient methods need the :class:`TorchForm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.explain.exact import exact_shapley
from workers.engine.explain.forward import Forward
from workers.engine.explain.kernel_shap import kernel_shap
from workers.engine.explain.params import Common, MethodInfo

__all__ = ["Attributions", "Inputs", "group_sum", "run_method"]


@dataclass(frozen=True)
class Inputs:
    """What a method explains and against what."""

    x: Array
    #: (1 or rows, *shape) reference for captum methods (zeros, mean, median, pad tokens...).
    baseline: Array
    #: (n, *shape) reference data for SHAP methods, with ``background_weights``.
    background: Array
    background_weights: Array | None
    #: ``shape``-shaped feature ids, or None (every element a feature).
    groups: Array | None
    #: Output column explained, per row.
    targets: Array


@dataclass(frozen=True)
class Attributions:
    """Per row and feature; ``base_values``/``deltas`` where the method has them."""

    values: Array
    outputs: Array
    base_values: Array | None = None
    #: Integrated gradients' convergence delta per row (sum of attributions - (f(x) - f(baseline))).
    deltas: Array | None = None
    #: Integration steps used per row (integrated gradients).
    steps: Array | None = None


def group_sum(values: Array, groups: Array | None) -> Array:
    """(rows, *shape) element attributions summed into (rows, M) feature attributions."""
    flat = values.reshape(len(values), -1)
    if groups is None:
        return flat
    ids = np.asarray(groups).reshape(-1)
    out = np.zeros((len(values), int(ids.max()) + 1))
    for g in range(out.shape[1]):
        out[:, g] = flat[:, ids == g].sum(axis=1)
    return out


def _pick(values: Array, targets: Array) -> Array:
    """(rows, M, d) -> (rows, M) at each row's target."""
    return values[np.arange(len(values)), :, targets]


def run_method(
    info: MethodInfo, params: Common, inputs: Inputs, *, forward: Forward, torch_form: Any = None
) -> Attributions:
    """Attributions of ``info``'s method with ``params`` (validated by :func:`parse_method`)."""
    if info.kind == "gradient" and torch_form is None:
        raise EngineError(
            f"{info.name} is a gradient method and needs a differentiable PyTorch form of the model; "
            "this model has none"
        )
    if info.library == "evalsvc":
        return _evalsvc(info, params, inputs, forward)
    if info.library == "captum":
        return _captum(info, params, inputs, forward, torch_form)
    return _shap(info, params, inputs, forward, torch_form)


def _evalsvc(info: MethodInfo, params: Any, inputs: Inputs, forward: Forward) -> Attributions:
    if info.name == "kernel_shap":
        sv = kernel_shap(
            forward,
            inputs.x,
            inputs.background,
            background_weights=inputs.background_weights,
            nsamples=params.nsamples,
            seed=params.seed,
            groups=inputs.groups,
        )
    else:
        if inputs.groups is not None:
            raise EngineError("exact_shapley enumerates input elements; use kernel_shap for grouped features")
        sv = exact_shapley(forward, inputs.x, inputs.background, background_weights=inputs.background_weights)
    t = inputs.targets
    return Attributions(
        values=_pick(sv.values, t),
        outputs=sv.outputs[np.arange(len(t)), t],
        base_values=sv.base_values[t],
    )


def _captum(info: MethodInfo, params: Any, inputs: Inputs, forward: Forward, torch_form: Any) -> Attributions:
    import torch
    from captum import attr

    from workers.engine.explain.torch_bridge import as_torch_function

    x = torch.tensor(inputs.x, dtype=torch.float32)
    baseline = torch.tensor(inputs.baseline, dtype=torch.float32)
    target = torch.tensor(inputs.targets, dtype=torch.long)
    torch.manual_seed(params.seed)
    mask = None if inputs.groups is None else torch.tensor(inputs.groups, dtype=torch.long)[None]
    deltas = steps = None
    if info.kind == "perturbation":
        fn = as_torch_function(forward)
        ppe = params.perturbations_per_eval
        if info.name == "occlusion":
            shape = tuple(inputs.x.shape[1:])
            window = _window(shape, params.window)
            strides = _window(shape, params.stride)
            a = attr.Occlusion(fn).attribute(
                x,
                sliding_window_shapes=window,
                strides=strides,
                baselines=baseline,
                target=target,
                perturbations_per_eval=ppe,
            )
        elif info.name == "feature_ablation":
            a = attr.FeatureAblation(fn).attribute(
                x, baselines=baseline, target=target, feature_mask=mask, perturbations_per_eval=ppe
            )
        elif info.name == "shapley_value_sampling":
            a = attr.ShapleyValueSampling(fn).attribute(
                x,
                baselines=baseline,
                target=target,
                feature_mask=mask,
                n_samples=params.n_samples,
                perturbations_per_eval=ppe,
            )
        else:
            # captum's KernelShap and Lime fit one surrogate per row.
            cls = attr.KernelShap if info.name == "captum_kernel_shap" else attr.Lime
            explainer = cls(fn)
            parts = []
            for i in range(len(x)):
                parts.append(
                    explainer.attribute(
                        x[i : i + 1],
                        baselines=baseline[:1] if len(baseline) == 1 else baseline[i : i + 1],
                        target=int(target[i]),
                        feature_mask=mask,
                        n_samples=params.n_samples,
                        perturbations_per_eval=ppe,
                    )
                )
            a = torch.cat(parts)
        values = a.detach().numpy().astype(np.float64)
    else:
        module = _differentiable(torch_form)
        base = baseline.expand_as(x) if len(baseline) == 1 else baseline
        if info.name == "integrated_gradients":
            a, deltas, steps = _integrated_gradients(attr, module, x, base, target, params)
        elif info.name == "saliency":
            a = attr.Saliency(module).attribute(x, target=target, abs=params.abs)
        elif info.name == "deeplift":
            a = attr.DeepLift(module, multiply_by_inputs=params.multiply_by_inputs).attribute(
                x, baselines=base, target=target
            )
        elif info.name == "gradient_shap":
            bg = torch.tensor(inputs.background, dtype=torch.float32)
            a = attr.GradientShap(module).attribute(
                x, baselines=bg, target=target, n_samples=params.n_samples, stdevs=params.stdevs
            )
        else:  # noise_tunnel
            inner = attr.Saliency(module) if params.base == "saliency" else attr.IntegratedGradients(module)
            extra = {"baselines": base} if params.base == "integrated_gradients" else {}
            a = attr.NoiseTunnel(inner).attribute(
                x, nt_type=params.nt_type, nt_samples=params.nt_samples, stdevs=params.stdevs, target=target, **extra
            )
        values = a.detach().numpy().astype(np.float64)
    outputs = forward(inputs.x)[np.arange(len(inputs.targets)), inputs.targets]
    return Attributions(values=group_sum(values, inputs.groups), outputs=outputs, deltas=deltas, steps=steps)


def _integrated_gradients(attr: Any, module: Any, x: Any, base: Any, target: Any, params: Any) -> tuple[Any, Any, Any]:
    """IG with captum; rows whose completeness error exceeds ``target_delta`` are redone with doubled steps."""
    import torch

    steps = np.full(len(x), params.n_steps)
    ig = attr.IntegratedGradients(module)
    todo = np.arange(len(x))
    values = torch.zeros_like(x)
    deltas = np.zeros(len(x))
    n = params.n_steps
    with torch.no_grad():
        gap = (_first(module(x)) - _first(module(base))).gather(1, target[:, None])[:, 0].abs().numpy()
    while len(todo):
        a, d = ig.attribute(
            x[todo],
            baselines=base[todo],
            target=target[todo],
            n_steps=n,
            method=params.method,
            internal_batch_size=params.internal_batch_size,
            return_convergence_delta=True,
        )
        values[todo] = a.detach()
        deltas[todo] = d.detach().numpy()
        steps[todo] = n
        err = np.abs(deltas[todo]) / np.maximum(gap[todo], 1e-12)
        todo = todo[err > params.target_delta] if params.target_delta > 0 else todo[:0]
        n *= 2
        if n > params.max_steps:
            break
    return values, deltas.astype(np.float64), steps


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, list | tuple) else out


def _window(shape: tuple[int, ...], side: int) -> tuple[int, ...]:
    """A window over the last two axes of an image (all channels), or over the columns of a row."""
    if len(shape) == 3:
        c_first = shape[0] <= 4
        return (shape[0], side, side) if c_first else (side, side, shape[2])
    return (min(side, shape[-1]),) if len(shape) == 1 else (*shape[:-1], min(side, shape[-1]))


def _differentiable(torch_form: Any) -> Any:
    module = torch_form.module
    for p in getattr(module, "parameters", lambda: [])():
        p.requires_grad_(False)
    return module


def _shap(info: MethodInfo, params: Any, inputs: Inputs, forward: Forward, torch_form: Any) -> Attributions:
    import shap

    x2 = inputs.x.reshape(len(inputs.x), -1)
    shape = inputs.x.shape[1:]
    t = inputs.targets
    if info.kind == "perturbation":
        if inputs.groups is not None and info.name != "shap_partition":
            raise EngineError(f"{info.name} explains every input element; use kernel_shap for grouped features")

        def f(a: Array) -> Array:
            return forward(np.asarray(a).reshape(len(a), *shape))

        bg = inputs.background.reshape(len(inputs.background), -1)
        if info.name == "shap_kernel":
            from shap.utils._legacy import DenseData

            weights = (
                np.ones(len(bg)) if inputs.background_weights is None else np.array(inputs.background_weights, float)
            )
            data = DenseData(bg, [str(i) for i in range(bg.shape[1])], None, weights)
            np.random.seed(params.seed)
            explainer = shap.KernelExplainer(f, data)
            values = np.asarray(explainer.shap_values(x2, nsamples=params.nsamples, l1_reg=False, silent=True))
            base = np.asarray(explainer.expected_value).reshape(-1)[t]
            return Attributions(
                values=_pick(values, t), outputs=forward(inputs.x)[np.arange(len(t)), t], base_values=base
            )
        masker = shap.maskers.Independent(bg, max_samples=len(bg))
        if info.name == "shap_partition":
            masker = shap.maskers.Partition(bg, max_samples=len(bg))
        cls = shap.explainers.Permutation if info.name == "shap_permutation" else shap.explainers.Partition
        explanation = cls(f, masker, seed=params.seed)(x2, max_evals=params.max_evals, silent=True)
        values = np.asarray(explanation.values)
        base = np.asarray(explanation.base_values)
        return Attributions(
            values=group_sum(_pick(values, t).reshape(len(t), *shape), inputs.groups),
            outputs=forward(inputs.x)[np.arange(len(t)), t],
            base_values=base[np.arange(len(t)), t] if base.ndim == 2 else base,
        )
    import torch

    module = _differentiable(torch_form)
    x = torch.tensor(inputs.x, dtype=torch.float32)
    background = torch.tensor(inputs.background, dtype=torch.float32)
    if info.name == "shap_deep":
        explainer = shap.DeepExplainer(module, background)
        values = np.asarray(explainer.shap_values(x, check_additivity=False))
        expected: Array | None = np.asarray(explainer.expected_value).reshape(-1)[t]
    else:
        torch.manual_seed(params.seed)
        explainer = shap.GradientExplainer(module, background)
        values = np.asarray(explainer.shap_values(x, nsamples=params.nsamples, rseed=params.seed))
        expected = None
    # shap returns (rows, *shape, outputs) for multi-output torch models.
    values = np.moveaxis(values.reshape(len(t), -1, values.shape[-1]), -1, 1)
    picked = values[np.arange(len(t)), t]
    return Attributions(
        values=group_sum(picked.reshape(len(t), *shape), inputs.groups),
        outputs=forward(inputs.x)[np.arange(len(t)), t],
        base_values=expected,
    )
