"""Latency profile of one model over a grid of backends, devices, precisions, batch sizes and threads.

For each cell:

1. **Cold start** — a fresh backend instance is loaded (``load_s``) and
   answers its first call (``first_inference_ms``).
2. **Warm-up** — calls until both ``warmup_calls`` and ``warmup_s`` are done.
3. **Measurement** — windows until stable by the perf_analyzer rule
   (:mod:`workers.engine.latency.stability`), for the model alone and/or
   with the preprocessing inside the timed region.
4. **Memory** — the cell's peak RSS (and GPU memory on a GPU).
5. **Concurrency** — optionally, N requests in flight for N = 1, 2, 4, ...
6. **Verdict** — against the user's objectives; the grid then recommends a cell.

Time is read with ``time.perf_counter_ns`` immediately around
``backend.predict`` (or around ``preprocess`` + ``predict``), and the loop
around it does nothing else per call than append the difference to a list:
inputs are built before timing starts. Where the backend also reports the
runtime's own timing of each call (an optional ``runtime_latency_ns()``
method; OpenVINO keeps one per infer request), that is recorded beside it
as ``runtime_latency``, which is the figure OpenVINO's benchmark_app prints.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import BackendUnavailable, Cancelled, EngineError, clean_message
from workers.engine.inference.base import Backend
from workers.engine.inference.registry import get_backend_class
from workers.engine.latency.concurrency import CLIMB_THRESHOLD, concurrency_sweep
from workers.engine.latency.grid import THREAD_OPTIONS, ProfileGrid, backend_options, thread_option
from workers.engine.latency.host import host_facts, load_average
from workers.engine.latency.inputs import CellInputs, InputsFactory
from workers.engine.latency.memory import MemoryProbe
from workers.engine.latency.objectives import Objectives, judge, recommend
from workers.engine.latency.results import (
    CellKey,
    CellResult,
    ColdStart,
    ProfileResult,
    VariantResult,
)
from workers.engine.latency.samples import encode_samples
from workers.engine.latency.stability import Measurement, measure_until_stable
from workers.engine.latency.stats import bimodality_gap, summarize
from workers.engine.types import ModelSpec, ProgressCallback

#: :func:`~workers.engine.latency.stats.bimodality_gap` above this flags a cell as bimodal.
BIMODAL_GAP = 0.25

__all__ = [
    "BIMODAL_GAP",
    "THREAD_OPTIONS",
    "ProfileGrid",
    "profile_cell",
    "profile_grid",
    "thread_option",
]


def _warm_up(
    call: Callable[[Any], object], payloads: Sequence[Any], calls: int, seconds: float, limit: float
) -> tuple[int, float]:
    started = time.perf_counter()
    done = 0
    count = len(payloads)
    while True:
        elapsed = time.perf_counter() - started
        if (done >= calls and elapsed >= seconds) or (done >= 1 and elapsed >= limit):
            return done, elapsed
        call(payloads[done % count])
        done += 1


def _runtime_timer(backend: Backend) -> Callable[[], int] | None:
    reader = getattr(backend, "runtime_latency_ns", None)
    if not callable(reader):
        return None
    try:
        value = reader()
    except Exception:  # an optional hook must never fail the profile
        return None
    return reader if isinstance(value, int) else None


def _keep(samples: Array, cap: int) -> list[int]:
    if samples.size <= cap:
        return [int(v) for v in samples.tolist()]
    # Evenly spaced in time: keeps the distribution and any drift visible.
    picks = np.linspace(0, samples.size - 1, cap).round().astype(np.int64)
    return [int(v) for v in samples[picks].tolist()]


def _variant(
    name: str,
    measurement: Measurement,
    warm: tuple[int, float],
    grid: ProfileGrid,
    batch_size: int,
) -> VariantResult:
    method = grid.percentile_method
    runtime = None
    if measurement.side_ns is not None and measurement.side_ns.size:
        # The runtime's own timings have no wall clock of their own: its
        # throughput is taken over the same windows as the call latencies.
        runtime = summarize(measurement.side_ns, batch_size=batch_size, wall_ns=measurement.wall_ns, method=method)
    gap = bimodality_gap(measurement.samples_ns)
    return VariantResult(
        variant=name,
        latency=summarize(measurement.samples_ns, batch_size=batch_size, wall_ns=measurement.wall_ns, method=method),
        stability=measurement.report,
        warmup_calls=warm[0],
        warmup_s=warm[1],
        samples_ns=_keep(measurement.samples_ns, grid.keep_samples),
        samples=encode_samples(measurement.samples_ns),
        runtime_samples=(
            encode_samples(measurement.side_ns) if runtime is not None and measurement.side_ns is not None else None
        ),
        sample_count=int(measurement.samples_ns.size),
        bimodality_gap=gap,
        bimodal=gap > BIMODAL_GAP,
        runtime_latency=runtime,
    )


def profile_cell(
    model: ModelSpec,
    key: CellKey,
    grid: ProfileGrid,
    inputs_factory: InputsFactory,
    *,
    objectives: Objectives | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> CellResult:
    """Measure one cell; failures come back as a result with ``status`` and ``error``.

    Parameters
    ----------
    model:
        The model file.
    key:
        The cell: backend, device, precision, batch size, threads.
    grid:
        Measurement settings (rule, warm-up, preprocessing, concurrency, ...).
    inputs_factory:
        Called once with the batch size and the model's input specs after load.
    objectives:
        When given, the result carries a verdict.
    clock:
        Nanosecond clock of the measurement loop (tests may inject one).

    Raises
    ------
    Cancelled
        Never swallowed, so a cancelled job stops.
    """
    started = time.perf_counter()
    try:
        result = _profile_cell(model, key, grid, inputs_factory, objectives, clock)
    except Cancelled:
        raise
    except BackendUnavailable as exc:
        result = CellResult(key=key, status="unavailable", error=exc.message)
    except EngineError as exc:
        result = CellResult(key=key, status="failed", error=exc.message)
    except Exception as exc:  # one broken cell must not lose the others' results
        message = clean_message(exc, model.path, model.weights_path)
        result = CellResult(key=key, status="failed", error=f"{type(exc).__name__}: {message}")
    verdict = judge(result, objectives) if objectives is not None else None
    return replace(result, verdict=verdict, seconds=time.perf_counter() - started)


def _profile_cell(
    model: ModelSpec,
    key: CellKey,
    grid: ProfileGrid,
    inputs_factory: InputsFactory,
    objectives: Objectives | None,
    clock: Callable[[], int],
) -> CellResult:
    t_import = time.perf_counter()
    backend_cls = get_backend_class(key.backend)
    import_s = time.perf_counter() - t_import
    options = backend_options(grid, key, backend_cls)

    def make() -> Backend:
        instance = backend_cls(model, device=key.device, options=options)
        instance.load()
        return instance

    probe = MemoryProbe(key.device)
    probe.start()
    backend = backend_cls(model, device=key.device, options=options)
    t0 = time.perf_counter_ns()
    backend.load()
    load_ns = time.perf_counter_ns() - t0
    try:
        inputs: CellInputs = inputs_factory(key.batch_size, backend.input_specs)
        if grid.preprocessing in ("in", "both") and not inputs.has_preprocessing:
            raise EngineError(
                "preprocessing was asked to be in the measurement, but the inputs have no preprocessing "
                "(synthetic inputs are already model-ready)"
            )
        t0 = time.perf_counter_ns()
        backend.predict(inputs.batches[0])
        first_ns = time.perf_counter_ns() - t0
        cold = ColdStart(import_s=import_s, load_s=load_ns / 1e9, first_inference_ms=first_ns / 1e6)
        predict = backend.predict
        timer = _runtime_timer(backend)

        model_only = None
        if grid.preprocessing in ("out", "both"):
            warm = _warm_up(predict, inputs.batches, grid.warmup_calls, grid.warmup_s, grid.warmup_max_s)
            measured = measure_until_stable(predict, inputs.batches, grid.rule, clock=clock, after=timer)
            model_only = _variant("model", measured, warm, grid, key.batch_size)

        with_pre = None
        if grid.preprocessing in ("in", "both") and inputs.raw is not None and inputs.preprocess is not None:
            preprocess = inputs.preprocess

            def serve(raw: Any) -> object:
                return predict(preprocess(raw))

            warm = _warm_up(serve, inputs.raw, grid.warmup_calls, grid.warmup_s, grid.warmup_max_s)
            measured = measure_until_stable(serve, inputs.raw, grid.rule, clock=clock)
            with_pre = _variant("with_preprocessing", measured, warm, grid, key.batch_size)
        memory = probe.stop()

        pre_ms = None
        if model_only is not None and with_pre is not None:
            pre_ms = with_pre.latency.p50_ms - model_only.latency.p50_ms

        sweep = None
        if grid.concurrency:
            limit = None
            lat = objectives.latency if objectives else None
            if lat is not None and (lat.batch_size is None or lat.batch_size == key.batch_size):
                limit = (lat.percentile, lat.max_ms)
            sweep = concurrency_sweep(
                backend,
                make,
                inputs.batches,
                grid.concurrency,
                rule=grid.concurrency_rule or grid.rule,
                batch_size=key.batch_size,
                warmup_s=grid.warmup_s,
                method=grid.percentile_method,
                latency_limit=limit,
                climb_threshold=CLIMB_THRESHOLD,
            )
        return CellResult(
            key=key,
            status="ok",
            backend=backend.describe(),
            input_source=inputs.source,
            input_description=inputs.description,
            cold_start=cold,
            model=model_only,
            with_preprocessing=with_pre,
            preprocessing_ms=pre_ms,
            memory=memory,
            concurrency=sweep,
        )
    finally:
        backend.unload()


def profile_grid(
    model: ModelSpec,
    grid: ProfileGrid,
    inputs_factory: InputsFactory,
    objectives: Objectives | None = None,
    progress: ProgressCallback | None = None,
) -> ProfileResult:
    """Profile every cell of ``grid`` and recommend a configuration.

    Parameters
    ----------
    model:
        The model file.
    grid:
        The cells and how to measure them.
    inputs_factory:
        Builds each cell's inputs (:class:`~workers.engine.latency.inputs.SyntheticInputs`,
        :class:`~workers.engine.latency.inputs.RowsInputs`, or any callable of that shape).
    objectives:
        Latency/throughput objectives for verdicts and the recommendation.
    progress:
        Called with ``(cells done, cells in total)`` after each cell; may
        raise :class:`Cancelled` to stop between cells.

    Returns
    -------
    ProfileResult
        ``to_dict()`` is the JSON the service stores.
    """
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    host = host_facts()
    cells = grid.cells()
    results: list[CellResult] = []
    for index, key in enumerate(cells):
        results.append(profile_cell(model, key, grid, inputs_factory, objectives=objectives))
        if progress is not None:
            progress(index + 1, len(cells))
    host = replace(host, load_after=load_average())
    recommendation, reason = recommend(results, objectives)
    return ProfileResult(
        model={"sha256": model.sha256, "format": model.format},
        grid=grid.to_dict(),
        objectives=objectives.to_dict() if objectives is not None else None,
        host=host,
        cells=results,
        recommendation=recommendation,
        recommendation_reason=reason,
        started_at=started_at,
        seconds=time.perf_counter() - started,
    )
