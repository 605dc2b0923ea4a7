"""Stored latency samples reproduce every reported percentile exactly."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from workers.engine.latency import ProfileGrid, StabilityRule, SyntheticInputs, profile_grid
from workers.engine.latency.results import ProfileResult
from workers.engine.latency.samples import decode_samples, encode_samples

from .test_latency_regression import matmul_model


@pytest.mark.parametrize("scale", [1, 2**33], ids=["32-bit", "64-bit"])
def test_encoding_round_trips_exactly(scale: int) -> None:
    rng = np.random.default_rng(0)
    samples = (rng.lognormal(np.log(250_000), 0.3, 99_000) * scale).astype(np.int64)
    stored = json.loads(json.dumps(encode_samples(samples)))
    np.testing.assert_array_equal(decode_samples(stored), samples)
    # Readable with the standard library and numpy alone, as documented.
    raw = zlib.decompress(base64.b64decode(stored["data"]))
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(stored["itemsize"], stored["count"])
    np.testing.assert_array_equal(planes.T.copy().view(stored["dtype"]).ravel(), samples)
    if scale == 1:
        assert len(stored["data"]) < samples.size * 4  # smaller than the raw 32-bit integers


def test_recomputed_percentiles_equal_the_reported_ones(tmp_path: Path) -> None:
    grid = ProfileGrid(
        backends=("onnxruntime",),
        batch_sizes=(1,),
        threads=(1,),
        rule=StabilityRule(min_calls=3000, min_window_s=0.05, max_windows=3, max_seconds=20.0),
        warmup_s=0.05,
        keep_samples=500,
        concurrency=(1, 2),
        concurrency_rule=StabilityRule(min_calls=300, min_window_s=0.05, max_windows=3, max_seconds=5.0),
    )
    result = profile_grid(matmul_model(tmp_path / "m.onnx", 1), grid, SyntheticInputs())
    stored = ProfileResult.from_dict(json.loads(json.dumps(result.to_dict())))
    (cell,) = stored.cells
    variant = cell.model
    assert variant is not None and variant.sample_count > grid.keep_samples
    samples = variant.all_samples_ns()
    assert samples.size == variant.sample_count == variant.latency.count
    for q in (50, 90, 95, 99):
        assert np.percentile(samples, q) / 1e6 == variant.latency.percentile_ms(q), q
    assert samples.max() / 1e6 == variant.latency.max_ms
    assert len(variant.samples_ns) == grid.keep_samples  # the chart subset stays small
    assert cell.concurrency is not None
    for level in cell.concurrency.levels:
        assert level.samples is not None
        at_level = decode_samples(level.samples)
        assert np.percentile(at_level, 99) / 1e6 == level.latency.p99_ms
