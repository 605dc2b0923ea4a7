"""Parity between targets and quantized variants, on the small MLP trained on the digits data (fixtures/digits_mlp.onnx)."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

from workers.engine.errors import EngineError
from workers.engine.parity import Target, compare_backends, compare_outputs, repeatable
from workers.engine.quantize import fp16, int8_dynamic, int8_static
from workers.engine.types import ModelSpec


def batches_of(x: np.ndarray, size: int = 128):
    return repeatable(lambda: ({"input": x[i : i + size]} for i in range(0, len(x), size)))


def run(path: str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_compare_outputs_known_answers():
    ref = np.array([[1.0, 2.0], [3.0, 0.5]], dtype=np.float32)
    cand = np.array([[1.5, 2.0], [3.0, 4.0]], dtype=np.float32)
    diff, per_row = compare_outputs("p", ref, cand)
    assert diff.max_abs == pytest.approx(3.5)
    assert diff.mean_abs == pytest.approx(4.0 / 4)
    assert diff.max_rel == pytest.approx(3.5 / 0.5)
    assert diff.label_agreement == 0.5 and diff.disagreeing_rows == 1
    assert per_row.tolist() == [0.5, 3.5]


def test_parity_same_engine_agrees_and_broken_candidate_is_recorded(digits_mlp):
    x = digits_mlp.x
    spec = ModelSpec(path=str(digits_mlp.path), format="onnx", sha256="x")
    seen: list[tuple[int, int]] = []
    result = compare_backends(
        spec,
        batches_of(x),
        reference=Target("onnxruntime"),
        candidates=[
            Target("onnxruntime", options={"graph_optimization_level": "disable"}),
            Target("no-such-engine"),
        ],
        total_rows=len(x),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.rows == len(x)
    same, broken = result.candidates
    assert same.status == "ok"
    (logits,) = same.outputs
    assert logits.max_abs < 1e-5 and logits.label_agreement == 1.0
    assert broken.status == "failed" and "no-such-engine" in broken.error
    assert seen[-1][1] == 3 * len(x)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_fp16_variant_keeps_the_answers(digits_mlp, tmp_path):
    x, mlp_onnx = digits_mlp.x, str(digits_mlp.path)
    variant = fp16(mlp_onnx, str(tmp_path / "fp16.onnx"))
    ref, out = run(mlp_onnx, x), run(variant.path, x)
    assert out.dtype == np.float32  # inputs and outputs stay float32
    assert np.abs(ref - out).max() < 1e-2
    assert (ref.argmax(1) == out.argmax(1)).mean() > 0.995
    assert variant.size_bytes < 0.7 * os.path.getsize(mlp_onnx)


def test_int8_variants_are_smaller_and_mostly_agree(digits_mlp, tmp_path):
    x, mlp_onnx = digits_mlp.x, str(digits_mlp.path)
    ref = run(mlp_onnx, x).argmax(1)
    dynamic = int8_dynamic(mlp_onnx, str(tmp_path / "dyn.onnx"))
    static = int8_static(
        mlp_onnx, str(tmp_path / "static.onnx"), ({"input": x[i : i + 100]} for i in range(0, 300, 100))
    )
    size = os.path.getsize(mlp_onnx)
    # int8 weights are a quarter of float32; QDQ adds a scale and zero point per channel.
    for variant, ratio in ((dynamic, 0.5), (static, 0.6)):
        agree = (run(variant.path, x).argmax(1) == ref).mean()
        assert agree > 0.95, (variant.name, agree)
        assert variant.size_bytes < ratio * size, variant.name
    assert "300 rows" in static.notes


def test_onnx_ml_models_are_refused_with_the_operators(tmp_path):
    from tests.conftest import FIXTURES

    with pytest.raises(EngineError) as info:
        int8_dynamic(str(FIXTURES / "breast_cancer_logreg.onnx"), str(tmp_path / "q.onnx"))
    assert "ai.onnx.ml:" in info.value.message
    with pytest.raises(EngineError):
        fp16(str(FIXTURES / "breast_cancer_logreg.onnx"), str(tmp_path / "h.onnx"))
    with pytest.raises(EngineError) as info:
        int8_static(str(FIXTURES / "diabetes_ridge.onnx"), str(tmp_path / "s.onnx"), [])
    assert "calibration" in info.value.message or "ai.onnx.ml" in info.value.message


def test_reduced_precision_models_are_refused_with_the_reason(digits_mlp, tmp_path):
    mlp_onnx = str(digits_mlp.path)
    half = fp16(mlp_onnx, str(tmp_path / "fp16.onnx"))
    for convert in (fp16, int8_dynamic):
        with pytest.raises(EngineError) as info:
            convert(half.path, str(tmp_path / "again.onnx"))
        assert "already FP16" in info.value.message and "FP32" in info.value.message
    dynamic = int8_dynamic(mlp_onnx, str(tmp_path / "dyn.onnx"))
    with pytest.raises(EngineError) as info:
        fp16(dynamic.path, str(tmp_path / "half-of-int8.onnx"))
    assert "already quantized" in info.value.message and "MatMulInteger" in info.value.message
