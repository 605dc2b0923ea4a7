"""When to stop measuring: the window rule of Triton's perf_analyzer.

Calls are timed in consecutive *windows*. A window closes once it holds at
least :attr:`StabilityRule.min_calls` calls **and** has lasted
:attr:`StabilityRule.min_window_s` seconds. After each window the last
:attr:`StabilityRule.windows` windows (3 by default) are compared: the
measurement is *stable* when, across them, both the median latency and the
throughput vary by at most :attr:`StabilityRule.tolerance` (10 %), taken as
``max / min <= 1 + tolerance`` exactly as perf_analyzer's
``IsInferWindowStable``/``IsLatencyWindowStable`` do. The reported
statistics are those of the stable windows merged, as perf_analyzer merges
them. A measurement that is still not stable after
:attr:`StabilityRule.max_windows` windows or :attr:`StabilityRule.max_seconds`
seconds stops and is reported as *unstable*, with its numbers, so a user
sees both the figures and that they should not be trusted.

perf_analyzer stabilises on the average latency unless a percentile is
asked for; the median is used here because one preempted call on a shared
machine moves the mean of a window far more than its median.

:func:`evaluate_sequence` applies the rule to a recorded timing sequence
(pure, for tests and for re-checking stored samples);
:func:`measure_until_stable` is the driver that times real calls, with the
clock injectable so tests can feed it synthetic timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.latency._json import json_dict

__all__ = [
    "Measurement",
    "StabilityReport",
    "StabilityRule",
    "Window",
    "evaluate_sequence",
    "is_stable",
    "measure_until_stable",
    "spreads",
]

Clock = Callable[[], int]


@dataclass(frozen=True)
class StabilityRule:
    """When a measurement counts as stable, and when to give up.

    Parameters
    ----------
    min_calls:
        Calls a window needs at least (perf_analyzer's count-window default
        is 50).
    min_window_s:
        Seconds a window lasts at least, so fast models are not judged on a
        few milliseconds of timings.
    windows:
        How many consecutive windows must agree (perf_analyzer: 3).
    tolerance:
        Largest allowed spread, as ``max / min - 1``, of the windows' median
        latency and of their throughput (perf_analyzer: 10 %).
    max_windows:
        Cap on windows (perf_analyzer's ``max_trials``, 10) after which the
        measurement is reported as unstable.
    max_seconds:
        Cap on measurement time; the window in progress closes when it is
        reached.
    min_samples:
        Calls timed before the time cap may end the measurement (0: none),
        so a slow model still yields enough samples to compare (a
        regression test needs 20). Windows still close as usual, so the
        reported windows hold at least ``min(min_samples, 2·min_calls)``.
    """

    min_calls: int = 50
    min_window_s: float = 1.0
    windows: int = 3
    tolerance: float = 0.10
    max_windows: int = 10
    max_seconds: float = 60.0
    min_samples: int = 0

    def __post_init__(self) -> None:
        if self.min_calls < 1:
            raise EngineError(f"min_calls must be at least 1, got {self.min_calls}")
        if self.min_window_s < 0:
            raise EngineError(f"min_window_s cannot be negative, got {self.min_window_s}")
        if self.windows < 1:
            raise EngineError(f"windows must be at least 1, got {self.windows}")
        if not 0 < self.tolerance < 1:
            raise EngineError(f"tolerance must be between 0 and 1, got {self.tolerance}")
        if self.max_windows < self.windows:
            raise EngineError(f"max_windows ({self.max_windows}) cannot be below windows ({self.windows})")
        if self.max_seconds <= 0:
            raise EngineError(f"max_seconds must be positive, got {self.max_seconds}")
        if self.min_samples < 0:
            raise EngineError(f"min_samples cannot be negative, got {self.min_samples}")

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


@dataclass(frozen=True)
class Window:
    """One measurement window: its calls, wall time, median latency and throughput.

    ``complete`` is false for a window cut short by the time cap (fewer than
    ``min_calls`` calls or shorter than ``min_window_s``); such a window
    never counts towards stability.
    """

    calls: int
    seconds: float
    p50_ms: float
    mean_ms: float
    throughput_batches_s: float
    complete: bool = True

    @classmethod
    def of(cls, durations_ns: Sequence[int] | Array, wall_ns: int, *, complete: bool = True) -> Window:
        """Build a window from its call durations and its wall-clock length."""
        values = np.asarray(durations_ns, dtype=np.float64)
        if values.size == 0:
            raise EngineError("a measurement window needs at least one call", permanent=False)
        wall = max(int(wall_ns), 1)
        return cls(
            calls=int(values.size),
            seconds=wall / 1e9,
            p50_ms=float(np.median(values)) / 1e6,
            mean_ms=float(values.mean()) / 1e6,
            throughput_batches_s=values.size / (wall / 1e9),
            complete=complete,
        )

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


def spreads(windows: Sequence[Window], count: int) -> tuple[float, float] | None:
    """``(p50 spread, throughput spread)`` of the last ``count`` windows, each as ``max / min - 1``.

    ``None`` when there are fewer than ``count`` windows.
    """
    if count < 1 or len(windows) < count:
        return None
    last = windows[-count:]
    p50 = [w.p50_ms for w in last]
    tput = [w.throughput_batches_s for w in last]
    return _spread(p50), _spread(tput)


def _spread(values: list[float]) -> float:
    low, high = min(values), max(values)
    if low <= 0:
        return float("inf") if high > 0 else 0.0
    return high / low - 1.0


def is_stable(windows: Sequence[Window], rule: StabilityRule) -> bool:
    """Whether the last ``rule.windows`` windows are complete and agree within ``rule.tolerance``."""
    found = spreads(windows, rule.windows)
    if found is None or not all(w.complete for w in windows[-rule.windows :]):
        return False
    # A small epsilon so that a spread of exactly the tolerance passes despite float rounding.
    limit = rule.tolerance + 1e-12
    return found[0] <= limit and found[1] <= limit


@dataclass(frozen=True)
class StabilityReport:
    """How a measurement ended.

    ``reason`` is ``"stable"``, ``"max_windows"`` (the trial cap was reached
    first), ``"max_seconds"`` (the time cap), or ``"sequence_ended"`` (a
    recorded sequence ran out before the rule could decide).
    ``p50_spread``/``throughput_spread`` are those of the last
    ``rule.windows`` windows (``None`` with fewer windows).
    """

    stable: bool
    reason: str
    windows: tuple[Window, ...]
    p50_spread: float | None
    throughput_spread: float | None
    seconds: float
    rule: StabilityRule = field(default_factory=StabilityRule)

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


@dataclass(frozen=True)
class Measurement:
    """The samples a measurement reports, with how it ended.

    ``samples_ns`` and ``wall_ns`` cover the reported windows only: the last
    ``rule.windows`` windows (the stable ones when stable), as perf_analyzer
    merges them. ``total_calls`` counts every timed call.
    """

    samples_ns: Array
    wall_ns: int
    report: StabilityReport
    total_calls: int
    #: What ``after()`` returned after each reported call (see :func:`measure_until_stable`).
    side_ns: Array | None = None


def _report(windows: list[Window], rule: StabilityRule, reason: str, seconds: float) -> StabilityReport:
    found = spreads(windows, min(rule.windows, len(windows))) if windows else None
    return StabilityReport(
        stable=reason == "stable",
        reason=reason,
        windows=tuple(windows),
        p50_spread=found[0] if found and len(windows) >= rule.windows else None,
        throughput_spread=found[1] if found and len(windows) >= rule.windows else None,
        seconds=seconds,
        rule=rule,
    )


def _merge(chunks: list[Array], walls: list[int], rule: StabilityRule) -> tuple[Array, int]:
    kept = chunks[-rule.windows :]
    return (np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)), int(sum(walls[-rule.windows :]))


def evaluate_sequence(durations_ns: Sequence[int] | Array, rule: StabilityRule, *, gap_ns: int = 0) -> Measurement:
    """Apply the window rule to a recorded timing sequence.

    Parameters
    ----------
    durations_ns:
        Call latencies in the order they happened.
    rule:
        The stability rule.
    gap_ns:
        Time between two calls (loop overhead), added to the wall clock.

    Returns
    -------
    Measurement
        As :func:`measure_until_stable` would have returned had the calls
        taken these times: same windows, same verdict, same reported samples.
    """
    values = np.asarray(durations_ns, dtype=np.int64).ravel()
    window_ns = int(rule.min_window_s * 1e9)
    cap_ns = int(rule.max_seconds * 1e9)
    windows: list[Window] = []
    chunks: list[Array] = []
    walls: list[int] = []
    elapsed = 0
    start = 0
    w_elapsed = 0
    reason = "sequence_ended"
    for index, duration in enumerate(values.tolist()):
        w_elapsed += duration
        elapsed += duration
        calls = index - start + 1
        done = w_elapsed >= window_ns and calls >= rule.min_calls
        capped = elapsed >= cap_ns and index + 1 >= rule.min_samples
        if done or capped:
            chunk = values[start : index + 1]
            windows.append(Window.of(chunk, w_elapsed, complete=done))
            chunks.append(chunk)
            walls.append(w_elapsed)
            start, w_elapsed = index + 1, 0
            if is_stable(windows, rule):
                reason = "stable"
                break
            if capped:
                reason = "max_seconds"
                break
            if len(windows) >= rule.max_windows:
                reason = "max_windows"
                break
        w_elapsed += gap_ns
        elapsed += gap_ns
    samples, wall = _merge(chunks, walls, rule)
    calls_done = sum(w.calls for w in windows)
    return Measurement(samples, wall, _report(windows, rule, reason, elapsed / 1e9), calls_done)


def measure_until_stable(
    call: Callable[[Any], object],
    payloads: Sequence[Any],
    rule: StabilityRule,
    *,
    clock: Clock = time.perf_counter_ns,
    after: Callable[[], int] | None = None,
) -> Measurement:
    """Time ``call(payload)`` in windows until the rule says stable or a cap is reached.

    Parameters
    ----------
    call:
        What to time, e.g. a backend's bound ``predict``; its result is
        dropped. Pass the bound method itself rather than a lambda around it:
        every extra Python frame is per-call overhead the numbers would carry.
    payloads:
        Arguments cycled through, one per call, built before the loop.
    rule:
        When to stop.
    clock:
        Nanosecond clock (``time.perf_counter_ns``); tests pass a fake one.
    after:
        Read after every call, outside the timed region: the runtime's own
        timing of that call, where the backend keeps one. Its values for the
        reported windows come back as ``Measurement.side_ns``.

    Notes
    -----
    Only ``call`` sits between the two clock reads. The loop keeps no
    per-call state beyond appending one int to a list; window statistics are
    computed between windows, outside any timed region and outside any
    window's wall time.
    """
    count = len(payloads)
    if count == 0:
        raise EngineError("no inputs to time", permanent=False)
    window_ns = int(rule.min_window_s * 1e9)
    min_calls = rule.min_calls
    windows: list[Window] = []
    chunks: list[Array] = []
    side_chunks: list[Array] = []
    walls: list[int] = []
    begin = clock()
    deadline = begin + int(rule.max_seconds * 1e9)
    j = 0
    reason = "max_windows"
    taken = 0  # calls in the windows closed so far
    still_needed = rule.min_samples
    while True:
        durations: list[int] = []
        append = durations.append
        side: list[int] = []
        calls = 0
        w_start = clock()
        w_end = w_start + window_ns
        capped = False
        t1 = w_start
        if after is None:
            while True:
                t0 = clock()
                call(payloads[j])
                t1 = clock()
                append(t1 - t0)
                j += 1
                if j == count:
                    j = 0
                calls += 1
                if t1 >= w_end and calls >= min_calls:
                    break
                if t1 >= deadline and calls >= still_needed:
                    capped = True
                    break
        else:
            # The same loop with one more read per call, kept apart so the
            # common case pays nothing for it.
            side_append = side.append
            while True:
                t0 = clock()
                call(payloads[j])
                t1 = clock()
                append(t1 - t0)
                side_append(after())
                j += 1
                if j == count:
                    j = 0
                calls += 1
                if t1 >= w_end and calls >= min_calls:
                    break
                if t1 >= deadline and calls >= still_needed:
                    capped = True
                    break
            side_chunks.append(np.asarray(side, dtype=np.int64))
        wall = t1 - w_start
        chunk = np.asarray(durations, dtype=np.int64)
        windows.append(Window.of(chunk, wall, complete=wall >= window_ns and calls >= min_calls))
        chunks.append(chunk)
        walls.append(wall)
        if is_stable(windows, rule):
            reason = "stable"
            break
        taken += calls
        still_needed = rule.min_samples - taken
        if capped or (t1 >= deadline and still_needed <= 0):
            reason = "max_seconds"
            break
        if len(windows) >= rule.max_windows:
            reason = "max_windows"
            break
    samples, wall_ns = _merge(chunks, walls, rule)
    total = sum(w.calls for w in windows)
    side_ns = np.concatenate(side_chunks[-rule.windows :]) if side_chunks else None
    return Measurement(samples, wall_ns, _report(windows, rule, reason, (clock() - begin) / 1e9), total, side_ns)
