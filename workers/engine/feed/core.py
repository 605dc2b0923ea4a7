"""The one input feed: rows of a data set become one model's inputs, the same way for every job.

The data set is read in large blocks (:mod:`workers.engine.feed.reader`);
each block is converted to model inputs once, and inference batches are
slices of those arrays. The batch size is the job's choice and never the
reader's: blocks are aligned so that every batch but the last has exactly
``batch_size`` rows, and a model exported with a fixed batch size gets
exact-size chunks (:func:`run_batch`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.feed.convert import column_type, tabular_input, to_matrix
from workers.engine.feed.reader import ColumnType, RawBlock, read_blocks
from workers.engine.processing.pipeline import InputBuilder, check_data_format, input_columns
from workers.engine.processing.spec import ImageInput, InputSpec, TabularInput, TextInput
from workers.engine.types import DatasetRef, ProgressCallback, Runner, TensorSpec

__all__ = [
    "BlockRunner",
    "Feed",
    "FeedBlock",
    "concat_outputs",
    "fixed_rows",
    "model_sized",
    "run_batch",
    "run_batches",
]

Inputs = dict[str, Array]


def fixed_rows(inputs: tuple[TensorSpec, ...]) -> int | None:
    """The batch size a model was exported with, or ``None`` when its batch axis is dynamic."""
    shape = inputs[0].shape if inputs else None
    rows = shape[0] if shape else None
    return rows if isinstance(rows, int) else None


def model_sized(batches: Iterator[Inputs], fixed: int | None) -> Iterator[Inputs]:
    """Batches cut to a fixed-batch model's size (the last padded with copies of its final row).

    For code that hands batches to a runtime itself, such as a quantizer's
    calibration reader; :func:`run_batch` does the same around one call.
    """
    if fixed is None:
        yield from batches
        return
    for batch in batches:
        rows = len(next(iter(batch.values())))
        for start in range(0, rows, fixed):
            chunk = {name: v[start : start + fixed] for name, v in batch.items()}
            n = min(fixed, rows - start)
            if n < fixed:
                chunk = {name: np.concatenate([v, np.repeat(v[-1:], fixed - n, axis=0)]) for name, v in chunk.items()}
            yield chunk


def run_batch(runner: Runner, inputs: Inputs, fixed_rows: int | None) -> Inputs:
    """Run one batch; for a model exported with a fixed batch size, in exact-size chunks.

    The last chunk is padded with copies of its final row and the padding
    dropped from the outputs, so any batch size works with any model.
    """
    if fixed_rows is None:
        return runner.predict(inputs)
    rows = len(next(iter(inputs.values())))
    if rows == fixed_rows:
        return runner.predict(inputs)
    parts = []
    for start in range(0, rows, fixed_rows):
        chunk = {name: v[start : start + fixed_rows] for name, v in inputs.items()}
        n = len(next(iter(chunk.values())))
        if n < fixed_rows:
            chunk = {name: np.concatenate([v, np.repeat(v[-1:], fixed_rows - n, axis=0)]) for name, v in chunk.items()}
        parts.append({name: v[:n] for name, v in runner.predict(chunk).items()})
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def run_batches(runner: Runner, inputs: Inputs, batch_size: int, fixed_rows: int | None) -> Inputs:
    """Run any number of rows in ``batch_size`` batches; each output concatenated in row order.

    The same outputs as :func:`run_batch` on every batch, concatenated. A
    runner with a ``predict_batches`` method (every backend) runs the loop
    itself, so a backend can keep the per-batch Python work out of it; a
    fixed-batch model goes batch by batch through :func:`run_batch`.
    """
    rows = len(next(iter(inputs.values())))
    if rows <= batch_size:
        return run_batch(runner, inputs, fixed_rows)
    whole = getattr(runner, "predict_batches", None)
    if fixed_rows is None and whole is not None:
        outputs: Inputs = whole(inputs, batch_size)
        return outputs
    parts = [
        run_batch(runner, {name: v[lo : lo + batch_size] for name, v in inputs.items()}, fixed_rows)
        for lo in range(0, rows, batch_size)
    ]
    return concat_outputs(parts)


def concat_outputs(parts: list[Inputs]) -> Inputs:
    """Outputs of consecutive batches as one set of outputs."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


class BlockRunner:
    """Runs blocks of model inputs in batches, reporting progress in steps of whole batches.

    A step starts as one batch and doubles while steps take under
    :attr:`STEP_S` / 2 (halving again above 4 × :attr:`STEP_S`), so progress
    comes about every :attr:`STEP_S` seconds, after every batch for a slow
    model, and a fast model's batch-1 loop is not interrupted once per row.
    """

    #: Seconds of inference between progress reports, roughly.
    STEP_S = 0.05

    def __init__(self, runner: Runner, batch_size: int, fixed_rows: int | None) -> None:
        self.runner = runner
        self.batch_size = batch_size
        self.fixed_rows = fixed_rows
        self.batches_per_step = 1

    def run(self, inputs: Inputs, progress: ProgressCallback | None = None, *, done: int = 0, total: int = 0) -> Inputs:
        """Outputs of every row of ``inputs``.

        ``progress(done + rows run so far, total)`` is called after each step
        (``total`` at least the rows counted so far).
        """
        rows = len(next(iter(inputs.values())))
        if progress is None:
            return run_batches(self.runner, inputs, self.batch_size, self.fixed_rows)
        parts: list[Inputs] = []
        clock = time.perf_counter
        lo = 0
        while lo < rows:
            hi = min(rows, lo + self.batches_per_step * self.batch_size)
            step = inputs if lo == 0 and hi == rows else {name: v[lo:hi] for name, v in inputs.items()}
            tick = clock()
            parts.append(run_batches(self.runner, step, self.batch_size, self.fixed_rows))
            took = clock() - tick
            lo = hi
            progress(done + hi, max(total, done + hi))
            if took < self.STEP_S / 2:
                self.batches_per_step = min(self.batches_per_step * 2, 1 << 20)
            elif took > self.STEP_S * 4 and self.batches_per_step > 1:
                self.batches_per_step //= 2
        return concat_outputs(parts)


@dataclass
class FeedBlock:
    """Consecutive rows as model inputs.

    ``inputs`` holds the whole block's model inputs (``None`` when a feature
    value is missing: see ``raw.missing``); :meth:`batches` slices them.
    """

    raw: RawBlock
    inputs: Inputs | None
    labels: Array | None

    @property
    def offset(self) -> int:
        return self.raw.offset

    @property
    def rows(self) -> int:
        return self.raw.rows

    def batches(self, batch_size: int) -> Iterator[Inputs]:
        """Slices of at most ``batch_size`` rows (views, not copies)."""
        assert self.inputs is not None
        inputs = self.inputs
        if len(inputs) == 1:  # the common case, without a dict comprehension per batch
            ((name, values),) = inputs.items()
            for lo in range(0, self.rows, batch_size):
                yield {name: values[lo : lo + batch_size]}
            return
        for lo in range(0, self.rows, batch_size):
            yield {name: values[lo : lo + batch_size] for name, values in inputs.items()}


class Feed:
    """Rows of ``data`` as inputs of a model that takes ``inputs``.

    Parameters
    ----------
    data:
        The data set (CSV, Parquet, or an ImageFolder zip with an image spec).
    inputs:
        The model's inputs as its runtime or its file describes them.
    feature_columns:
        Columns fed to a plain tabular model, in order; default: every
        column but the label. A processing spec decides them itself.
    label, label_type:
        The label column to read beside the features, and how:
        ``"label"`` for class labels (text as written, integers where the
        file types them), ``"number"`` for regression targets.
    processing, tokenizer_path:
        The input part of the model's processing spec and its tokenizer.
    block_rows:
        Rows per read block instead of the size-based default (tests).
    select:
        A boolean mask over the data set's rows: only rows marked ``True``
        are read (applied per block; ``start``/``stop`` still count data
        rows). Rows past the end of the mask are left out.
    """

    def __init__(
        self,
        data: DatasetRef,
        inputs: tuple[TensorSpec, ...],
        *,
        feature_columns: list[str] | None = None,
        label: str | None = None,
        label_type: ColumnType = "label",
        processing: InputSpec | None = None,
        tokenizer_path: str | None = None,
        block_rows: int | None = None,
        select: Array | None = None,
    ) -> None:
        check_data_format(processing, data)
        self.data = data
        self.select = None if select is None else np.asarray(select, dtype=bool)
        self.label = label
        self.processing = processing
        self.block_rows = block_rows
        self.builder: InputBuilder | None = None
        self.spec: TensorSpec | None = None
        if processing is None:
            self.features = feature_columns or [c for c in data.columns if c != data.label_column and c != label]
            self.spec = tabular_input(inputs, self.features)
            self.types: dict[str, ColumnType] = dict.fromkeys(self.features, column_type(self.spec, data.format))  # type: ignore[arg-type]
            self.fixed_rows = fixed_rows((self.spec,))
        else:
            self.features = input_columns(processing)
            absent = [c for c in self.features if data.columns and c not in data.columns]
            if absent:
                raise EngineError(f"the processing spec reads columns the data set lacks: {', '.join(absent)}")
            self.builder = InputBuilder(processing, inputs, tokenizer_path)
            self.types = _spec_types(processing)
            self.fixed_rows = self.builder.fixed_rows
        if label is not None:
            self.types[label] = label_type

    @property
    def columns(self) -> list[str]:
        """Every column read: the features, then the label."""
        return self.features + ([self.label] if self.label is not None and self.label not in self.features else [])

    # -------------------------------------------------------------- reading

    def blocks(self, batch_size: int = 1, *, start: int = 0, stop: int | None = None) -> Iterator[FeedBlock]:
        """The rows ``start`` to ``stop`` as blocks of whole batches (all but the last).

        A block whose feature columns hold a missing value carries no
        inputs; its ``raw.missing`` says where. Blocks hold a multiple of
        ``batch_size`` rows, so batches cut from them all have
        ``batch_size`` rows but the very last one.
        """
        if batch_size < 1:
            raise EngineError(f"batch_size must be at least 1, got {batch_size}")
        for raw in _aligned(self._raw_blocks(batch_size, start, stop), batch_size):
            yield self._block(raw)

    def batches(
        self, batch_size: int, *, start: int = 0, stop: int | None = None, max_rows: int | None = None
    ) -> Iterator[Inputs]:
        """Model inputs of ``batch_size`` rows (the last may be shorter), ``max_rows`` in all.

        Raises
        ------
        EngineError
            (permanent) for a missing feature value: a model cannot take it.
        """
        if max_rows is not None:
            stop = start + max_rows if stop is None else min(stop, start + max_rows)
        for block in self.blocks(batch_size, start=start, stop=stop):
            if block.inputs is None:
                if self.builder is not None:
                    self.build(block.raw.columns, block.offset)  # the spec's own message names the row
                bad = [c for c in self.features if block.raw.missing.get(c) is not None]
                raise EngineError(f"missing values in feature columns {', '.join(bad)}: the model cannot take them")
            yield from block.batches(batch_size)

    def matrix(self, start: int = 0, stop: int | None = None) -> Array:
        """Rows ``start`` to ``stop`` of a single-input model as one array (for explanations, drift)."""
        parts = []
        for block in self.blocks(max(1, self.block_rows or 1), start=start, stop=stop):
            if block.inputs is None:
                raise EngineError("the rows hold missing feature values: fill or drop them first")
            if len(block.inputs) != 1:
                raise EngineError("the model takes several inputs; read them with batches()")
            parts.append(next(iter(block.inputs.values())))
        if not parts:
            raise EngineError("no rows in that range")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def frame(self, rows: int) -> pd.DataFrame:
        """The first ``rows`` rows of the feature columns as read, for timing the conversion too."""
        parts = [pd.DataFrame(raw.columns) for raw in self._raw_blocks(rows, 0, rows)]
        if not parts:
            return pd.DataFrame(columns=self.features)
        table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return table[self.features]

    def build(self, frame: pd.DataFrame | dict[str, Array], offset: int = 0) -> Inputs:
        """Model inputs for rows as :meth:`frame` returns them (or a dict of column arrays)."""
        if self.builder is not None:
            table = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
            return self.builder.build(table.reset_index(drop=True), offset)
        assert self.spec is not None
        columns = {c: frame[c].to_numpy() for c in self.features} if isinstance(frame, pd.DataFrame) else frame
        return {self.spec.name: to_matrix(columns, self.features, self.spec)}

    # ------------------------------------------------------------- internals

    def _raw_blocks(self, batch_size: int, start: int, stop: int | None) -> Iterator[RawBlock]:
        if self.data.format == "imagefolder":
            blocks = _image_blocks(self.data, self.columns, batch_size, start, stop)
        else:
            blocks = read_blocks(
                self.data, self.columns, self.types, start=start, stop=stop, block_rows=self.block_rows
            )
        return blocks if self.select is None else _selected(blocks, self.select)

    def _block(self, raw: RawBlock) -> FeedBlock:
        labels = raw.columns.get(self.label) if self.label is not None else None
        if any(raw.missing.get(c) is not None for c in self.features):
            return FeedBlock(raw, None, labels)
        return FeedBlock(raw, self.build(raw.columns, raw.offset), labels)


def _spec_types(spec: InputSpec) -> dict[str, ColumnType]:
    if isinstance(spec, TabularInput):
        categorical = {c for c, _ in spec.categories}
        return {c: ("text" if c in categorical else "number") for c in spec.feature_columns}
    if isinstance(spec, TextInput):
        return {spec.text_column: "text"}
    assert isinstance(spec, ImageInput)
    return {}


def _aligned(blocks: Iterator[RawBlock], batch_size: int) -> Iterator[RawBlock]:
    """Re-cut blocks so each holds whole batches; only the remainder of a block is copied."""
    pending: RawBlock | None = None
    block: RawBlock | None  # None once a block was wholly taken to complete the pending one
    for block in blocks:
        if pending is not None:
            need = batch_size - pending.rows
            head, block = _cut(block, need)
            pending = _join(pending, head)
            if pending.rows < batch_size:
                continue
            yield pending
            pending = None
            if block is None:
                continue
        whole = block.rows - block.rows % batch_size
        if whole == block.rows:
            yield block
            continue
        if whole:
            first, rest = _cut(block, whole)
            yield first
            pending = rest
        else:
            pending = block
    if pending is not None and pending.rows:
        yield pending


def _cut(block: RawBlock, rows: int) -> tuple[RawBlock, RawBlock | None]:
    if rows >= block.rows:
        return block, None
    return _part(block, 0, rows), _part(block, rows, block.rows)


def _part(block: RawBlock, lo: int, hi: int) -> RawBlock:
    return RawBlock(
        offset=block.offset + lo,
        rows=hi - lo,
        columns={k: v[lo:hi] for k, v in block.columns.items()},
        missing={k: (None if v is None else v[lo:hi]) for k, v in block.missing.items()},
    )


def _join(a: RawBlock, b: RawBlock) -> RawBlock:
    missing: dict[str, Array | None] = {}
    for name in a.columns:
        ma, mb = a.missing.get(name), b.missing.get(name)
        missing[name] = (
            None
            if ma is None and mb is None
            else np.concatenate(
                [ma if ma is not None else np.zeros(a.rows, bool), mb if mb is not None else np.zeros(b.rows, bool)]
            )
        )
    columns = {name: _concat(a.columns[name], b.columns[name]) for name in a.columns}
    return RawBlock(offset=a.offset, rows=a.rows + b.rows, columns=columns, missing=missing)


def _selected(blocks: Iterator[RawBlock], select: Array) -> Iterator[RawBlock]:
    """Only the rows ``select`` marks, block by block (a block keeps its first row's offset)."""
    for block in blocks:
        keep = np.zeros(block.rows, dtype=bool)
        part = select[block.offset : block.offset + block.rows]
        keep[: len(part)] = part
        if keep.all():
            yield block
        elif keep.any():
            yield RawBlock(
                offset=block.offset,
                rows=int(keep.sum()),
                columns={c: v[keep] for c, v in block.columns.items()},
                missing={c: None if m is None else m[keep] for c, m in block.missing.items()},
            )


def _concat(a: Array, b: Array) -> Array:
    if a.dtype != b.dtype and (a.dtype == object or b.dtype == object):
        return np.concatenate([a.astype(object), b.astype(object)])
    return np.concatenate([a, b])


def _image_blocks(
    ref: DatasetRef, columns: list[str], batch_size: int, start: int, stop: int | None
) -> Iterator[RawBlock]:
    # Decoded images are large: a block of images is one batch.
    from workers.engine.imagefolder import IMAGE_COLUMN, LABEL_COLUMN, iter_image_files

    done = 0
    for files in iter_image_files(ref, batch_size):
        lo, hi = done, done + len(files)
        done = hi
        if hi <= start:
            continue
        if stop is not None and lo >= stop:
            return
        keep = files[max(start - lo, 0) : (len(files) if stop is None else min(stop - lo, len(files)))]
        images = np.empty(len(keep), dtype=object)
        images[:] = keep
        labels = np.array([f.label for f in keep], dtype=object)
        table = {IMAGE_COLUMN: images, LABEL_COLUMN: labels}
        wanted = {c: table[c] for c in columns}
        yield RawBlock(offset=max(lo, start), rows=len(keep), columns=wanted, missing=dict.fromkeys(wanted))
