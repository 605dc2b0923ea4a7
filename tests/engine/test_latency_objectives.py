"""Verdicts against latency/throughput objectives and the recommended configuration."""

from __future__ import annotations

import pytest

from workers.engine.errors import EngineError
from workers.engine.latency.objectives import (
    LatencyObjective,
    Objectives,
    ThroughputObjective,
    judge,
    recommend,
)
from workers.engine.latency.results import CellKey, CellResult, VariantResult
from workers.engine.latency.stability import StabilityReport, StabilityRule
from workers.engine.latency.stats import LatencySummary


def summary(p99_ms: float, rows_s: float, batch: int) -> LatencySummary:
    p50 = p99_ms / 2
    return LatencySummary(
        count=1000,
        batch_size=batch,
        mean_ms=p50,
        std_ms=0.1,
        min_ms=p50 / 2,
        p50_ms=p50,
        p90_ms=p99_ms * 0.8,
        p95_ms=p99_ms * 0.9,
        p99_ms=p99_ms,
        max_ms=p99_ms * 2,
        wall_s=1.0,
        throughput_batches_s=rows_s / batch,
        throughput_rows_s=rows_s,
    )


def cell(
    backend: str,
    batch: int,
    p99_ms: float,
    rows_s: float,
    *,
    stable: bool = True,
    pre: tuple[float, float] | None = None,
    status: str = "ok",
) -> CellResult:
    key = CellKey(backend, "cpu", "fp32", batch, None)
    if status != "ok":
        return CellResult(key=key, status=status, error="no such device")
    report = StabilityReport(stable, "stable" if stable else "max_windows", (), 0.01, 0.01, 1.0, StabilityRule())

    def variant(name: str, p99: float, rows: float) -> VariantResult:
        return VariantResult(name, summary(p99, rows, batch), report, 10, 0.1, [], 1000, 0.0, False)

    return CellResult(
        key=key,
        status="ok",
        model=variant("model", p99_ms, rows_s),
        with_preprocessing=variant("with_preprocessing", *pre) if pre else None,
    )


def judged(cells: list[CellResult], objectives: Objectives) -> list[CellResult]:
    from dataclasses import replace

    return [replace(c, verdict=judge(c, objectives)) for c in cells]


def test_latency_objective_at_a_batch_size():
    obj = Objectives(latency=LatencyObjective(max_ms=20.0, percentile=99, batch_size=1))
    fast = judge(cell("onnxruntime", 1, 12.0, 100.0), obj)
    assert fast.latency == "pass" and fast.passed and fast.latency_ms == 12.0
    slow = judge(cell("torch", 1, 25.0, 60.0), obj)
    assert slow.latency == "fail" and not slow.passed
    other_batch = judge(cell("onnxruntime", 8, 5.0, 900.0), obj)
    assert other_batch.latency == "not_applicable" and not other_batch.passed
    assert "batch 1" in other_batch.notes[0]
    edge = judge(cell("openvino", 1, 20.0, 80.0), obj)
    assert edge.passed  # <= is inclusive


def test_throughput_objective_and_both_together():
    obj = Objectives(
        latency=LatencyObjective(max_ms=20.0, percentile=95), throughput=ThroughputObjective(min_rows_s=500.0)
    )
    v = judge(cell("onnxruntime", 8, 10.0, 800.0), obj)
    assert v.latency == "pass" and v.throughput == "pass" and v.passed
    assert v.latency_ms == pytest.approx(9.0)  # p95 of the helper summary
    v = judge(cell("onnxruntime", 1, 10.0, 300.0), obj)
    assert v.throughput == "fail" and not v.passed


def test_objective_with_preprocessing_uses_that_variant():
    obj = Objectives(latency=LatencyObjective(max_ms=20.0, with_preprocessing=True))
    assert judge(cell("onnxruntime", 1, 10.0, 100.0, pre=(30.0, 50.0)), obj).latency == "fail"
    assert judge(cell("onnxruntime", 1, 10.0, 100.0, pre=(15.0, 50.0)), obj).latency == "pass"
    missing = judge(cell("onnxruntime", 1, 10.0, 100.0), obj)
    assert missing.latency == "fail" and "not measured" in missing.notes[0]


def test_unmeasured_and_unstable_cells():
    obj = Objectives(latency=LatencyObjective(max_ms=20.0))
    v = judge(cell("tensorrt", 1, 0, 0, status="unavailable"), obj)
    assert not v.passed and v.latency is None
    v = judge(cell("onnxruntime", 1, 10.0, 100.0, stable=False), obj)
    assert v.passed and any("stabilise" in n for n in v.notes)


def test_recommends_most_rows_per_second_among_passing_cells():
    obj = Objectives(latency=LatencyObjective(max_ms=20.0, batch_size=1))
    cells = judged(
        [
            cell("onnxruntime", 1, 12.0, 150.0),
            cell("openvino", 1, 8.0, 220.0),
            cell("torch", 1, 25.0, 400.0),  # fastest but misses the objective
            cell("onnxruntime", 8, 4.0, 2000.0),  # other batch size: not applicable
            cell("tensorrt", 1, 0, 0, status="unavailable"),
        ],
        obj,
    )
    rec, reason = recommend(cells, obj)
    assert rec is not None and rec.key.backend == "openvino" and rec.key.batch_size == 1
    assert rec.throughput_rows_s == 220.0 and rec.latency_ms == 8.0 and rec.stable
    assert "p99 <= 20 ms at batch 1" in reason


def test_prefer_latency_and_stable_first():
    obj = Objectives(latency=LatencyObjective(max_ms=20.0), prefer="latency")
    cells = judged([cell("onnxruntime", 1, 12.0, 300.0), cell("openvino", 1, 8.0, 220.0)], obj)
    rec, _ = recommend(cells, obj)
    assert rec is not None and rec.key.backend == "openvino"
    obj = Objectives(latency=LatencyObjective(max_ms=20.0))
    cells = judged([cell("onnxruntime", 1, 12.0, 300.0), cell("openvino", 1, 8.0, 900.0, stable=False)], obj)
    rec, _ = recommend(cells, obj)
    assert rec is not None and rec.key.backend == "onnxruntime"  # a stable measurement beats a faster unstable one


def test_no_passing_cell_says_why_and_no_objective_picks_fastest():
    obj = Objectives(latency=LatencyObjective(max_ms=1.0), throughput=ThroughputObjective(min_rows_s=10.0))
    cells = judged([cell("onnxruntime", 1, 12.0, 300.0)], obj)
    rec, reason = recommend(cells, obj)
    assert rec is None and reason == "no configuration meets p99 <= 1 ms and >= 10 rows/s"
    rec, reason = recommend([cell("onnxruntime", 1, 12.0, 300.0), cell("openvino", 4, 9.0, 700.0)], None)
    assert rec is not None and rec.key.backend == "openvino" and "no objective" in reason
    assert recommend([cell("x", 1, 0, 0, status="failed")], None) == (None, "no cell could be measured")


def test_objective_validation_and_json():
    with pytest.raises(EngineError):
        LatencyObjective(max_ms=10.0, percentile=75)
    with pytest.raises(EngineError):
        ThroughputObjective(min_rows_s=0)
    obj = Objectives(latency=LatencyObjective(max_ms=20.0, batch_size=1), throughput=ThroughputObjective(100.0))
    assert Objectives.from_dict(obj.to_dict()) == obj
    assert Objectives.from_dict(None) == Objectives()
