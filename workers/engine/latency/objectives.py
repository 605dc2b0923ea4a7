"""Service-level objectives: a pass/fail verdict per cell and the configuration to deploy.

A latency objective reads "p99 <= 20 ms", optionally "at batch 1": cells
at another batch size are then *not applicable* and never recommended, since
the objective says nothing about them. A throughput objective reads
">= 500 rows/s". Either may apply to the model alone (default) or to
preprocessing and model together.

The recommendation is the fastest cell that passes every objective set:
the most rows/s (the latency objective being the constraint, more rows/s
means fewer machines), ties broken by the lower latency at the objective's
percentile; with ``prefer="latency"`` the lowest latency wins instead.
Stable cells come before unstable ones whatever their speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workers.engine.errors import EngineError
from workers.engine.latency._json import json_dict
from workers.engine.latency.results import CellResult, Recommendation, VariantResult, Verdict
from workers.engine.latency.stats import PERCENTILES, LatencySummary

__all__ = ["LatencyObjective", "Objectives", "ThroughputObjective", "judge", "recommend"]


@dataclass(frozen=True)
class LatencyObjective:
    """``p{percentile} <= max_ms``, for cells at ``batch_size`` (all cells when ``None``)."""

    max_ms: float
    percentile: int = 99
    batch_size: int | None = None
    with_preprocessing: bool = False

    def __post_init__(self) -> None:
        if self.percentile not in PERCENTILES:
            raise EngineError(f"the latency objective's percentile must be one of {', '.join(map(str, PERCENTILES))}")
        if self.max_ms <= 0:
            raise EngineError("the latency objective must be a positive number of milliseconds")

    @property
    def text(self) -> str:
        at = f" at batch {self.batch_size}" if self.batch_size is not None else ""
        return f"p{self.percentile} <= {self.max_ms:g} ms{at}"


@dataclass(frozen=True)
class ThroughputObjective:
    """At least ``min_rows_s`` rows per second."""

    min_rows_s: float
    with_preprocessing: bool = False

    def __post_init__(self) -> None:
        if self.min_rows_s <= 0:
            raise EngineError("the throughput objective must be a positive number of rows per second")

    @property
    def text(self) -> str:
        return f">= {self.min_rows_s:g} rows/s"


@dataclass(frozen=True)
class Objectives:
    """What the user asks of a deployment; either objective may be left out."""

    latency: LatencyObjective | None = None
    throughput: ThroughputObjective | None = None
    prefer: Literal["throughput", "latency"] = "throughput"

    def __post_init__(self) -> None:
        if self.prefer not in ("throughput", "latency"):
            raise EngineError(f"prefer must be 'throughput' or 'latency', got {self.prefer!r}")

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Objectives:
        """Build from the JSON the service stores (``None`` means no objectives)."""
        data = data or {}
        latency = data.get("latency")
        throughput = data.get("throughput")
        return cls(
            latency=LatencyObjective(**latency) if latency else None,
            throughput=ThroughputObjective(**throughput) if throughput else None,
            prefer=data.get("prefer", "throughput"),
        )


def _variant(cell: CellResult, with_preprocessing: bool) -> VariantResult | None:
    return cell.with_preprocessing if with_preprocessing else cell.model


def _missing(with_preprocessing: bool) -> str:
    name = "with-preprocessing" if with_preprocessing else "model-only"
    return f"the {name} variant was not measured"


def judge(cell: CellResult, objectives: Objectives) -> Verdict:
    """Judge one measured cell; cells that did not run fail with a note."""
    notes: list[str] = []
    latency_state: str | None = None
    latency_ms: float | None = None
    tput_state: str | None = None
    tput: float | None = None
    if cell.status != "ok":
        return Verdict(None, None, None, None, False, [f"not measured: {cell.status}"])
    lat = objectives.latency
    if lat is not None:
        variant = _variant(cell, lat.with_preprocessing)
        if lat.batch_size is not None and cell.key.batch_size != lat.batch_size:
            latency_state = "not_applicable"
            notes.append(f"the latency objective is for batch {lat.batch_size}")
        elif variant is None:
            latency_state = "fail"
            notes.append(_missing(lat.with_preprocessing))
        else:
            latency_ms = variant.latency.percentile_ms(lat.percentile)
            latency_state = "pass" if latency_ms <= lat.max_ms else "fail"
    thr = objectives.throughput
    if thr is not None:
        variant = _variant(cell, thr.with_preprocessing)
        if variant is None:
            tput_state = "fail"
            notes.append(_missing(thr.with_preprocessing))
        else:
            tput = variant.latency.throughput_rows_s
            tput_state = "pass" if tput >= thr.min_rows_s else "fail"
    states = [s for s in (latency_state, tput_state) if s is not None]
    passed = bool(states) and all(s == "pass" for s in states)
    if not states:
        notes.append("no objective set")
    measured = cell.model or cell.with_preprocessing
    if measured is not None and not measured.stability.stable:
        notes.append("the measurement did not stabilise: treat the figures with care")
    return Verdict(latency_state, latency_ms, tput_state, tput, passed, notes)


def _speed(cell: CellResult, objectives: Objectives) -> tuple[float, float]:
    lat_obj = objectives.latency
    with_pre = bool(
        (lat_obj and lat_obj.with_preprocessing) or (objectives.throughput and objectives.throughput.with_preprocessing)
    )
    variant = _variant(cell, with_pre) or cell.model or cell.with_preprocessing
    assert variant is not None
    summary: LatencySummary = variant.latency
    latency = summary.percentile_ms(lat_obj.percentile) if lat_obj else summary.p50_ms
    return summary.throughput_rows_s, latency


def recommend(cells: Sequence[CellResult], objectives: Objectives | None) -> tuple[Recommendation | None, str]:
    """Pick the fastest cell that meets the objectives.

    Returns
    -------
    (recommendation, reason)
        ``recommendation`` is ``None`` when no cell qualifies, and ``reason``
        says why; otherwise ``reason`` repeats the recommendation's.
    """
    objectives = objectives or Objectives()
    measured = [c for c in cells if c.status == "ok" and (c.model or c.with_preprocessing)]
    if not measured:
        return None, "no cell could be measured"
    has_objective = objectives.latency is not None or objectives.throughput is not None
    if has_objective:
        candidates = [c for c in measured if c.verdict is not None and c.verdict.passed]
        if not candidates:
            wanted = " and ".join(o.text for o in (objectives.latency, objectives.throughput) if o is not None)
            return None, f"no configuration meets {wanted}"
    else:
        candidates = measured

    def stable(cell: CellResult) -> bool:
        variant = cell.model or cell.with_preprocessing
        return bool(variant and variant.stability.stable)

    def rank(cell: CellResult) -> tuple[int, float, float]:
        rows_s, latency = _speed(cell, objectives)
        if objectives.prefer == "latency":
            return (0 if stable(cell) else 1, latency, -rows_s)
        return (0 if stable(cell) else 1, -rows_s, latency)

    best = min(candidates, key=rank)
    rows_s, latency = _speed(best, objectives)
    if has_objective:
        wanted = " and ".join(o.text for o in (objectives.latency, objectives.throughput) if o is not None)
        why = f"meets {wanted}"
    else:
        why = "no objective set"
    order = "lowest latency" if objectives.prefer == "latency" else "most rows/s"
    reason = f"{best.key.label}: {why}; {order} of {len(candidates)} candidate(s)"
    if not stable(best):
        reason += "; its measurement did not stabilise"
    return (
        Recommendation(
            key=best.key,
            label=best.key.label,
            reason=reason,
            latency_ms=latency,
            throughput_rows_s=rows_s,
            stable=stable(best),
        ),
        reason,
    )
