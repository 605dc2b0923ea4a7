"""Feeds for jobs that run a model file without scoring it: parity, quantization, profiles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from workers.engine.errors import EngineError
from workers.engine.feed.convert import tabular_input, to_matrix
from workers.engine.feed.core import Feed
from workers.engine.formats import inspect_model
from workers.engine.processing.spec import ProcessingSpec, parse_processing_spec
from workers.engine.types import DatasetRef, ModelSpec, TensorSpec

if TYPE_CHECKING:
    from workers.engine.arrays import Array

__all__ = ["input_batches", "model_feed", "processed_batches", "raw_rows"]


def model_feed(
    model: ModelSpec,
    data: DatasetRef,
    *,
    feature_columns: list[str] | None = None,
    processing: ProcessingSpec | dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
    select: Any = None,
) -> Feed:
    """The feed of ``model`` (its inputs as its file declares them) over ``data``.

    ``processing`` is the model version's spec, parsed or as stored JSON;
    without an input part, rows feed the model's single rows x features
    input (``feature_columns``, default every column but the label).
    ``select`` (a boolean row mask) reads only the rows it marks.
    """
    spec = _parse(processing)
    info = inspect_model(model.path, model.format, weights_path=model.weights_path)
    if spec is not None and spec.input is not None:
        return Feed(data, info.inputs, processing=spec.input, tokenizer_path=tokenizer_path, select=select)
    return Feed(data, info.inputs, feature_columns=feature_columns, select=select)


def input_batches(
    model: ModelSpec,
    data: DatasetRef,
    *,
    batch_size: int,
    max_rows: int | None = None,
    feature_columns: list[str] | None = None,
    processing: ProcessingSpec | dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
) -> Iterator[dict[str, Array]]:
    """Named input arrays of at most ``batch_size`` rows, ``max_rows`` in all, as every job feeds them."""
    feed = model_feed(
        model, data, feature_columns=feature_columns, processing=processing, tokenizer_path=tokenizer_path
    )
    yield from feed.batches(batch_size, max_rows=max_rows)


def processed_batches(
    model: ModelSpec,
    data: DatasetRef,
    processing: ProcessingSpec | dict[str, Any],
    *,
    batch_size: int,
    max_rows: int | None = None,
    tokenizer_path: str | None = None,
) -> Iterator[dict[str, Array]]:
    """Like :func:`input_batches`, for a processing spec that must have an input part.

    Raises
    ------
    EngineError
        (permanent) when the spec does not fit the model or the data set, or
        a row cannot be prepared (the message names the data row).
    """
    spec = _parse(processing)
    if spec is None or spec.input is None:
        raise EngineError("the processing spec has no input part to build model inputs with")
    if batch_size < 1:
        raise EngineError(f"batch_size must be at least 1, got {batch_size}")
    yield from input_batches(
        model, data, batch_size=batch_size, max_rows=max_rows, processing=spec, tokenizer_path=tokenizer_path
    )


def raw_rows(
    model: ModelSpec,
    data: DatasetRef,
    *,
    rows: int,
    feature_columns: list[str] | None = None,
    processing: ProcessingSpec | dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
) -> tuple[pd.DataFrame, Callable[[pd.DataFrame, tuple[TensorSpec, ...]], dict[str, Array]]]:
    """Up to ``rows`` raw rows of the data set and the callable that turns a slice of them into model inputs.

    Profiles time the callable and the model together ("preprocessing in") or
    the model alone on inputs built before timing ("out"). The callable
    converts by the feed's rules, for the input as the runtime reports it.
    """
    feed = model_feed(
        model, data, feature_columns=feature_columns, processing=processing, tokenizer_path=tokenizer_path
    )
    table = feed.frame(rows)
    if feed.builder is not None:
        return table, lambda chunk, specs: feed.build(chunk)
    if table.isna().to_numpy().any():
        raise EngineError("the profiling rows have missing feature values: the model cannot take them")
    features = feed.features

    def preprocess(chunk: pd.DataFrame, specs: tuple[TensorSpec, ...]) -> dict[str, Array]:
        spec = tabular_input(specs, features)
        return {spec.name: to_matrix({c: chunk[c].to_numpy() for c in features}, features, spec)}

    return table, preprocess


def _parse(processing: ProcessingSpec | dict[str, Any] | None) -> ProcessingSpec | None:
    if processing is None or isinstance(processing, ProcessingSpec):
        return processing
    return parse_processing_spec(processing) if processing else None
