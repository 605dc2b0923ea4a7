"""The evaluation pipeline: stream a data set through a model and score it.

Three steps: :func:`~workers.engine.evaluate.setup.plan_evaluation` checks
the parameters against the data set, :func:`~workers.engine.evaluate.loop.run_rows`
feeds the rows through the model (read in large blocks by the one input feed,
:mod:`workers.engine.feed`, and run in the job's batches), and a scorer
(:mod:`workers.engine.evaluate.scoring`) turns what it collected into
metrics. Only the label, the predictions and (for classifiers) the class
scores are kept in memory, so the data set can be far larger than the
worker's memory.

With a :class:`ProcessingSpec` the model input is built by the spec (tabular
columns, images from an ImageFolder zip, or tokenized text) and the outputs
go through :func:`workers.engine.processing.post.apply_output` before
scoring, so a logits model with a softmax and a label map is scored on
probabilities and on the data set's own label strings.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.datasets import count_rows
from workers.engine.errors import EngineError
from workers.engine.evaluate.breakdown import read_slice_values
from workers.engine.evaluate.loop import run_rows
from workers.engine.evaluate.result import RESIDUAL_SAMPLE, EvaluationResult
from workers.engine.evaluate.scoring import make_scorer
from workers.engine.evaluate.setup import feed_backend_options, plan_evaluation
from workers.engine.feed import Feed, MissingTally
from workers.engine.inference.registry import get_backend_class
from workers.engine.metrics.intervals import ANALYTIC_ROWS
from workers.engine.processing.spec import ProcessingSpec
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback

__all__ = ["EvaluationResult", "evaluate", "RESIDUAL_SAMPLE"]


def evaluate(
    model: ModelSpec,
    data: DatasetRef,
    *,
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
    select: Array | None = None,
    slice_columns: list[str] | None = None,
    analytic_intervals_above: int | None = ANALYTIC_ROWS,
) -> EvaluationResult:
    """Run ``model`` over every row of ``data`` and compute task metrics.

    Parameters
    ----------
    model, data:
        The model file and the data set; ``data.label_column`` is required.
    task:
        ``"classification"`` or ``"regression"``.
    batch_size:
        Rows per inference call (the data set is read in larger blocks).
    feature_columns:
        Columns fed to the model, in order; default: every column but the
        label, in data set order.
    class_labels:
        Class order of the model's probability columns. Default: the labels
        of the model's ONNX-ML classifier node, else the sorted labels seen in
        the data and the predictions.
    positive_label:
        For binary problems, the class scored by precision/recall/F1 and AUC;
        default: the last of the sorted labels.
    backend, device, backend_options:
        Which runtime runs the model, where, and with which options.
    progress:
        Called as ``progress(rows_done, rows_total)`` after every batch; may
        raise :class:`Cancelled` to stop.
    processing:
        The model version's processing spec. Its input part decides the
        feature columns (tabular), reads images from an ``"imagefolder"``
        data set, or tokenizes a text column; its output part turns raw
        outputs into scores and labels (its label map replaces
        ``class_labels``; for two classes the second, whose score a
        threshold tests, is the default ``positive_label``), and ``top_k``
        adds ``top_<k>_accuracy``.
    tokenizer_path:
        The model version's ``tokenizer.json``, for a text input spec.
    select:
        A boolean mask over the data set's rows: score only the rows it marks
        (e.g. the rows a calibration split left for evaluation).
    slice_columns:
        Columns of the data set to report metrics per slice of (by value;
        numbers with many values binned into quantiles); they need not be
        model inputs.
    analytic_intervals_above:
        Above this many rows F1, macro averages, ROC AUC and regression
        metrics get analytic intervals (DeLong, delta method, normal theory)
        instead of the bootstrap's; ``None`` always bootstraps.

    Raises
    ------
    EngineError
        (permanent) when the model's signature does not fit the data (inputs,
        feature count, missing values, unknown labels), plus whatever the
        backend and the data set reader raise.
    """
    started = time.perf_counter()
    plan = plan_evaluation(
        data,
        task=task,
        batch_size=batch_size,
        feature_columns=feature_columns,
        class_labels=class_labels,
        positive_label=positive_label,
        processing=processing,
        analytic_above=analytic_intervals_above,
    )
    total = count_rows(data) if select is None else int(np.count_nonzero(select))
    backend_cls = get_backend_class(backend)
    if not backend_cls.supports(model):
        raise EngineError(f"backend {backend!r} cannot run {model.format!r} models")
    with backend_cls(model, device=device, options=feed_backend_options(backend, backend_options)) as runner:
        feed = Feed(
            data,
            runner.input_specs,
            feature_columns=plan.features,
            label=plan.label,
            label_type="label" if plan.classify else "number",
            processing=plan.spec_input,
            tokenizer_path=tokenizer_path,
            select=select,
        )
        scorer = make_scorer(runner, model, plan)
        tally = MissingTally(plan.features, plan.label)
        done = run_rows(runner, feed, scorer, tally, batch_size=batch_size, total=total, progress=progress)
        tally.raise_if_any()
        if done == 0:
            raise EngineError("the data set has no rows")
        description = runner.describe()
    scorer.slices = read_slice_values(data, list(slice_columns or []), select=select)
    common: dict[str, Any] = {
        "task": task,
        "rows": done,
        "backend": description,
        "batch_size": batch_size,
        "feature_columns": plan.features,
        "label_column": plan.label,
        "duration_s": 0.0,
    }
    result = scorer.result(common)
    result.duration_s = round(time.perf_counter() - started, 4)
    return result
