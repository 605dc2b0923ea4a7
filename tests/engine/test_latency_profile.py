"""A real profile of a tiny ONNX model on ONNX Runtime (CPU), with fast settings."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from workers.engine.errors import EngineError
from workers.engine.inference.registry import get_backend_class
from workers.engine.latency import (
    LatencyObjective,
    Objectives,
    ProfileGrid,
    ProfileResult,
    RowsInputs,
    StabilityRule,
    SyntheticInputs,
    ThroughputObjective,
    concurrency_levels,
    host_facts,
    profile_grid,
    synthetic_batch,
    tabular_preprocess,
)
from workers.engine.latency.profile import thread_option
from workers.engine.types import ModelSpec, TensorSpec

FEATURES = 16

FAST = StabilityRule(min_calls=30, min_window_s=0.05, max_windows=6, max_seconds=1.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> ModelSpec:
    """``relu(x @ W + b)`` on 16 features: microseconds per call."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [
            numpy_helper.from_array(rng.standard_normal((FEATURES, 8)).astype(np.float32), "w"),
            numpy_helper.from_array(np.zeros(8, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    onnx.save(model, path)
    return ModelSpec(path=str(path), format="onnx", sha256="tiny")


def test_profile_fields_are_present_and_consistent(tiny):
    grid = ProfileGrid(
        batch_sizes=(1, 4),
        threads=(1,),
        concurrency=(1, 2),
        rule=FAST,
        warmup_calls=5,
        warmup_s=0.02,
        keep_samples=200,
    )
    objectives = Objectives(
        latency=LatencyObjective(max_ms=50.0, percentile=99, batch_size=1), throughput=ThroughputObjective(10.0)
    )
    seen: list[tuple[int, int]] = []
    result = profile_grid(tiny, grid, SyntheticInputs(), objectives, progress=lambda d, t: seen.append((d, t)))

    assert seen == [(1, 2), (2, 2)]
    assert [c.key.label for c in result.cells] == ["onnxruntime/cpu/fp32/b1/t1", "onnxruntime/cpu/fp32/b4/t1"]
    for cell in result.cells:
        assert cell.status == "ok", cell.error
        assert cell.backend["backend"] == "onnxruntime" and cell.input_source == "synthetic"
        assert cell.cold_start is not None and cell.cold_start.load_s > 0 and cell.cold_start.first_inference_ms > 0
        v = cell.model
        assert v is not None and cell.with_preprocessing is None
        s = v.latency
        assert s.count == v.sample_count >= 3 * FAST.min_calls
        assert 0 < s.min_ms <= s.p50_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms
        assert s.batch_size == cell.key.batch_size
        # throughput is counted over wall time, which includes the loop between calls
        assert s.throughput_batches_s <= 1e3 / s.mean_ms
        assert s.throughput_batches_s == pytest.approx(1e3 / s.mean_ms, rel=0.5)
        assert s.throughput_rows_s == pytest.approx(s.throughput_batches_s * cell.key.batch_size)
        assert len(v.samples_ns) == min(200, v.sample_count)
        assert v.stability.reason in ("stable", "max_windows", "max_seconds")
        assert len(v.stability.windows) >= 3 and v.warmup_calls >= 5
        assert v.runtime_latency is None  # ONNX Runtime keeps no per-call timing of its own
        assert cell.memory is not None and cell.memory.peak_rss_bytes and cell.memory.peak_rss_bytes > 0
        assert cell.memory.gpu_bytes is None and cell.memory.gpu_reason
        # one entry per concurrency level
        sweep = cell.concurrency
        assert sweep is not None and [lvl.concurrency for lvl in sweep.levels] == [1, 2] and not sweep.error
        assert all(lvl.latency.count > 0 and lvl.latency.throughput_rows_s > 0 for lvl in sweep.levels)
        assert sweep.best_throughput_at in (1, 2)
    b1, b4 = result.cells
    assert b1.verdict is not None and b1.verdict.latency == "pass" and b1.verdict.passed
    assert b4.verdict is not None and b4.verdict.latency == "not_applicable" and not b4.verdict.passed
    assert b1.concurrency is not None and b1.concurrency.max_within_latency_objective == 2
    assert result.recommendation is not None and result.recommendation.label == b1.key.label

    host = result.host
    assert host.cpu_logical >= 1 and host.cpu_model and host.load_before and host.load_after
    assert "onnxruntime" in host.libraries and "numpy" in host.libraries
    assert result.model == {"sha256": "tiny", "format": "onnx"}

    # to_dict() is plain JSON already (lists, finite numbers), and the stored JSON rebuilds the same result
    stored = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert stored == result.to_dict()
    rebuilt = ProfileResult.from_dict(stored)
    assert rebuilt.cells[0].key == b1.key and rebuilt.cells[0].model.latency == b1.model.latency
    assert json.loads(json.dumps(rebuilt.to_dict())) == stored
    assert ProfileGrid.from_dict(stored["grid"]) == grid


def test_preprocessing_in_and_out_of_the_measurement(tiny):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.standard_normal((100, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])

    def preprocess(rows: pd.DataFrame, specs: tuple[TensorSpec, ...]) -> dict[str, np.ndarray]:
        scaled = (rows - 0.5) / 2.0  # a scaler, as the service would apply it
        return tabular_preprocess(scaled, specs)

    grid = ProfileGrid(batch_sizes=(8,), threads=(1,), preprocessing="both", rule=FAST, warmup_s=0.02)
    result = profile_grid(tiny, grid, RowsInputs(frame, preprocess, description="frame"))
    cell = result.cells[0]
    assert cell.status == "ok", cell.error
    assert cell.input_source == "dataset" and cell.input_description == "frame"
    assert cell.model is not None and cell.with_preprocessing is not None
    # pandas arithmetic costs far more than this model: preprocessing shows
    assert cell.with_preprocessing.latency.p50_ms > cell.model.latency.p50_ms
    assert cell.preprocessing_ms == pytest.approx(cell.with_preprocessing.latency.p50_ms - cell.model.latency.p50_ms)

    # synthetic inputs have no preprocessing to put in the measurement
    only_in = ProfileGrid(batch_sizes=(1,), preprocessing="in", rule=FAST)
    failed = profile_grid(tiny, only_in, SyntheticInputs()).cells[0]
    assert failed.status == "failed" and "preprocessing" in failed.error


def test_unavailable_and_failing_cells_do_not_stop_the_others(tiny):
    grid = ProfileGrid(backends=("onnxruntime",), devices=("cpu", "cuda"), rule=FAST, warmup_s=0.0)
    result = profile_grid(tiny, grid, SyntheticInputs(), Objectives(latency=LatencyObjective(max_ms=100.0)))
    by_device = {c.key.device: c for c in result.cells}
    assert by_device["cpu"].status == "ok"
    assert by_device["cuda"].status == "unavailable" and by_device["cuda"].error
    assert by_device["cuda"].verdict is not None and not by_device["cuda"].verdict.passed
    assert result.recommendation is not None and result.recommendation.key.device == "cpu"
    unknown = profile_grid(tiny, ProfileGrid(backends=("nope",), rule=FAST), SyntheticInputs())
    assert unknown.cells[0].status == "failed" and "unknown backend" in unknown.cells[0].error
    assert unknown.recommendation is None and unknown.recommendation_reason == "no cell could be measured"


def test_synthetic_inputs_follow_the_signature():
    specs = (
        TensorSpec("pixels", "float32", ("batch", 3, 8, 8)),
        TensorSpec("ids", "int64", ("batch", "sequence")),
        TensorSpec("mask", "bool", (None, "sequence")),
    )
    batch = synthetic_batch(specs, 4, dims={"sequence": 12})
    assert batch["pixels"].shape == (4, 3, 8, 8) and batch["pixels"].dtype == np.float32
    assert batch["ids"].shape == (4, 12) and batch["ids"].dtype == np.int64 and batch["ids"].max() <= 1
    assert batch["mask"].shape == (4, 12) and batch["mask"].dtype == np.bool_
    with pytest.raises(EngineError, match="sequence"):
        synthetic_batch(specs, 4)
    with pytest.raises(EngineError, match="data set"):
        synthetic_batch((TensorSpec("text", "string", ("batch",)),), 1)
    made = SyntheticInputs(dims={"sequence": 5}, distinct=3)(2, specs)
    assert len(made.batches) == 3 and made.source == "synthetic" and not made.has_preprocessing


def test_grid_helpers():
    assert concurrency_levels(1) == (1,)
    assert concurrency_levels(8) == (1, 2, 4, 8)
    assert concurrency_levels(6) == (1, 2, 4, 6)
    grid = ProfileGrid(backends=("onnxruntime", "openvino"), batch_sizes=(1, 8), threads=(None, 2))
    assert len(grid.cells()) == 8 and grid.cells()[1].threads == 2
    with pytest.raises(EngineError):
        ProfileGrid(batch_sizes=())
    with pytest.raises(EngineError):
        ProfileGrid(preprocessing="sometimes")  # type: ignore[arg-type]
    assert thread_option(get_backend_class("onnxruntime")) == "intra_op_num_threads"


def test_host_facts_describe_this_machine():
    host = host_facts(with_gpu=False)
    assert host.cpu_logical == os.cpu_count()
    assert host.memory_total_bytes is None or host.memory_total_bytes > 0
    assert host.gpus == () and host.gpu_reason == "not queried"
    assert host.python.count(".") == 2
    assert json.loads(json.dumps(host.to_dict()))["cpu_model"] == host.cpu_model
