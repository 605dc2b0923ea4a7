"""Maximum mean discrepancy with every permutation in one matrix product.

The statistic is alibi-detect's (``MMDDrift``, PyTorch backend): the
unbiased MMD² with a Gaussian RBF kernel ``exp(-||x - y||² / (2 σ²))`` whose
bandwidth is, unless given, the median heuristic on the reference sample
(the median of the off-diagonal squared distances, ``σ = sqrt(median / 2)``).
alibi-detect permutes the (n + m)² kernel matrix once per permutation; here
the permutations are the columns of an indicator matrix ``A`` (1 where a row
is assigned to the reference side), and with ``KA = K @ A``

* ``sum K_xx = a·Ka``, ``sum K_xy = a·K1 - a·Ka``,
  ``sum K_yy = 1·K1 - 2 a·K1 + a·Ka``,

so all permuted statistics cost one (n + m) × (n + m) × P product (float32,
in PyTorch, whose MKL runs it at the CPU's full vector width). The
p-value is ``(k + 1) / (P + 1)`` where ``k`` permuted statistics are at least
the observed one; alibi-detect reports ``k / P``, which can be 0 (alibi-detect
issue 960). Both sides are sampled to at most ``max_per_side`` rows first
(the kernel matrix is (n + m)² floats) and the sizes are recorded.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.drift.report import MultivariateDrift
from workers.engine.errors import EngineError

__all__ = ["cap_rows", "mmd_test", "permutation_indicators", "sigma_median"]


def cap_rows(x: Array, cap: int, rng: np.random.Generator) -> Array:
    if x.shape[0] <= cap:
        return x
    return x[np.sort(rng.choice(x.shape[0], cap, replace=False))]


def _squared_distances(z: Any) -> Any:
    """All pairwise squared distances of the rows of ``z`` (a torch tensor), on one (n + m)² buffer.

    One ``addmm`` writes ``|z_j|² - 2 z_i·z_j`` and one in-place add and clamp
    finish it: three passes over the matrix, where numpy needs six. torch's
    BLAS (MKL) also runs the products at the CPU's full vector width, which the
    numpy wheel's OpenBLAS does not detect on every virtual machine.
    """
    import torch

    sq = (z * z).sum(1)
    d = torch.addmm(sq[None, :], z, z.T, alpha=-2.0)
    d += sq[:, None]
    return d.clamp_(min=1e-30)


def sigma_median(d_ref: Array) -> float:
    """alibi-detect's median heuristic on the reference's own squared distances."""
    d_ref = np.asarray(d_ref)
    n = d_ref.shape[0]
    k = n + (d_ref.size - n) // 2 - 1
    return float(np.sqrt(0.5 * float(np.partition(d_ref, k, axis=None)[k])))


def permutation_indicators(permutations: Array, n_ref: int) -> Array:
    """(n + m) × P matrix, column p is 1 for the rows permutation p puts on the reference side.

    A permutation is given as alibi-detect draws it: ``perm[i]`` is the row
    that lands at position ``i``, and the first ``n_ref`` positions are the
    reference side.
    """
    perms = np.asarray(permutations)
    a = np.zeros((perms.shape[1], perms.shape[0]), dtype=np.float32)
    cols = np.repeat(np.arange(perms.shape[0]), n_ref)
    a[perms[:, :n_ref].ravel(), cols] = 1.0
    return a


def _mmd2_from_sums(s_xx: Array, s_xy: Array, s_yy: Array, n: int, m: int) -> Array:
    return np.asarray(s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m))


def mmd_test(
    x_ref: Array,
    x_cur: Array,
    *,
    alpha: float = 0.05,
    n_permutations: int = 100,
    sigma: float | None = None,
    max_per_side: int = 2000,
    seed: int = 0,
    permutations: Array | None = None,
    columns: tuple[str, ...] = (),
    detector: str = "mmd",
) -> MultivariateDrift:
    """MMD² permutation test between two samples (rows are instances)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = np.asarray(x_ref, dtype=np.float64).reshape(len(x_ref), -1)
    y = np.asarray(x_cur, dtype=np.float64).reshape(len(x_cur), -1)
    if x.shape[1] != y.shape[1]:
        raise EngineError(f"the samples have {x.shape[1]} and {y.shape[1]} features")
    x, y = cap_rows(x, max_per_side, rng), cap_rows(y, max_per_side, rng)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise EngineError("MMD needs at least two rows on each side")
    import torch

    # The kernel matrix in float32, as alibi-detect computes it: half the memory
    # and twice the speed of float64; the product's sums are combined in float64.
    z = torch.from_numpy(np.concatenate([x, y]).astype(np.float32))
    d = _squared_distances(z)
    if sigma is None:
        sigma = sigma_median(d[:n, :n].numpy())
    k = d.mul_(-1.0 / (2.0 * sigma**2)).exp_()
    k.fill_diagonal_(0.0)
    if permutations is None:
        permutations = np.stack([rng.permutation(n + m) for _ in range(n_permutations)]) if n_permutations else None
    # Column 0 is all ones (the kernel's row sums), column 1 the observed split,
    # then one column per permutation: every within-reference sum in one
    # (n + m)² × (P + 2) product.
    observed = np.zeros((n + m, 2), dtype=np.float32)
    observed[:, 0] = 1.0
    observed[:n, 1] = 1.0
    a = observed if permutations is None else np.hstack([observed, permutation_indicators(permutations, n)])
    ka = (k @ torch.from_numpy(a)).numpy().astype(np.float64)
    del d, k
    col, ka, a = ka[:, 0], ka[:, 1:], a[:, 1:].astype(np.float64)
    total = col.sum()
    s_xx = np.einsum("ij,ij->j", a, ka)
    a_k1 = col @ a
    s_xy = a_k1 - s_xx
    s_yy = total - 2.0 * a_k1 + s_xx
    mmd2 = _mmd2_from_sums(s_xx, s_xy, s_yy, n, m)
    stat, permuted = float(mmd2[0]), mmd2[1:]
    count = int((permuted >= stat).sum())
    p = (count + 1) / (permuted.size + 1)
    return MultivariateDrift(
        detector=detector,
        statistic=stat,
        p_value=p,
        drift=p < alpha,
        n_reference_sample=n,
        n_current_sample=m,
        p_value_k_over_n=count / permuted.size if permuted.size else None,
        permutations=int(permuted.size),
        columns=columns,
        params={"sigma": sigma, "kernel": "gaussian_rbf", "max_per_side": max_per_side},
        seconds=time.perf_counter() - start,
    )
