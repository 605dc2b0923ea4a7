"""The records a profile returns, as plain dataclasses with a JSON round trip.

``to_dict()`` gives JSON-ready dicts (numbers, strings, lists, ``None``)
that the service stores as the run's result and the dashboards plot;
:func:`from_dict` rebuilds the dataclasses from them, so a stored profile
can be compared with a new one (:mod:`workers.engine.latency.regression`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from workers.engine.arrays import Array
from workers.engine.latency._json import json_dict
from workers.engine.latency.host import HostFacts
from workers.engine.latency.memory import MemoryUsage
from workers.engine.latency.samples import decode_samples
from workers.engine.latency.stability import StabilityReport
from workers.engine.latency.stats import LatencySummary

__all__ = [
    "SCHEMA_VERSION",
    "CellKey",
    "CellResult",
    "ColdStart",
    "ConcurrencyLevel",
    "ConcurrencySweep",
    "ProfileResult",
    "Recommendation",
    "VariantResult",
    "Verdict",
    "from_dict",
]

#: Version of the result layout; bumped when a field changes meaning.
SCHEMA_VERSION = 1

T = TypeVar("T")


@dataclass(frozen=True)
class CellKey:
    """One point of the grid. ``threads=None`` leaves the backend's default."""

    backend: str
    device: str
    precision: str
    batch_size: int
    threads: int | None

    @property
    def label(self) -> str:
        """``"onnxruntime/cpu/fp32/b1/t2"``: short and unique within a grid."""
        threads = "default" if self.threads is None else str(self.threads)
        return f"{self.backend}/{self.device}/{self.precision}/b{self.batch_size}/t{threads}"

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


@dataclass(frozen=True)
class ColdStart:
    """Time to a first answer from a fresh backend instance in this process.

    ``import_s`` is the time to import the runtime library, non-zero only
    for the first cell of a backend in a process. ``load_s`` covers
    ``Backend.load()`` (reading, optimising and compiling the model);
    ``first_inference_ms`` the first ``predict`` after it, which often pays
    for lazy allocation and kernel selection. The model file is usually in
    the OS page cache by then, so a cold disk read is not included.
    """

    import_s: float
    load_s: float
    first_inference_ms: float


@dataclass(frozen=True)
class VariantResult:
    """One measured variant of a cell: the model alone, or preprocessing and model together.

    ``latency`` is timed around the call from Python (what a caller of the
    service waits); ``runtime_latency``, where the backend reports it, is
    the runtime's own timing of the same calls (what OpenVINO's
    benchmark_app reports), and the difference between the two is the
    per-call overhead of the Python binding. ``samples`` holds every raw
    latency of the reported windows (``sample_count`` of them), in order and
    losslessly encoded (:mod:`workers.engine.latency.samples`): every
    reported percentile can be recomputed from it exactly, and regression
    checks read it. ``samples_ns`` holds up to the grid's ``keep_samples`` of
    them, evenly spaced in time, for charts. ``bimodal`` is set when
    :func:`~workers.engine.latency.stats.bimodality_gap` exceeds its
    threshold: the samples form two groups and no single percentile
    describes them.
    """

    variant: str
    latency: LatencySummary
    stability: StabilityReport
    warmup_calls: int
    warmup_s: float
    samples_ns: list[int]
    sample_count: int
    bimodality_gap: float
    bimodal: bool
    runtime_latency: LatencySummary | None = None
    samples: dict[str, Any] | None = None
    #: Every runtime timing behind ``runtime_latency``, encoded like ``samples``.
    runtime_samples: dict[str, Any] | None = None

    def all_samples_ns(self) -> Array:
        """Every sample the percentiles were computed from (the chart subset for results stored without them)."""
        if self.samples is not None:
            return decode_samples(self.samples)
        return np.asarray(self.samples_ns, dtype=np.int64)


@dataclass(frozen=True)
class ConcurrencyLevel:
    """Latency and throughput with ``concurrency`` requests in flight at once."""

    concurrency: int
    latency: LatencySummary
    stability: StabilityReport
    within_latency_objective: bool | None = None
    #: Every call latency behind ``latency``, encoded as :mod:`workers.engine.latency.samples` says.
    samples: dict[str, Any] | None = None


@dataclass(frozen=True)
class ConcurrencySweep:
    """The concurrency levels of one cell and where latency starts to climb.

    Each in-flight request is served by its own backend instance (one
    replica per thread: OpenVINO needs one infer request per concurrent
    call, and it keeps every backend comparable). ``latency_climbs_at`` is
    the first level whose median latency exceeds the lowest level's by more
    than ``climb_threshold``; ``best_throughput_at`` the level with the most
    rows/s; ``max_within_latency_objective`` the highest level that still
    meets the latency objective (``None`` without one).
    """

    levels: list[ConcurrencyLevel]
    latency_climbs_at: int | None
    best_throughput_at: int | None
    climb_threshold: float
    max_within_latency_objective: int | None = None
    error: str = ""


@dataclass(frozen=True)
class Verdict:
    """A cell judged against the objectives.

    ``latency``/``throughput`` are ``"pass"``, ``"fail"``,
    ``"not_applicable"`` (the objective is for another batch size) or
    ``None`` (no such objective). ``passed`` is true when every objective
    set applies and passes.
    """

    latency: str | None
    latency_ms: float | None
    throughput: str | None
    throughput_rows_s: float | None
    passed: bool
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CellResult:
    """Everything measured for one grid cell.

    ``status`` is ``"ok"``, ``"unavailable"`` (the backend or device is not
    on this worker) or ``"failed"`` (``error`` says why); the other cells
    are measured either way. ``model`` is the model-only measurement,
    ``with_preprocessing`` the one with preprocessing inside the timed
    region; ``preprocessing_ms`` the difference of their medians.
    ``memory`` covers the cell's load, warm-up and measurements, not the
    extra replicas of the concurrency sweep.
    """

    key: CellKey
    status: str
    error: str = ""
    backend: dict[str, Any] = field(default_factory=dict)
    input_source: str = ""
    input_description: str = ""
    cold_start: ColdStart | None = None
    model: VariantResult | None = None
    with_preprocessing: VariantResult | None = None
    preprocessing_ms: float | None = None
    memory: MemoryUsage | None = None
    concurrency: ConcurrencySweep | None = None
    verdict: Verdict | None = None
    seconds: float = 0.0

    def variant(self, name: str) -> VariantResult | None:
        """``"model"`` or ``"with_preprocessing"``."""
        if name == "model":
            return self.model
        if name == "with_preprocessing":
            return self.with_preprocessing
        raise ValueError(f"unknown variant {name!r}")


@dataclass(frozen=True)
class Recommendation:
    """The configuration to deploy, and why."""

    key: CellKey
    label: str
    reason: str
    latency_ms: float | None
    throughput_rows_s: float
    stable: bool


@dataclass(frozen=True)
class ProfileResult:
    """A whole profile: the grid, the host, one result per cell, and the recommendation.

    ``recommendation`` is ``None`` with ``recommendation_reason`` saying why
    (no cell met the objectives, no cell could be measured).
    """

    model: dict[str, Any]
    grid: dict[str, Any]
    objectives: dict[str, Any] | None
    host: HostFacts
    cells: list[CellResult]
    recommendation: Recommendation | None
    recommendation_reason: str
    started_at: str
    seconds: float
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileResult:
        """Rebuild a result from :meth:`to_dict` output (after a JSON round trip too)."""
        return from_dict(cls, data)

    def cell(self, key: CellKey) -> CellResult | None:
        """The result for ``key``, or ``None`` if the grid had no such cell."""
        for cell in self.cells:
            if cell.key == key:
                return cell
        return None


def from_dict(cls: type[T], data: Any) -> T:
    """Build dataclass ``cls`` (and its nested dataclasses) from plain JSON data.

    Unknown keys are ignored so a newer result still loads in an older
    reader; missing keys take the field's default.
    """
    return typing.cast(T, _build(cls, data))


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _build(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _build(options[0], data)
        for option in options:  # e.g. int | str: keep the value as it came
            if isinstance(option, type) and isinstance(data, option):
                return data
        return data
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _build(hints[f.name], data[f.name])
        return tp(**kwargs)
    if origin is list:
        return [_build(args[0], item) for item in data] if args else list(data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], item) for item in data)
        if args:
            return tuple(_build(a, item) for a, item in zip(args, data, strict=False))
        return tuple(data)
    if origin is dict:
        return {k: _build(args[1], v) for k, v in data.items()} if args else dict(data)
    if tp is float and isinstance(data, int):
        return float(data)
    return data
