"""Concurrency sweep: latency and throughput with N requests in flight.

For each level N (1, 2, 4, ... up to a cap) N threads each call their own
backend instance back to back, so N requests are always in flight. Every
runtime used here (ONNX Runtime, OpenVINO, PyTorch) releases the GIL
while it computes, so the threads really overlap. One instance per thread
rather than one shared session: OpenVINO needs one infer request per
concurrent call, and replicas keep every backend comparable; memory grows
with N accordingly.

Each level is measured with the same window rule as a single stream: the
main thread closes a window when the threads together have completed
``min_calls`` calls and ``min_window_s`` has passed, and stops when the last
windows agree (or at the caps). A window's throughput is the calls
completed in it divided by its wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.inference.base import Backend
from workers.engine.latency.results import ConcurrencyLevel, ConcurrencySweep
from workers.engine.latency.samples import encode_samples
from workers.engine.latency.stability import StabilityReport, StabilityRule, Window, is_stable, spreads
from workers.engine.latency.stats import PercentileMethod, summarize

__all__ = ["concurrency_levels", "concurrency_sweep", "measure_level"]

#: Median latency this much above the lowest level's counts as "climbing".
CLIMB_THRESHOLD = 0.25

_POLL_S = 0.005


def concurrency_levels(cap: int) -> tuple[int, ...]:
    """``1, 2, 4, ...`` doubling up to ``cap``, with ``cap`` itself last."""
    if cap < 1:
        raise EngineError(f"the concurrency cap must be at least 1, got {cap}")
    levels = []
    level = 1
    while level < cap:
        levels.append(level)
        level *= 2
    levels.append(cap)
    return tuple(levels)


def _worker(
    backend: Backend,
    payloads: Sequence[Any],
    offset: int,
    out: list[int],
    stop: threading.Event,
    ready: threading.Barrier,
    errors: list[BaseException],
) -> None:
    predict = backend.predict
    clock = time.perf_counter_ns
    append = out.append
    count = len(payloads)
    j = offset % count
    try:
        ready.wait()
        while not stop.is_set():
            t0 = clock()
            predict(payloads[j])
            t1 = clock()
            append(t1 - t0)
            j += 1
            if j == count:
                j = 0
    except BaseException as exc:  # re-raised in the main thread
        errors.append(exc)
        stop.set()


def measure_level(
    backends: Sequence[Backend],
    payloads: Sequence[Any],
    rule: StabilityRule,
    *,
    warmup_s: float = 0.2,
) -> tuple[Array, int, StabilityReport]:
    """Run ``len(backends)`` threads and measure until stable.

    Returns
    -------
    (samples_ns, wall_ns, report)
        The latencies completed in the reported windows, those windows'
        wall time, and how the measurement ended.
    """
    level = len(backends)
    outs: list[list[int]] = [[] for _ in range(level)]
    stop = threading.Event()
    ready = threading.Barrier(level + 1)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_worker,
            args=(backend, payloads, index, outs[index], stop, ready, errors),
            name=f"latency-concurrency-{index}",
            daemon=True,
        )
        for index, backend in enumerate(backends)
    ]
    for thread in threads:
        thread.start()
    clock = time.perf_counter_ns
    windows: list[Window] = []
    chunks: list[Array] = []
    walls: list[int] = []
    reason = "max_windows"
    try:
        ready.wait()
        time.sleep(warmup_s)
        marks = [len(out) for out in outs]
        begin = clock()
        deadline = begin + int(rule.max_seconds * 1e9)
        window_ns = int(rule.min_window_s * 1e9)
        while not errors:
            w_start = clock()
            capped = False
            while True:
                time.sleep(_POLL_S if window_ns else 0)
                now = clock()
                done = sum(len(out) for out in outs) - sum(marks)
                if now - w_start >= window_ns and done >= rule.min_calls:
                    break
                if now >= deadline or errors:
                    capped = True
                    break
            ends = [len(out) for out in outs]
            wall = now - w_start
            chunk = np.concatenate(
                [np.asarray(out[a:b], dtype=np.int64) for out, a, b in zip(outs, marks, ends, strict=True)]
            )
            marks = ends
            if chunk.size:
                windows.append(Window.of(chunk, wall, complete=not capped))
                chunks.append(chunk)
                walls.append(wall)
            if is_stable(windows, rule):
                reason = "stable"
                break
            if capped:
                reason = "max_seconds"
                break
            if len(windows) >= rule.max_windows:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    if not chunks:
        raise EngineError(f"no call completed at concurrency {level} within {rule.max_seconds:g} s", permanent=False)
    kept = chunks[-rule.windows :]
    found = spreads(windows, rule.windows)
    report = StabilityReport(
        stable=reason == "stable",
        reason=reason,
        windows=tuple(windows),
        p50_spread=found[0] if found else None,
        throughput_spread=found[1] if found else None,
        seconds=(clock() - begin) / 1e9,
        rule=rule,
    )
    return np.concatenate(kept), int(sum(walls[-rule.windows :])), report


def concurrency_sweep(
    first: Backend,
    make_backend: Callable[[], Backend],
    payloads: Sequence[Any],
    levels: Sequence[int],
    *,
    rule: StabilityRule,
    batch_size: int,
    warmup_s: float = 0.2,
    method: PercentileMethod = "linear",
    latency_limit: tuple[int, float] | None = None,
    climb_threshold: float = CLIMB_THRESHOLD,
) -> ConcurrencySweep:
    """Measure every level in ``levels``.

    Parameters
    ----------
    first:
        The cell's loaded backend, reused as the first replica.
    make_backend:
        Returns a new *loaded* backend with the cell's settings; called for
        each further replica, and its instances are unloaded at the end.
    payloads:
        Model-ready input batches, cycled by every thread.
    levels:
        Concurrency levels, e.g. :func:`concurrency_levels` of a cap.
    latency_limit:
        ``(percentile, max_ms)`` of the latency objective, to report the
        highest level that meets it.
    """
    pool: list[Backend] = [first]
    results: list[ConcurrencyLevel] = []
    error = ""
    try:
        for level in sorted(set(levels)):
            while len(pool) < level:
                pool.append(make_backend())
            samples, wall, report = measure_level(pool[:level], payloads, rule, warmup_s=warmup_s)
            summary = summarize(samples, batch_size=batch_size, wall_ns=wall, method=method)
            within = None
            if latency_limit is not None:
                within = summary.percentile_ms(latency_limit[0]) <= latency_limit[1]
            results.append(ConcurrencyLevel(level, summary, report, within, encode_samples(samples)))
    except EngineError as exc:
        # Levels measured so far still count; say where and why the sweep stopped.
        error = f"stopped at concurrency {len(pool)}: {exc.message}"
    finally:
        for backend in pool[1:]:
            backend.unload()
    climbs = None
    best = None
    if results:
        base = results[0].latency.p50_ms
        climbs = next((r.concurrency for r in results[1:] if r.latency.p50_ms > base * (1 + climb_threshold)), None)
        best = max(results, key=lambda r: r.latency.throughput_rows_s).concurrency
    max_within = None
    if latency_limit is not None:
        passing = [r.concurrency for r in results if r.within_latency_objective]
        max_within = max(passing) if passing else None
    return ConcurrencySweep(
        levels=results,
        latency_climbs_at=climbs,
        best_throughput_at=best,
        climb_threshold=climb_threshold,
        max_within_latency_objective=max_within,
        error=error,
    )
