"""An evaluation split by row ranges: each range collected on its own, merged exactly, scored once.

::

    parts = [evaluate_rows(model, data, start=a, stop=b, **options) for a, b in ranges]
    result = score_partials(model, data, PartialEvaluation.merge(parts), **options)

A :class:`PartialEvaluation` keeps what the scorer needs from its rows and
nothing else: the rows' checked labels and the model's raw outputs (class
scores, predicted labels, or regression values), plus the missing/infinite
value tally. Merging concatenates them in row order and adds the tallies,
so the merged data are the very arrays a single pass over every row
collects; scoring them once gives the single-pass result exactly, including
ROC AUC (from every stored score, not a binned curve) and the bootstrap,
analytic and Wilson intervals, which are recomputed on all rows. The confusion matrix
and the regression error sums of the merged result are the sums of the
parts' (:meth:`PartialEvaluation.confusion_counts` shows it per part).

:meth:`PartialEvaluation.to_arrays` and :meth:`PartialEvaluation.from_arrays`
turn a part into plain numpy arrays (no pickles) for storage between workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.evaluate.breakdown import read_slice_values
from workers.engine.evaluate.result import EvaluationResult
from workers.engine.evaluate.scoring import make_scorer
from workers.engine.evaluate.setup import Plan, feed_backend_options, plan_evaluation
from workers.engine.feed import BlockRunner, Feed, MissingTally
from workers.engine.inference.registry import get_backend_class
from workers.engine.metrics.intervals import ANALYTIC_ROWS
from workers.engine.processing.spec import ProcessingSpec
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback

__all__ = ["PartialEvaluation", "evaluate_rows", "score_partials", "split_rows"]

_OUT = "out:"


def split_rows(total: int, chunk_rows: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``chunk_rows`` rows covering ``total`` rows, balanced in size."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    if total <= 0:
        return []
    count = -(-total // chunk_rows)
    bounds = [round(i * total / count) for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


@dataclass
class PartialEvaluation:
    """The collected rows ``start`` to ``stop`` of one evaluation (see the module docstring)."""

    start: int
    stop: int
    rows: int
    labels: Array
    outputs: dict[str, Array]
    missing: dict[tuple[str, str], int] = field(default_factory=dict)
    first_row: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def merge(cls, parts: list[PartialEvaluation]) -> PartialEvaluation:
        """Concatenate the parts in row order and add their tallies; the ranges must meet end to start."""
        if not parts:
            raise ValueError("nothing to merge")
        parts = sorted(parts, key=lambda p: p.start)
        for a, b in zip(parts, parts[1:], strict=False):
            if a.stop != b.start:
                raise ValueError(f"row ranges do not meet: [{a.start}, {a.stop}) then [{b.start}, {b.stop})")
        missing: dict[tuple[str, str], int] = {}
        first_row: dict[tuple[str, str], int] = {}
        for part in parts:
            for key, n in part.missing.items():
                missing[key] = missing.get(key, 0) + n
            for key, row in part.first_row.items():
                first_row[key] = min(row, first_row.get(key, row))
        names = [name for name in parts[0].outputs]
        return cls(
            start=parts[0].start,
            stop=parts[-1].stop,
            rows=sum(p.rows for p in parts),
            labels=_concat([p.labels for p in parts]),
            outputs={name: _concat([p.outputs[name] for p in parts if name in p.outputs]) for name in names},
            missing=missing,
            first_row=first_row,
        )

    def confusion_counts(self, classes: list[Any]) -> Array:
        """This part's confusion matrix over ``classes`` from a label output; parts' matrices add up."""
        predicted = next((v for v in self.outputs.values() if v.dtype.kind in "iuUO" and v.ndim == 1), None)
        if predicted is None:
            raise ValueError("the part holds no predicted labels")
        where = {c: i for i, c in enumerate(classes)}
        t = np.array([where[v] for v in self.labels.tolist()], dtype=np.int64)
        p = np.array([where[v] for v in predicted.tolist()], dtype=np.int64)
        k = len(classes)
        return np.bincount(t * k + p, minlength=k * k).reshape(k, k)

    def to_arrays(self) -> dict[str, Array]:
        """Plain arrays for ``numpy.savez``; text is stored as fixed-width unicode, never pickled."""
        arrays = {
            "range": np.array([self.start, self.stop, self.rows], dtype=np.int64),
            "labels": _storable(self.labels),
            "tally": np.array(
                [
                    [name, what, str(n), str(self.first_row.get((name, what), 0))]
                    for (name, what), n in self.missing.items()
                ]
                or np.empty((0, 4)),
                dtype=str,
            ),
        }
        arrays.update({_OUT + name: _storable(values) for name, values in self.outputs.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any) -> PartialEvaluation:
        start, stop, rows = (int(v) for v in arrays["range"])
        tally = arrays["tally"]
        return cls(
            start=start,
            stop=stop,
            rows=rows,
            labels=_loaded(arrays["labels"]),
            outputs={key[len(_OUT) :]: _loaded(arrays[key]) for key in arrays if key.startswith(_OUT)},
            missing={(str(r[0]), str(r[1])): int(r[2]) for r in tally},
            first_row={(str(r[0]), str(r[1])): int(r[3]) for r in tally},
        )


def evaluate_rows(
    model: ModelSpec,
    data: DatasetRef,
    *,
    start: int,
    stop: int,
    task: str,
    batch_size: int = 256,
    feature_columns: list[str] | None = None,
    class_labels: list[Any] | None = None,
    positive_label: Any = None,
    backend: str = "onnxruntime",
    device: str = "cpu",
    progress: ProgressCallback | None = None,
    processing: ProcessingSpec | None = None,
    tokenizer_path: str | None = None,
    backend_options: dict[str, Any] | None = None,
    slice_columns: list[str] | None = None,
    analytic_intervals_above: int | None = ANALYTIC_ROWS,
) -> PartialEvaluation:
    """Run the rows ``start`` to ``stop`` through the model and keep what scoring needs.

    Takes :func:`workers.engine.evaluate.evaluate`'s parameters; ``progress``
    counts rows within the range. Bad labels stop it as they stop a full run;
    missing values are counted for the merge to report. ``slice_columns`` are
    read once, when the merged parts are scored.
    """
    plan = _plan(
        data, task, batch_size, feature_columns, class_labels, positive_label, processing, analytic_intervals_above
    )
    with _open(model, backend, device, backend_options) as runner:
        feed = Feed(
            data,
            runner.input_specs,
            feature_columns=plan.features,
            label=plan.label,
            label_type="label" if plan.classify else "number",
            processing=plan.spec_input,
            tokenizer_path=tokenizer_path,
        )
        scorer = make_scorer(runner, model, plan)
        tally = MissingTally(plan.features, plan.label)
        labels: list[Array] = []
        outputs: list[dict[str, Array]] = []
        total = stop - start
        done = 0
        blocks = BlockRunner(runner, batch_size, feed.fixed_rows)
        for block in feed.blocks(batch_size, start=start, stop=stop):
            tally.add(block.raw)
            if not tally and block.inputs is not None:
                assert block.labels is not None
                labels.append(scorer.prepare(block.labels))
                outputs.append(blocks.run(block.inputs, progress, done=done, total=total))
            done += block.rows
            if progress is not None:
                progress(done, max(total, done))
    names = list(outputs[0]) if outputs else []
    return PartialEvaluation(
        start=start,
        stop=start + done,
        rows=done,
        labels=_concat(labels) if labels else np.empty(0, dtype=object),
        outputs={name: _concat([o[name] for o in outputs]) for name in names},
        missing=dict(tally.counts),
        first_row=dict(tally.first_row),
    )


def score_partials(
    model: ModelSpec,
    data: DatasetRef,
    merged: PartialEvaluation,
    *,
    task: str,
    batch_size: int = 256,
    feature_columns: list[str] | None = None,
    class_labels: list[Any] | None = None,
    positive_label: Any = None,
    backend: str = "onnxruntime",
    device: str = "cpu",
    processing: ProcessingSpec | None = None,
    backend_options: dict[str, Any] | None = None,
    slice_columns: list[str] | None = None,
    analytic_intervals_above: int | None = ANALYTIC_ROWS,
    **_: Any,
) -> EvaluationResult:
    """Score merged parts exactly as :func:`workers.engine.evaluate.evaluate` scores a single pass."""
    started = time.perf_counter()
    plan = _plan(
        data, task, batch_size, feature_columns, class_labels, positive_label, processing, analytic_intervals_above
    )
    tally = MissingTally(plan.features, plan.label)
    tally.counts, tally.first_row = dict(merged.missing), dict(merged.first_row)
    tally.raise_if_any()
    if merged.rows == 0:
        raise EngineError("the data set has no rows")
    with _open(model, backend, device, backend_options) as runner:
        scorer = make_scorer(runner, model, plan)
        scorer.add(merged.outputs, merged.labels)
        description = runner.describe()
    scorer.slices = read_slice_values(data, list(slice_columns or []), start=merged.start, stop=merged.stop)
    common: dict[str, Any] = {
        "task": task,
        "rows": merged.rows,
        "backend": description,
        "batch_size": batch_size,
        "feature_columns": plan.features,
        "label_column": plan.label,
        "duration_s": 0.0,
    }
    result = scorer.result(common)
    result.duration_s = round(time.perf_counter() - started, 4)
    return result


def _plan(
    data: DatasetRef,
    task: str,
    batch_size: int,
    feature_columns: list[str] | None,
    class_labels: list[Any] | None,
    positive_label: Any,
    processing: ProcessingSpec | None,
    analytic_above: int | None,
) -> Plan:
    return plan_evaluation(
        data,
        task=task,
        batch_size=batch_size,
        feature_columns=feature_columns,
        class_labels=class_labels,
        positive_label=positive_label,
        processing=processing,
        analytic_above=analytic_above,
    )


def _open(model: ModelSpec, backend: str, device: str, options: dict[str, Any] | None) -> Any:
    backend_cls = get_backend_class(backend)
    if not backend_cls.supports(model):
        raise EngineError(f"backend {backend!r} cannot run {model.format!r} models")
    return backend_cls(model, device=device, options=feed_backend_options(backend, options))


def _concat(arrays: list[Array]) -> Array:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _storable(values: Array) -> Array:
    if values.dtype.kind != "O":
        return values
    if not all(isinstance(v, str) for v in values.ravel().tolist()):
        raise EngineError("a partial result holds values that are neither numbers nor text")
    return values.astype(str)


def _loaded(values: Array) -> Array:
    return values.astype(object) if values.dtype.kind == "U" else values
