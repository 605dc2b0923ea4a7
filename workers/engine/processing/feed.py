"""Model input batches built by a processing spec, for jobs that run a model without scoring it.

Parity, quantization calibration and profiling take their inputs from
:func:`processed_batches` (through :func:`workers.engine.inputs.input_batches`),
the evaluate job from the same :class:`InputBuilder`, so every job feeds a
model the same arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from workers.engine.errors import EngineError
from workers.engine.formats import inspect_model
from workers.engine.processing.pipeline import InputBuilder, check_data_format, input_columns, spec_frames
from workers.engine.processing.spec import ProcessingSpec, parse_processing_spec
from workers.engine.types import DatasetRef, ModelSpec

__all__ = ["processed_batches"]


def processed_batches(
    model: ModelSpec,
    data: DatasetRef,
    processing: ProcessingSpec | dict[str, Any],
    *,
    batch_size: int,
    max_rows: int | None = None,
    tokenizer_path: str | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield the model's named inputs for the rows of ``data``, at most ``batch_size`` rows each.

    Parameters
    ----------
    model:
        The model file; its declared inputs name the arrays (a format that
        records no signature takes the names from the spec).
    data:
        The data set: CSV/Parquet for tabular and text specs, an ImageFolder
        zip for image specs.
    processing:
        The model version's spec, parsed or as stored JSON; it must have an
        input part.
    batch_size, max_rows:
        Rows per batch, and in all (``None``: every row).
    tokenizer_path:
        The model's ``tokenizer.json``, for a text spec.

    Raises
    ------
    EngineError
        (permanent) when the spec does not fit the model or the data set, or
        a row cannot be prepared (the message names the data row).
    """
    spec = processing if isinstance(processing, ProcessingSpec) else parse_processing_spec(processing)
    if spec.input is None:
        raise EngineError("the processing spec has no input part to build model inputs with")
    if batch_size < 1:
        raise EngineError(f"batch_size must be at least 1, got {batch_size}")
    check_data_format(spec.input, data)
    info = inspect_model(model.path, model.format, weights_path=model.weights_path)
    builder = InputBuilder(spec.input, info.inputs, tokenizer_path)
    columns = input_columns(spec.input)
    absent = [c for c in columns if data.columns and c not in data.columns]
    if absent:
        raise EngineError(f"the processing spec reads columns the data set lacks: {', '.join(absent)}")
    remaining = max_rows if max_rows is not None else None
    done = 0
    for frame in spec_frames(data, batch_size, columns, spec.input):
        if remaining is not None:
            if remaining <= 0:
                return
            frame = frame.iloc[:remaining]
            remaining -= len(frame)
        yield builder.build(frame, done)
        done += len(frame)
