"""KernelSHAP for many rows at once: masks, background mixing and the weighted least squares as array operations.

The estimator is ``shap.KernelExplainer``'s with ``l1_reg=False`` and the
identity link: the same coalition sampling and kernel weights
(:mod:`.coalitions`), the same value of a coalition (the background-weighted
mean of the model over the background rows with the coalition's features
taken from the explained row), the same features left out (those equal to
every background row are not varying and get 0), and the same constrained
regression (the last varying feature eliminated so the attributions add up
to ``f(x) - E[f]`` exactly). What differs is the shape of the work: every
row's perturbed inputs are built in one block and sent to the model in large
batches, and all rows' regressions are solved together by batched
``numpy.linalg.solve``.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.explain.coalitions import Coalitions, kernel_coalitions, sample_budget
from workers.engine.explain.forward import Forward

__all__ = ["ShapValues", "kernel_shap", "model_rows_kernel_shap", "varying_features"]

#: Model rows built per block; blocks are then cut into the forward's batches.
BLOCK_ROWS = 1 << 17
#: Input elements per buffer of perturbed rows handed to the model (rounded to whole model batches).
BUFFER_ELEMENTS = 1 << 19
#: Coalition designs kept for reuse (bytes of masks and weights, least recently used dropped first).
COALITION_CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class ShapValues:
    """Attributions ``values`` (rows, features, outputs), ``base_values`` (outputs,) and ``outputs`` f(x) (rows, outputs)."""

    values: Array
    base_values: Array
    outputs: Array
    #: Coalitions evaluated per row (the KernelSHAP budget actually used).
    samples: int

    def additivity_error(self) -> Array:
        """Per row and output: ``|sum(values) + base - f(x)|`` over ``max(|f(x) - base|, tiny)``."""
        gap = np.abs(self.values.sum(axis=1) + self.base_values - self.outputs)
        scale = np.maximum(np.abs(self.outputs - self.base_values), 1e-12)
        return np.asarray(gap / scale)


def _normalised(weights: Array | None, n: int) -> Array:
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
        raise EngineError("background weights must be one non-negative number per background row, not all zero")
    return np.asarray(w / w.sum())


def varying_features(x: Array, background: Array) -> Array:
    """(rows, features) bool: the feature differs from at least one background row (shap's ``varying_groups``)."""
    same = np.isclose(x[:, None, :], background[None, :, :], rtol=1e-5, atol=1e-8, equal_nan=True)
    return np.asarray(~same.all(axis=1))


def model_rows_kernel_shap(rows: int, features: int, background_rows: int, nsamples: int | str = "auto") -> int:
    """Model rows KernelSHAP evaluates for ``rows`` rows (upper bound: every feature varying)."""
    return background_rows + rows + rows * sample_budget(features, nsamples) * background_rows


def kernel_shap(
    forward: Forward,
    x: Array,
    background: Array,
    *,
    background_weights: Array | None = None,
    nsamples: int | str = "auto",
    seed: int = 0,
    groups: Array | None = None,
) -> ShapValues:
    """KernelSHAP attributions of ``forward`` at the rows of ``x`` against ``background``.

    Parameters
    ----------
    forward:
        The model over rows shaped like ``x[0]``.
    x:
        (rows, *shape) rows to explain: tabular rows, images, token ids.
    background:
        (background rows, *shape) reference data (e.g. a k-means summary).
    background_weights:
        Weight per background row (cluster sizes); uniform when omitted.
    nsamples:
        Coalitions per row, as ``shap.KernelExplainer``'s ``nsamples``
        (``"auto"`` is ``2 M + 2048``, capped at ``2**M - 2``).
    seed:
        Seeds the coalition draws; the same seed gives the same result.
    groups:
        Optional ``shape``-shaped integer array: the feature (0 .. M-1) each
        element belongs to (a one-hot block, an image patch or superpixel).
        Each feature's elements are taken from the row or from the
        background together. Without it, every element is a feature.
    """
    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    if x.ndim < 2 or background.ndim != x.ndim or x.shape[1:] != background.shape[1:]:
        raise EngineError(f"rows {x.shape} and background {background.shape} must have the same shape per row")
    if len(background) == 0:
        raise EngineError("the background needs at least one row")
    shape = x.shape[1:]
    width = int(np.prod(shape))
    gidx = np.arange(width) if groups is None else np.asarray(groups, dtype=np.int64).reshape(-1)
    if len(gidx) != width or gidx.min() < 0:
        raise EngineError(f"groups must give a feature number (from 0) for each of the {width} input elements")
    m = int(gidx.max()) + 1
    w_bg = _normalised(background_weights, len(background))
    fnull = forward(background).T @ w_bg
    fx = forward(x) if len(x) else np.zeros((0, len(fnull)))
    xf, bgf = x.reshape(len(x), width), background.reshape(len(background), width)
    rows = len(x)
    values = np.zeros((rows, m, len(fnull)))
    varying_el = varying_features(xf, bgf)
    varying = np.zeros((rows, m), dtype=bool)
    for g in range(m):
        varying[:, g] = varying_el[:, gidx == g].any(axis=1)
    rng = np.random.default_rng(seed)
    patterns, group_of = np.unique(varying, axis=0, return_inverse=True)
    group_of = np.asarray(group_of).reshape(-1)
    used = 0
    for g, pattern in enumerate(patterns):
        members = np.flatnonzero(group_of == g)
        cols = np.flatnonzero(pattern)
        if len(cols) == 0:
            continue
        if len(cols) == 1:
            values[members, cols[0]] = fx[members] - fnull
            continue
        with _one_blas_thread():
            values[members[:, None], cols[None, :]] = _explain_group(
                forward, xf[members], bgf, w_bg, fnull, fx[members], cols, gidx, m, shape, nsamples, rng
            )
        used = max(used, sample_budget(len(cols), nsamples))
    values[np.abs(values) < 1e-10] = 0.0
    return ShapValues(values=values, base_values=fnull, outputs=fx, samples=used)


_controller: Any = None


def _one_blas_thread() -> Any:
    """BLAS on one thread while the small per-row products run.

    The regressions are thousands of products of a few hundred rows by a few
    dozen columns; a threaded BLAS spends longer waking and joining its
    threads than computing them, and much longer when the cores are busy.
    """
    global _controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _explain_group(
    forward: Forward,
    x: Array,
    background: Array,
    w_bg: Array,
    fnull: Array,
    fx: Array,
    cols: Array,
    gidx: Array,
    m_all: int,
    shape: tuple[int, ...],
    nsamples: int | str,
    rng: np.random.Generator,
) -> Array:
    rows, width = x.shape
    m = len(cols)
    n_bg = len(background)
    d = len(fnull)
    samples = sample_budget(m, nsamples)
    per_row = samples * n_bg
    # Rows whose coalitions are drawn and solved together, and model rows built before each call of
    # the forward: about 2 MB of input, so the block is still in cache when the model reads it.
    block = max(1, BLOCK_ROWS // per_row)
    # A whole number of model batches (at least one), so no call is a small remainder.
    cap = forward.batch_size * max(1, (BUFFER_ELEMENTS // max(1, width)) // forward.batch_size)
    cap = max(cap, n_bg)
    buf = np.empty((cap, width), dtype=forward.dtype)
    # (n_bg * d, d): the background-weighted mean over n as one matrix product.
    mean_op = np.kron(w_bg[:, None], np.eye(d))
    out = np.empty((rows, m, d))
    bg = background.astype(forward.dtype)
    bg_flat = bg.reshape(-1)
    xs = x.astype(forward.dtype)
    identity = m == m_all and bool((gidx == np.arange(width)).all())
    for start in range(0, rows, block):
        stop = min(rows, start + block)
        co = _coalitions(m, stop - start, nsamples, rng)
        if m == m_all:
            full = co.masks
        else:
            full = np.zeros((stop - start, samples, m_all), dtype=bool)
            full[:, :, cols] = co.masks
        y = np.empty(((stop - start) * per_row, d))
        done = 0
        pos = 0
        for r in range(stop - start):
            el = full[r] if identity else full[r][:, gidx]
            diff = (xs[start + r][None] - bg).reshape(-1)
            s0 = 0
            while s0 < samples:
                # As many coalitions as fit in the buffer; a full buffer goes to the model.
                s1 = min(samples, s0 + (len(buf) - pos) // n_bg)
                if s1 == s0:
                    y[done : done + pos] = forward(buf[:pos].reshape(pos, *shape))
                    done += pos
                    pos = 0
                    continue
                need = (s1 - s0) * n_bg
                # background + m * (x - background): unlike np.where, free of branches on the random masks
                # (several times faster). Where m is 1 this is x to within one rounding of the input dtype.
                # The masks are copied in once per background row; the product and the sum then run over
                # whole (background rows x elements) lines, not lines of one row's elements.
                region = buf[pos : pos + need].reshape(s1 - s0, n_bg, width)
                region[...] = el[s0:s1, None, :]
                lines = region.reshape(s1 - s0, n_bg * width)
                np.multiply(lines, diff, out=lines)
                np.add(lines, bg_flat, out=lines)
                pos += need
                s0 = s1
        if pos:
            y[done : done + pos] = forward(buf[:pos].reshape(pos, *shape))
        ey = (y.reshape(-1, n_bg * d) @ mean_op).reshape(stop - start, samples, d)
        out[start:stop] = _solve(co.masks, co.weights, ey, fx[start:stop], fnull)
    return out


_coalition_cache: OrderedDict[tuple[int, int, str, str], tuple[Coalitions, Mapping[str, Any]]] = OrderedDict()
_coalition_lock = threading.Lock()


def _coalitions(m: int, rows: int, nsamples: int | str, rng: np.random.Generator) -> Coalitions:
    """``kernel_coalitions`` remembered per (features, rows, budget, generator state).

    The design is a function of these alone, so a repeated explanation (the
    same seed and shape: a rerun, the next block of a job seeded alike) reuses
    it; the generator is left in the state the draws would have left it in.
    The arrays are shared and read-only.
    """
    key = (m, rows, str(nsamples), repr(rng.bit_generator.state))
    with _coalition_lock:
        hit = _coalition_cache.get(key)
        if hit is not None:
            _coalition_cache.move_to_end(key)
    if hit is not None:
        rng.bit_generator.state = hit[1]
        return hit[0]
    co = kernel_coalitions(m, rows, nsamples, rng)
    co.masks.setflags(write=False)
    co.weights.setflags(write=False)
    with _coalition_lock:
        _coalition_cache[key] = (co, rng.bit_generator.state)
        size = sum(c.masks.nbytes + c.weights.nbytes for c, _ in _coalition_cache.values())
        while size > COALITION_CACHE_BYTES and len(_coalition_cache) > 1:
            old, _ = _coalition_cache.popitem(last=False)[1]
            size -= old.masks.nbytes + old.weights.nbytes
    return co


def _solve(masks: Array, weights: Array, ey: Array, fx: Array, fnull: Array) -> Array:
    """Constrained weighted least squares for every row and output at once (shap's ``solve``).

    shap regresses ``ey - fnull - m_L (fx - fnull)`` on ``m_i - m_L`` (the
    last feature eliminated). The normal equations are formed here from the
    weighted Gram matrix of the masks, ``G = M' W M``, and ``h = M' W (ey -
    fnull)``: ``lhs_ij = G_ij - G_iL - G_Lj + G_LL`` and
    ``rhs_i = h_i - h_L - (G_iL - G_LL)(fx - fnull)``, one batched product
    over all rows for each.
    """
    eyadj = ey - fnull
    rows = len(masks)
    # G = (sqrt(W) M)' (sqrt(W) M) and h = (sqrt(W) M)' sqrt(W) (ey - fnull): one weighted copy of the masks.
    root = np.sqrt(weights)[:, :, None]
    sw = masks * root
    swt = sw.transpose(0, 2, 1)
    gram = np.matmul(swt, sw)
    h = np.matmul(swt, root * eyadj)
    dfx = fx - fnull  # (rows, d)
    g_il = gram[:, :-1, -1]  # (rows, m-1)
    g_ll = gram[:, -1, -1]
    lhs = gram[:, :-1, :-1] - g_il[:, :, None] - g_il[:, None, :] + g_ll[:, None, None]
    rhs = (h[:, :-1] - h[:, -1:]) - (g_il - g_ll[:, None])[:, :, None] * dfx[:, None, :]
    try:
        sol = np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError:
        sol = np.empty_like(rhs)
        for r in range(rows):
            try:
                sol[r] = np.linalg.solve(lhs[r], rhs[r])
            except np.linalg.LinAlgError:
                mk = masks[r].astype(np.float64)
                design = mk[:, :-1] - mk[:, -1:]
                y = eyadj[r] - mk[:, -1:] * dfx[r]
                sw = np.sqrt(weights[r])[:, None]
                sol[r] = np.linalg.lstsq(sw * design, sw * y, rcond=None)[0]
    last = dfx - sol.sum(axis=1)
    return np.concatenate([sol, last[:, None, :]], axis=1)
