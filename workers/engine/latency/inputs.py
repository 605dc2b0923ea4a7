"""What a profile feeds the model: synthetic tensors or real rows from a data set.

An *inputs factory* is called once per profile cell, after the backend has
loaded, with the cell's batch size and the model's inputs as the runtime
sees them, and returns :class:`CellInputs`: a few ready batches built before
any timing starts, and optionally the raw rows and the preprocessing that
turns them into those batches, so a cell can be measured with the
preprocessing inside the timed region as well as without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.feed.convert import INPUT_DTYPES, tabular_input, to_matrix
from workers.engine.types import TensorSpec

__all__ = [
    "CellInputs",
    "InputsFactory",
    "RowsInputs",
    "SyntheticInputs",
    "synthetic_batch",
    "tabular_preprocess",
]

Batch = dict[str, Array]
Preprocess = Callable[[Any], Batch]

# Integer inputs are usually indices (token ids, categories): small values
# are valid for any vocabulary or embedding table.
_INT_HIGH = 2


@dataclass(frozen=True)
class CellInputs:
    """Inputs for one cell, all built before timing starts.

    Parameters
    ----------
    batches:
        Model-ready input dicts, cycled through call after call (a few
        distinct batches keep the timing from depending on one lucky input).
    source:
        ``"synthetic"`` or ``"dataset"``, recorded with the result.
    raw:
        The raw rows behind each batch (same order), for the
        with-preprocessing measurement; ``None`` if there is no preprocessing.
    preprocess:
        Turns one element of ``raw`` into a model-ready dict.
    description:
        A line for the result, e.g. ``"synthetic N(0,1) float32"``.
    """

    batches: tuple[Batch, ...]
    source: str
    raw: tuple[Any, ...] | None = None
    preprocess: Preprocess | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.batches:
            raise EngineError("the inputs factory returned no batches")
        if (self.raw is None) != (self.preprocess is None):
            raise EngineError("raw rows and a preprocess callable go together: give both or neither")
        if self.raw is not None and len(self.raw) != len(self.batches):
            raise EngineError("give one raw batch per model-ready batch")

    @property
    def has_preprocessing(self) -> bool:
        """Whether the with-preprocessing variant can be measured."""
        return self.preprocess is not None


class InputsFactory(Protocol):
    """Builds a cell's inputs from its batch size and the model's input specs."""

    def __call__(self, batch_size: int, specs: tuple[TensorSpec, ...]) -> CellInputs: ...


#: Synthetic inputs cover every element type the feed takes but text.
_DTYPES: dict[str, Any] = {name: dtype for name, dtype in INPUT_DTYPES.items() if dtype is not object}


def _shape(spec: TensorSpec, batch_size: int, dims: dict[str, int]) -> tuple[int, ...]:
    if spec.shape is None:
        if spec.name in dims:
            return (batch_size, dims[spec.name])
        raise EngineError(
            f"input {spec.name!r} has no declared shape: give its size as dims={{{spec.name!r}: N}} "
            "(taken as batch x N)"
        )
    shape: list[int] = []
    for axis, dim in enumerate(spec.shape):
        if axis == 0:
            # The first axis is the batch, whatever the model calls it (a
            # model exported with a fixed batch of 1 is reshaped by the
            # runtimes that allow it, and refused by the others).
            shape.append(batch_size)
        elif isinstance(dim, int) and dim >= 0:
            shape.append(dim)
        elif isinstance(dim, str) and dim in dims:
            shape.append(dims[dim])
        elif f"{spec.name}:{axis}" in dims:
            shape.append(dims[f"{spec.name}:{axis}"])
        else:
            raise EngineError(
                f"input {spec.name!r} has a dynamic axis {axis} ({dim!r}): give its size as "
                f"dims={{{(dim if isinstance(dim, str) else f'{spec.name}:{axis}')!r}: N}}"
            )
    return tuple(shape)


def synthetic_batch(
    specs: Sequence[TensorSpec],
    batch_size: int,
    *,
    dims: dict[str, int] | None = None,
    rng: np.random.Generator | None = None,
) -> Batch:
    """Random inputs of the model's signature.

    Floating-point inputs are standard normal, integer inputs 0 or 1 (valid
    indices into any table), booleans random. The first axis is the batch;
    other symbolic axes are looked up in ``dims`` by their name, or as
    ``"input_name:axis"``.

    Raises
    ------
    EngineError
        For an unsupported element type (strings) or a dynamic axis with no size.
    """
    rng = rng or np.random.default_rng(0)
    dims = dims or {}
    batch: Batch = {}
    for spec in specs:
        dtype = _DTYPES.get(spec.dtype)
        if dtype is None:
            raise EngineError(
                f"input {spec.name!r} is {spec.dtype}: synthetic inputs cover numbers and booleans; "
                "profile it with rows from a data set"
            )
        shape = _shape(spec, batch_size, dims)
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            value = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            value = rng.integers(0, _INT_HIGH, shape).astype(dtype)
        batch[spec.name] = np.ascontiguousarray(value)
    return batch


@dataclass(frozen=True)
class SyntheticInputs:
    """Inputs factory: random tensors of the model's signature.

    Parameters
    ----------
    dims:
        Sizes of symbolic axes other than the batch, by axis name or
        ``"input:axis"`` (e.g. ``{"sequence": 128}``).
    distinct:
        How many different batches to cycle through.
    seed:
        Seed of the generator, so two profiles feed the same numbers.
    """

    dims: dict[str, int] | None = None
    distinct: int = 4
    seed: int = 0

    def __call__(self, batch_size: int, specs: tuple[TensorSpec, ...]) -> CellInputs:
        rng = np.random.default_rng(self.seed)
        batches = tuple(
            synthetic_batch(specs, batch_size, dims=self.dims, rng=rng) for _ in range(max(1, self.distinct))
        )
        kinds = ", ".join(f"{s.name}:{s.dtype}{list(batches[0][s.name].shape)}" for s in specs)
        return CellInputs(batches=batches, source="synthetic", description=f"synthetic ({kinds})")


@dataclass(frozen=True)
class RowsInputs:
    """Inputs factory: real rows, with the preprocessing that makes model inputs of them.

    Parameters
    ----------
    rows:
        The raw rows, anything that supports ``len`` and slicing ``rows[a:b]``
        (a list of images or strings, a numpy array, a ``pandas.DataFrame``).
    preprocess:
        ``preprocess(rows[a:b], specs) -> {input name: array}``: everything
        the service does to a request before the model sees it.
    distinct:
        How many consecutive slices of ``batch_size`` rows to prepare; rows
        wrap around when there are fewer.
    description:
        A line for the result, e.g. the data set's name.

    Notes
    -----
    The model-only measurement feeds batches preprocessed before timing; the
    with-preprocessing measurement times ``preprocess`` and ``predict``
    together on the same raw slices, so the difference is the cost of the
    preprocessing alone.
    """

    rows: Any
    preprocess: Callable[[Any, tuple[TensorSpec, ...]], Batch]
    distinct: int = 4
    description: str = "rows"

    def __call__(self, batch_size: int, specs: tuple[TensorSpec, ...]) -> CellInputs:
        total = len(self.rows)
        if total == 0:
            raise EngineError("the data set has no rows to profile with")
        raw: list[Any] = []
        for index in range(max(1, self.distinct)):
            start = (index * batch_size) % total
            if start + batch_size <= total:
                raw.append(self.rows[start : start + batch_size])
            else:
                raw.append(_wrapped(self.rows, start, batch_size, total))
        preprocess = self.preprocess

        def run(chunk: Any) -> Batch:
            return preprocess(chunk, specs)

        batches = tuple(run(chunk) for chunk in raw)
        return CellInputs(
            batches=batches, source="dataset", raw=tuple(raw), preprocess=run, description=self.description
        )


def _wrapped(rows: Any, start: int, size: int, total: int) -> Any:
    indices = [(start + i) % total for i in range(size)]
    if hasattr(rows, "iloc"):
        return rows.iloc[indices]
    if isinstance(rows, np.ndarray):
        return rows[indices]
    return [rows[i] for i in indices]


def tabular_preprocess(rows: Any, specs: tuple[TensorSpec, ...]) -> Batch:
    """Preprocessing of a plain tabular model: one ``rows x features`` input.

    ``rows`` is a ``pandas.DataFrame`` (or a 2-D array) of the feature
    columns in the model's order; it becomes one contiguous array of the
    input's element type by the rules of the input feed, as evaluation
    feeds it.
    """
    if hasattr(rows, "columns"):
        names = [str(c) for c in rows.columns]
        columns = {name: rows[column].to_numpy() for name, column in zip(names, rows.columns, strict=True)}
    else:
        values = np.asarray(rows)
        names = [f"column {j}" for j in range(values.shape[1] if values.ndim == 2 else 0)]
        columns = {name: values[:, j] for j, name in enumerate(names)}
    spec = tabular_input(specs, names)
    return {spec.name: to_matrix(columns, names, spec)}
