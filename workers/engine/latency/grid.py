"""The grid a latency profile covers, and how each of its cells is measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from workers.engine.errors import BackendUnavailable, EngineError
from workers.engine.inference.base import Backend
from workers.engine.latency._json import json_dict
from workers.engine.latency.results import CellKey
from workers.engine.latency.stability import StabilityRule
from workers.engine.latency.stats import PERCENTILE_METHODS, PercentileMethod

__all__ = ["THREAD_OPTIONS", "Preprocessing", "ProfileGrid", "backend_options", "thread_option"]

#: Backend option names that set the intra-op thread count, in order of preference.
THREAD_OPTIONS: tuple[str, ...] = ("threads", "intra_op_num_threads")

Preprocessing = Literal["out", "in", "both"]


@dataclass(frozen=True)
class ProfileGrid:
    """The grid a profile covers and how each cell is measured.

    Parameters
    ----------
    backends, devices, precisions, batch_sizes, threads:
        The axes; every combination is one cell. ``threads`` are intra-op
        thread counts, ``None`` for the backend's default.
    preprocessing:
        ``"out"`` times the model alone, ``"in"`` preprocessing and model
        together, ``"both"`` measures each (the inputs factory must give a
        preprocess callable for ``"in"``/``"both"``).
    concurrency:
        Levels for the concurrency sweep (e.g. ``(1, 2, 4)``); empty for none.
    rule:
        Stability rule of the single-stream measurement.
    concurrency_rule:
        Stability rule per concurrency level (default: ``rule``).
    warmup_calls, warmup_s:
        Warm-up ends once both are reached, or after ``warmup_max_s`` once
        at least one call has run (a slow model at a large batch).
    backend_options:
        Extra options per backend name, e.g. ``{"onnxruntime": {"graph_optimization_level": "all"}}``.
    keep_samples:
        Raw latencies kept per variant for regression tests (evenly spaced).
    percentile_method:
        See :mod:`workers.engine.latency.stats`.
    """

    backends: tuple[str, ...] = ("onnxruntime",)
    devices: tuple[str, ...] = ("cpu",)
    precisions: tuple[str, ...] = ("fp32",)
    batch_sizes: tuple[int, ...] = (1,)
    threads: tuple[int | None, ...] = (None,)
    preprocessing: Preprocessing = "out"
    concurrency: tuple[int, ...] = ()
    rule: StabilityRule = field(default_factory=StabilityRule)
    concurrency_rule: StabilityRule | None = None
    warmup_calls: int = 10
    warmup_s: float = 0.5
    warmup_max_s: float = 10.0
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    keep_samples: int = 5000
    percentile_method: PercentileMethod = "linear"

    def __post_init__(self) -> None:
        for axis in ("backends", "devices", "precisions", "batch_sizes", "threads"):
            if not getattr(self, axis):
                raise EngineError(f"the profile grid needs at least one value for {axis}")
        if any(b < 1 for b in self.batch_sizes):
            raise EngineError("batch sizes must be at least 1")
        if any(t is not None and t < 1 for t in self.threads):
            raise EngineError("thread counts must be at least 1 (or None for the backend's default)")
        if any(c < 1 for c in self.concurrency):
            raise EngineError("concurrency levels must be at least 1")
        if self.preprocessing not in ("out", "in", "both"):
            raise EngineError(f"preprocessing must be 'out', 'in' or 'both', got {self.preprocessing!r}")
        if self.percentile_method not in PERCENTILE_METHODS:
            raise EngineError(f"unknown percentile method {self.percentile_method!r}")
        if self.warmup_calls < 0 or self.warmup_s < 0 or self.warmup_max_s < 0 or self.keep_samples < 0:
            raise EngineError("warmup_calls, warmup_s, warmup_max_s and keep_samples cannot be negative")

    def cells(self) -> list[CellKey]:
        """Every cell, backends outermost and thread counts innermost."""
        return [
            CellKey(backend, device, precision, batch, threads)
            for backend in self.backends
            for device in self.devices
            for precision in self.precisions
            for batch in self.batch_sizes
            for threads in self.threads
        ]

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileGrid:
        """Build from JSON (lists become tuples, rules become :class:`StabilityRule`)."""
        values = dict(data)
        for axis in ("backends", "devices", "precisions", "batch_sizes", "threads", "concurrency"):
            if axis in values:
                values[axis] = tuple(values[axis])
        for key in ("rule", "concurrency_rule"):
            if isinstance(values.get(key), dict):
                values[key] = StabilityRule(**values[key])
        return cls(**values)


def thread_option(backend_cls: type[Backend]) -> str | None:
    """The option name through which ``backend_cls`` takes its intra-op thread count."""
    return next((name for name in THREAD_OPTIONS if name in backend_cls.option_names), None)


def backend_options(grid: ProfileGrid, key: CellKey, backend_cls: type[Backend]) -> dict[str, Any]:
    """The options a cell's backend is built with: the grid's for that backend, its precision and threads."""
    options = dict(grid.backend_options.get(key.backend, {}))
    options["precision"] = key.precision
    if key.threads is not None:
        name = thread_option(backend_cls)
        if name is None:
            raise BackendUnavailable(key.backend, "it has no option for the number of threads")
        options[name] = key.threads
    return options
