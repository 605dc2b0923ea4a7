"""The forward function every explainer calls: a numpy batch in, a 2-D numpy array of outputs back.

Explainers never see a backend. A perturbation method builds a large block of
perturbed rows and hands it to a :class:`Forward`, which cuts it into batches
of the serving batch size, calls the model once per batch and counts the rows
it evaluated and the time spent in the model, for the explanation's budget.
Anything that maps an array to an array can be wrapped: a loaded backend's
``predict`` (:func:`forward_from_predict`), a torch module, a plain function
in a test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError

__all__ = ["Forward", "ForwardStats", "forward_from_predict"]

ArrayFn = Callable[[Array], Array]


@dataclass
class ForwardStats:
    """Model rows evaluated, model calls made and seconds spent inside the model."""

    rows: int = 0
    calls: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"model_rows": self.rows, "model_calls": self.calls, "model_seconds": round(self.seconds, 6)}


class Forward:
    """A model as a function of numpy batches, called in large batches.

    Parameters
    ----------
    fn:
        Maps an array of shape ``(n, *input_shape)`` to outputs of shape
        ``(n,)`` or ``(n, d)``.
    batch_size:
        Rows per model call; larger blocks are cut into slices of this size.
    dtype:
        The dtype the model takes; blocks are cast once before slicing.
    output_names:
        Names of the output columns (class labels), for the result.

    Notes
    -----
    Outputs come back as float64 ``(n, d)``. ``stats`` accumulates over every
    call, so the rows an explanation evaluated are read after it finishes.
    """

    def __init__(
        self,
        fn: ArrayFn,
        *,
        batch_size: int = 8192,
        dtype: Any = np.float32,
        output_names: tuple[str, ...] | None = None,
    ) -> None:
        if batch_size < 1:
            raise EngineError(f"batch_size must be at least 1, got {batch_size}")
        self.fn = fn
        self.batch_size = int(batch_size)
        self.dtype = np.dtype(dtype)
        self.output_names = output_names
        self.stats = ForwardStats()

    def __call__(self, x: Array) -> Array:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        n = len(x)
        parts: list[Array] = []
        for start in range(0, n, self.batch_size):
            chunk = x[start : start + self.batch_size]
            t0 = time.perf_counter()
            out = np.asarray(self.fn(chunk))
            self.stats.seconds += time.perf_counter() - t0
            self.stats.calls += 1
            if out.shape[0] != len(chunk):
                raise EngineError(
                    f"the model returned {out.shape[0]} rows for a batch of {len(chunk)}; an explanation needs "
                    "one output row per input row"
                )
            parts.append(out.reshape(len(chunk), -1))
        self.stats.rows += n
        if not parts:
            return np.zeros((0, len(self.output_names or ()) or 1))
        return np.concatenate(parts).astype(np.float64, copy=False)

    def reset(self) -> ForwardStats:
        """Return the statistics so far and start counting again."""
        stats, self.stats = self.stats, ForwardStats()
        return stats


def forward_from_predict(
    predict: Callable[[dict[str, Array]], Mapping[str, Array]],
    *,
    input_name: str,
    output_name: str,
    batch_size: int = 8192,
    dtype: Any = np.float32,
    output_names: tuple[str, ...] | None = None,
) -> Forward:
    """A :class:`Forward` over a backend's ``predict`` (named arrays in and out) for one input and one output."""

    def fn(x: Array) -> Array:
        outputs = predict({input_name: x})
        if output_name not in outputs:
            raise EngineError(f"the model has no output {output_name!r}; it returns: {', '.join(sorted(outputs))}")
        return outputs[output_name]

    return Forward(fn, batch_size=batch_size, dtype=dtype, output_names=output_names)
