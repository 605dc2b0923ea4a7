"""Coalitions for KernelSHAP, sampled and weighted as ``shap.KernelExplainer`` does, for many rows at once.

``shap.KernelExplainer.explain`` builds its design one row and one sample at
a time in Python. The same design is built here as arrays, for every row in
one go:

* subset sizes are weighted by the Shapley kernel ``(M - 1) / (s (M - s))``,
  sizes ``s`` and ``M - s`` folded together;
* sizes whose every subset (and complement) fits in what is left of the
  budget are enumerated completely, each subset weighted
  ``weight[s] / C(M, s)`` (halved for paired sizes);
* the rest of the budget is drawn at random: a size from the remaining
  weights, then a uniformly random subset of that size, then its complement
  (paired sizes); a subset drawn again adds 1 to the weight of its first
  draw instead of taking a new slot; drawing stops when the budget is full
  (at most ``4 × budget`` draws); the random part's weights are scaled to
  the kernel weight left over.

The draws are iid, so drawing candidates in blocks and keeping the prefix a
sequential loop would have kept gives the same distribution of designs as
shap's loop; only the random stream differs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from workers.engine.arrays import Array

__all__ = ["Coalitions", "kernel_coalitions", "sample_budget"]


@dataclass(frozen=True)
class Coalitions:
    """Per row: ``masks`` (rows, samples, M) bool, ``weights`` (rows, samples) float64."""

    masks: Array
    weights: Array
    #: Samples from completely enumerated subset sizes (shared by every row).
    enumerated: int


def sample_budget(m: int, nsamples: int | str = "auto") -> int:
    """The number of coalitions shap uses for ``m`` varying features and ``nsamples``."""
    n = 2 * m + 2**11 if nsamples == "auto" else int(nsamples)
    max_samples = 2**m - 2 if m <= 30 else 2**30
    return max(0, min(n, max_samples))


def _size_weights(m: int) -> tuple[Array, int, int]:
    num_sizes = math.ceil((m - 1) / 2)
    num_paired = (m - 1) // 2
    w = np.array([(m - 1.0) / (i * (m - i)) for i in range(1, num_sizes + 1)])
    w[:num_paired] *= 2
    return w / w.sum(), num_sizes, num_paired


def _enumerated(m: int, nsamples: int) -> tuple[Array, Array, int]:
    weight, num_sizes, num_paired = _size_weights(m)
    left = float(nsamples)
    remaining = weight.copy()
    masks: list[Array] = []
    weights: list[Array] = []
    full = 0
    for size in range(1, num_sizes + 1):
        paired = size <= num_paired
        nsubsets = math.comb(m, size) * (2 if paired else 1)
        if left * remaining[size - 1] / nsubsets < 1.0 - 1e-8:
            break
        full += 1
        left -= nsubsets
        if remaining[size - 1] < 1.0:
            remaining /= 1 - remaining[size - 1]
        w = weight[size - 1] / math.comb(m, size) / (2.0 if paired else 1.0)
        idx = np.array(list(itertools.combinations(range(m), size)), dtype=np.int64)
        block = np.zeros((len(idx), m), dtype=bool)
        np.put_along_axis(block, idx, True, axis=1)
        if paired:
            # Each subset followed by its complement, as shap adds them.
            block = np.stack([block, ~block], axis=1).reshape(-1, m)
        masks.append(block)
        weights.append(np.full(len(block), w))
    if not masks:
        return np.zeros((0, m), dtype=bool), np.zeros(0), 0
    return np.concatenate(masks), np.concatenate(weights), full


def kernel_coalitions(m: int, rows: int, nsamples: int | str, rng: np.random.Generator) -> Coalitions:
    """Coalitions for ``rows`` rows over ``m`` features (``m >= 2``), drawn independently per row."""
    total = sample_budget(m, nsamples)
    fixed_masks, fixed_weights, full = _enumerated(m, total)
    weight, num_sizes, num_paired = _size_weights(m)
    nfixed = len(fixed_masks)
    left = total - nfixed
    masks = np.zeros((rows, total, m), dtype=bool)
    weights = np.zeros((rows, total))
    masks[:, :nfixed] = fixed_masks
    weights[:, :nfixed] = fixed_weights
    if full != num_sizes and left > 0:
        rw = weight.copy()
        rw[:num_paired] /= 2  # each paired draw yields two samples
        rw = rw[full:]
        rw /= rw.sum()
        rmasks, rweights = _random_part(m, rows, left, rw, full, num_paired, rng)
        filled = rweights.sum(axis=1, keepdims=True)
        rweights *= np.divide(weight[full:].sum(), filled, out=np.zeros_like(filled), where=filled > 0)
        masks[:, nfixed:] = rmasks
        weights[:, nfixed:] = rweights
    return Coalitions(masks=masks, weights=weights, enumerated=nfixed)


def _random_part(
    m: int, rows: int, left: int, size_p: Array, full: int, num_paired: int, rng: np.random.Generator
) -> tuple[Array, Array]:
    cap = 4 * left
    # A paired draw fills two slots, so about left/2 draws usually suffice; draw more only if some row needs it.
    k = min(cap, left // 2 + 16 + left // 16)
    sizes = np.empty((rows, 0), dtype=np.int64)
    cand = np.empty((rows, 0, m), dtype=bool)
    words = -(-m // 64)
    hasher = rng.integers(1, 2**63, size=words, dtype=np.uint64) | np.uint64(1)
    while True:
        extra = k - sizes.shape[1]
        new_sizes = rng.choice(len(size_p), size=(rows, extra), p=size_p) + full + 1
        # A uniformly random subset of each size: the features whose random key is among the `size` smallest.
        keys = rng.random((rows, extra, m), dtype=np.float32)
        kth = np.take_along_axis(np.sort(keys, axis=-1), (new_sizes - 1)[:, :, None], axis=-1)
        sizes = np.concatenate([sizes, new_sizes], axis=1)
        cand = np.concatenate([cand, keys <= kth], axis=1)
        done, result = _accept(cand, sizes, left, num_paired, hasher)
        if done or k >= cap:
            return result
        k = min(cap, 2 * k)


def _codes(cand: Array, hasher: Array) -> Array:
    """One uint64 per mask: the bits themselves up to 64 features, a multiplicative hash of the words beyond."""
    rows, k, m = cand.shape
    packed = np.packbits(cand, axis=-1, bitorder="little")
    pad = 8 * len(hasher) - packed.shape[-1]
    if pad:
        packed = np.concatenate([packed, np.zeros((rows, k, pad), dtype=np.uint8)], axis=-1)
    words = np.ascontiguousarray(packed).view(np.uint64)
    if words.shape[-1] == 1:
        return words[..., 0]
    with np.errstate(over="ignore"):
        return np.asarray((words * hasher).sum(axis=-1))


def _accept(cand: Array, sizes: Array, left: int, num_paired: int, hasher: Array) -> tuple[bool, tuple[Array, Array]]:
    rows, k, m = cand.shape
    codes = _codes(cand, hasher)
    order = np.argsort(codes, axis=1, kind="stable")
    sorted_codes = np.take_along_axis(codes, order, axis=1)
    starts = np.ones((rows, k), dtype=bool)
    starts[:, 1:] = sorted_codes[:, 1:] != sorted_codes[:, :-1]
    # Index (in draw order) of each draw's first occurrence.
    run_start = np.where(starts, np.arange(k)[None, :], 0)
    run_start = np.maximum.accumulate(run_start, axis=1)
    first_sorted = np.take_along_axis(order, run_start, axis=1)
    first = np.empty_like(order)
    np.put_along_axis(first, order, first_sorted, axis=1)
    is_new = first == np.arange(k)[None, :]
    paired = sizes <= num_paired
    consume = is_new * (1 + paired)
    cum = np.cumsum(consume, axis=1)
    filled = cum[:, -1] >= left
    # Draws processed: up to and including the first one that fills the budget.
    last = np.where(filled, np.argmax(cum >= left, axis=1), k - 1)
    processed = np.arange(k)[None, :] <= last[:, None]
    slot = cum - consume  # where each new draw's mask goes
    masks = np.zeros((rows, left, m), dtype=bool)
    weights = np.zeros((rows, left))
    flat_first = (np.arange(rows)[:, None] * k + first)[processed]
    counts = np.bincount(flat_first, minlength=rows * k).reshape(rows, k).astype(np.float64)
    take = processed & is_new
    r, j = np.nonzero(take)
    masks[r, slot[r, j]] = cand[r, j]
    weights[r, slot[r, j]] = counts[r, j]
    comp = paired[r, j] & (slot[r, j] + 1 < left)
    rc, jc = r[comp], j[comp]
    masks[rc, slot[rc, jc] + 1] = ~cand[rc, jc]
    weights[rc, slot[rc, jc] + 1] = counts[rc, jc]
    return bool(filled.all()), (masks, weights)
