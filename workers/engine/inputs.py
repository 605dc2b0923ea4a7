"""Model input batches from a data set, exactly as every job feeds them.

Evaluation, parity, quantization calibration and profiling all take their
inputs from here, so a model sees the same arrays whichever job runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from workers.engine.datasets import iter_batches
from workers.engine.errors import EngineError
from workers.engine.formats import inspect_model
from workers.engine.types import DatasetRef, ModelSpec, TensorSpec

_NUMPY = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "float16": np.float16}


def _tabular_input(inputs: tuple[TensorSpec, ...], features: list[str]) -> TensorSpec:
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise EngineError(f"without a processing spec the model must take one rows x features input; it takes {names}")
    spec = inputs[0]
    if spec.shape is not None and len(spec.shape) != 2:
        raise EngineError(f"the model input {spec.name!r} is not 2-D (rows x features): declare a processing spec")
    width = spec.shape[1] if spec.shape else None
    if isinstance(width, int) and width != len(features):
        raise EngineError(
            f"the model input {spec.name!r} takes {width} features but the data set gives {len(features)}"
        )
    if spec.dtype not in _NUMPY:
        raise EngineError(f"the model input {spec.name!r} has type {spec.dtype}, which tabular data cannot feed")
    return spec


def input_batches(
    model: ModelSpec,
    data: DatasetRef,
    *,
    batch_size: int,
    max_rows: int | None = None,
    feature_columns: list[str] | None = None,
    processing: dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield named input arrays of at most `batch_size` rows, `max_rows` in all."""
    if processing and processing.get("input"):
        from workers.engine.processing.feed import processed_batches

        yield from processed_batches(
            model, data, processing, batch_size=batch_size, max_rows=max_rows, tokenizer_path=tokenizer_path
        )
        return
    features = feature_columns or [c for c in data.columns if c != data.label_column]
    info = inspect_model(model.path, model.format, weights_path=model.weights_path)
    spec = _tabular_input(info.inputs, features)
    dtype = _NUMPY[spec.dtype]
    remaining = max_rows if max_rows is not None else float("inf")
    for frame in iter_batches(data, batch_size, columns=features):
        if remaining <= 0:
            return
        frame = frame.iloc[: int(min(len(frame), remaining))]
        remaining -= len(frame)
        if frame.isna().to_numpy().any():
            bad = [c for c in features if frame[c].isna().any()]
            raise EngineError(f"missing values in feature columns {', '.join(bad)}: the model cannot take them")
        yield {spec.name: np.ascontiguousarray(frame.to_numpy(dtype=dtype))}


def raw_rows(
    model: ModelSpec,
    data: DatasetRef,
    *,
    rows: int,
    feature_columns: list[str] | None = None,
    processing: dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
) -> tuple[Any, Any]:
    """Up to `rows` raw rows of the data set and the callable that turns a slice of them into model inputs.

    Profiles time the callable and the model together ("preprocessing in") or
    the model alone on inputs built before timing ("out").
    """
    import pandas as pd

    if processing and processing.get("input"):
        from workers.engine.processing import parse_processing_spec
        from workers.engine.processing.pipeline import InputBuilder, input_columns, spec_frames

        spec = parse_processing_spec(processing)
        info = inspect_model(model.path, model.format, weights_path=model.weights_path)
        builder = InputBuilder(spec.input, info.inputs, tokenizer_path)
        frames = []
        for frame in spec_frames(data, min(rows, 1024), input_columns(spec.input), spec.input):
            frames.append(frame)
            if sum(len(f) for f in frames) >= rows:
                break
        table = pd.concat(frames, ignore_index=True).iloc[:rows] if frames else pd.DataFrame()
        return table, lambda chunk, specs: builder.build(chunk.reset_index(drop=True), 0)
    from workers.engine.latency.inputs import tabular_preprocess

    features = feature_columns or [c for c in data.columns if c != data.label_column]
    frames = []
    for frame in iter_batches(data, min(rows, 4096), columns=features):
        frames.append(frame)
        if sum(len(f) for f in frames) >= rows:
            break
    table = pd.concat(frames, ignore_index=True).iloc[:rows] if frames else pd.DataFrame(columns=features)
    if table.isna().to_numpy().any():
        raise EngineError("the profiling rows have missing feature values: the model cannot take them")
    return table, tabular_preprocess
