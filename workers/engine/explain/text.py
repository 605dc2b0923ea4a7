"""Text explanations: one attribution per token, against a pad or mask token baseline.

A row is its token ids. A token left out of a coalition is replaced by the
baseline token (``[PAD]``, or ``[MASK]`` for masked language models) while
special tokens (``[CLS]``, ``[SEP]``) and padding stay as they are, so they
never count as features. Rows are explained one at a time, each against its
own baseline row; the attention mask is the row's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.explain.forward import Forward
from workers.engine.explain.kernel_shap import kernel_shap

__all__ = ["token_attributions", "token_baseline"]


def token_baseline(ids: Array, keep: Array, baseline_id: int) -> Array:
    """The row with every token that is not kept (special tokens, padding) replaced by ``baseline_id``."""
    return np.where(keep, ids, baseline_id)


def _with_mask(predict: Callable[[Array, Array], Array], mask: Array) -> Callable[[Array], Array]:
    """``predict`` on a batch of variants of one row, each with that row's attention mask."""

    def call(x: Array) -> Array:
        return predict(x.astype(np.int64), np.repeat(mask, len(x), axis=0))

    return call


def token_attributions(
    predict: Callable[[Array, Array], Array],
    ids: Array,
    attention_mask: Array,
    special: Array,
    *,
    baseline_id: int,
    targets: Array,
    nsamples: int | str = "auto",
    seed: int = 0,
    batch_size: int = 256,
) -> list[dict[str, Any]]:
    """KernelSHAP over the tokens of each row.

    Parameters
    ----------
    predict:
        ``(ids, attention_mask) -> outputs`` for a batch.
    ids, attention_mask, special:
        (rows, length) arrays; ``special`` is true for special tokens.

    Returns
    -------
    list
        Per row: ``{"values": per-position attribution (0 for special tokens
        and padding), "base_value", "output", "rows_evaluated"}``.
    """
    out = []
    for r in range(len(ids)):
        row, mask = ids[r : r + 1], attention_mask[r : r + 1]
        keep = special[r : r + 1] | (mask == 0)
        forward = Forward(
            _with_mask(predict, mask),
            batch_size=batch_size,
            dtype=np.int64,
        )
        baseline = token_baseline(row, keep, baseline_id)
        sv = kernel_shap(forward, row, baseline, nsamples=nsamples, seed=seed + r)
        t = int(targets[r])
        out.append(
            {
                "values": sv.values[0, :, t],
                "base_value": float(sv.base_values[t]),
                "output": float(sv.outputs[0, t]),
                "rows_evaluated": forward.stats.rows,
            }
        )
    return out
