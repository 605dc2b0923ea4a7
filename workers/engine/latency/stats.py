"""Latency statistics: percentiles and the summary every profile cell reports.

Percentile method
-----------------
The default is numpy's ``"linear"`` method (Hyndman & Fan type 7, numpy's
and most spreadsheets' default): the sample at fractional rank
``q/100 * (n - 1)`` with linear interpolation between its two neighbours, so
any number shown can be reproduced with ``numpy.percentile(samples, q)``.

The reference tools use nearest-rank variants, which return an observed
sample instead of interpolating:

``"perf_analyzer"``
    Triton's perf_analyzer: ``sorted[floor(q/100 * (n - 1) + 0.5)]``, the
    linear position rounded half up.
``"benchmark_app"``
    OpenVINO's benchmark_app: ``sorted[ceil(n * q/100) - 1]``, which is
    numpy's ``"inverted_cdf"`` method (type 1); its "Median" is the lower
    median when ``n`` is even.

All three differ at most by the gap between two adjacent order statistics,
which is negligible at the thousands of samples a stable measurement holds;
they can be chosen for a side-by-side comparison with either tool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.latency._json import json_dict

__all__ = [
    "PERCENTILES",
    "PERCENTILE_METHODS",
    "LatencySummary",
    "PercentileMethod",
    "bimodality_gap",
    "percentile",
    "percentiles",
    "summarize",
]

PercentileMethod = Literal["linear", "perf_analyzer", "benchmark_app"]

#: Methods :func:`percentile` accepts (see the module docstring).
PERCENTILE_METHODS: tuple[str, ...] = ("linear", "perf_analyzer", "benchmark_app")

#: The percentiles every summary reports.
PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)

_NS_PER_MS = 1e6


def _sorted(samples: Iterable[float] | Array) -> Array:
    values = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if values.size == 0:
        raise EngineError("cannot take a percentile of no samples", permanent=False)
    return values


def _check(q: float, method: str) -> None:
    if not 0.0 <= q <= 100.0:
        raise EngineError(f"percentile must be between 0 and 100, got {q}")
    if method not in PERCENTILE_METHODS:
        raise EngineError(f"unknown percentile method {method!r}; choose one of {', '.join(PERCENTILE_METHODS)}")


def _from_sorted(values: Array, q: float, method: str) -> float:
    n = values.size
    if method == "linear":
        return float(np.percentile(values, q, method="linear"))
    if method == "perf_analyzer":
        # size_t index = (percentile / 100.0) * (latencies.size() - 1) + 0.5;
        return float(values[int(math.floor(q / 100.0 * (n - 1) + 0.5))])
    # benchmark_app: values[ceil(len(values) * percent / 100) - 1], clamped for q == 0.
    return float(values[max(int(math.ceil(n * q / 100.0)) - 1, 0)])


def percentile(samples: Iterable[float] | Array, q: float, method: PercentileMethod = "linear") -> float:
    """Return the ``q``-th percentile of ``samples``.

    Parameters
    ----------
    samples:
        Observations in any order (not modified).
    q:
        Percentile in ``[0, 100]``.
    method:
        ``"linear"`` (default, numpy's), ``"perf_analyzer"`` or ``"benchmark_app"``;
        see the module docstring.

    Raises
    ------
    EngineError
        For no samples, ``q`` outside ``[0, 100]`` or an unknown method.
    """
    _check(q, method)
    return _from_sorted(_sorted(samples), q, method)


def percentiles(
    samples: Iterable[float] | Array, qs: Sequence[float] = PERCENTILES, method: PercentileMethod = "linear"
) -> dict[float, float]:
    """Return ``{q: percentile}`` for every ``q`` in ``qs``, sorting the samples once."""
    for q in qs:
        _check(q, method)
    values = _sorted(samples)
    return {q: _from_sorted(values, q, method) for q in qs}


def bimodality_gap(samples: Iterable[float] | Array) -> float:
    """The widest empty gap in the middle 80 % of the samples, relative to the median.

    A unimodal latency distribution is dense between its 10th and 90th
    percentiles, so consecutive sorted samples there lie close together;
    two separate modes (a cache that hits half the time, a frequency step,
    two NUMA nodes) leave an empty band between them, and both modes then
    hold at least 10 % of the calls. A value above about 0.25 means the
    samples form two groups and a single percentile describes neither.

    Returns ``0.0`` for fewer than 20 samples.
    """
    values = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = values.size
    if n < 20:
        return 0.0
    lo, hi = int(math.floor(0.1 * (n - 1))), int(math.ceil(0.9 * (n - 1)))
    middle = values[lo : hi + 1]
    median = float(np.median(values))
    if middle.size < 2 or median <= 0:
        return 0.0
    return float(np.max(np.diff(middle)) / median)


@dataclass(frozen=True)
class LatencySummary:
    """Latency statistics of one measurement, in milliseconds, and its throughput.

    ``std_ms`` is the population standard deviation (``ddof=0``, as
    ``numpy.std``). Throughput is counted over the wall-clock time of the
    measurement, from the start of its first call to the end of its last,
    so time spent between calls counts against it as it would in service;
    ``throughput_rows_s`` is ``throughput_batches_s * batch_size``.
    """

    count: int
    batch_size: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    wall_s: float
    throughput_batches_s: float
    throughput_rows_s: float
    percentile_method: str = "linear"

    def percentile_ms(self, q: int) -> float:
        """The reported percentile ``q`` (one of :data:`PERCENTILES`), in ms."""
        if q not in PERCENTILES:
            raise EngineError(f"only percentiles {', '.join(map(str, PERCENTILES))} are reported, not {q}")
        return float(getattr(self, f"p{q}_ms"))

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


def summarize(
    samples_ns: Sequence[int] | Array,
    *,
    batch_size: int,
    wall_ns: int | None = None,
    method: PercentileMethod = "linear",
) -> LatencySummary:
    """Summarise per-call latencies.

    Parameters
    ----------
    samples_ns:
        One latency per call, in nanoseconds.
    batch_size:
        Rows per call, for the rows/s throughput.
    wall_ns:
        Wall-clock duration of the measurement; ``None`` takes the sum of
        the samples (calls back to back with nothing in between).
    method:
        Percentile method (see the module docstring).

    Raises
    ------
    EngineError
        For no samples.
    """
    values = np.asarray(samples_ns, dtype=np.float64).ravel()
    if values.size == 0:
        raise EngineError("no latency samples to summarise", permanent=False)
    marks = percentiles(values, PERCENTILES, method)
    wall = float(values.sum()) if wall_ns is None else float(wall_ns)
    batches_s = values.size / (wall / 1e9) if wall > 0 else 0.0
    return LatencySummary(
        count=int(values.size),
        batch_size=int(batch_size),
        mean_ms=float(values.mean()) / _NS_PER_MS,
        std_ms=float(values.std()) / _NS_PER_MS,
        min_ms=float(values.min()) / _NS_PER_MS,
        p50_ms=marks[50] / _NS_PER_MS,
        p90_ms=marks[90] / _NS_PER_MS,
        p95_ms=marks[95] / _NS_PER_MS,
        p99_ms=marks[99] / _NS_PER_MS,
        max_ms=float(values.max()) / _NS_PER_MS,
        wall_s=wall / 1e9,
        throughput_batches_s=batches_s,
        throughput_rows_s=batches_s * batch_size,
        percentile_method=method,
    )
