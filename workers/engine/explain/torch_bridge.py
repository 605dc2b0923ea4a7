"""A numpy :class:`~workers.engine.explain.forward.Forward` seen from torch, for captum's perturbation methods.

captum calls its ``forward_func`` with torch tensors and expects a tensor
back. Perturbation methods never differentiate it, so the bridge hands the
block to the numpy forward (any engine, large batches) and wraps the answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from workers.engine.explain.forward import Forward

__all__ = ["as_torch_function"]


def as_torch_function(forward: Forward) -> Callable[[torch.Tensor], torch.Tensor]:
    """``tensor -> tensor`` over ``forward``; outputs are ``(n, d)`` float64."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(forward(x.detach().cpu().numpy())))

    return fn
