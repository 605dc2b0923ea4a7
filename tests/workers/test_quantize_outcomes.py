"""A quantization job registers its variants only when it succeeds, and refuses what it cannot convert."""

from __future__ import annotations

import pytest

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.models import ModelVersion
from evalsvc.registry.services import dataset_version_register, model_variant_register, model_version_register
from tests.conftest import stored_blobs
from tests.support.models import build_matmul_chain, digits_table
from workers.engine import quantize
from workers.engine.errors import EngineError
from workers.tasks import quantize as quantize_task
from workers.tasks.artifacts import model_spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def digits(alice, alpha, tmp_path, digits_mlp):
    model_path = digits_mlp.path
    csv = tmp_path / "digits.csv"
    digits_table().to_csv(csv, index=False)
    model = model_version_register(
        user=alice,
        team=alpha,
        name="digits-mlp",
        path=str(model_path),
        filename="m.onnx",
        processing={"output": {"activation": "softmax"}},
    )
    data = dataset_version_register(
        user=alice, team=alpha, name="digits", path=str(csv), filename="digits.csv", label_column="digit"
    )
    return model, data


def test_a_job_failing_after_making_its_variants_registers_none(alice, alpha, digits, monkeypatch, tmp_path):
    model, data = digits
    before = stored_blobs()

    def late_failure(*args, **kwargs):  # the last stage fails after every variant was made and compared
        raise EngineError("scoring failed", permanent=True)

    monkeypatch.setattr(quantize_task, "_accuracy", late_failure)
    run = run_submit(
        user=alice,
        model_version_id=model.pk,
        dataset_version_id=data.pk,
        kind="quantize",
        params={"variants": ["fp16", "int8_dynamic"], "max_rows": 300},
    )
    quantize_task.run_quantize.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "failed" and run.error == "scoring failed"
    assert not ModelVersion.objects.filter(parent=model).exists()
    assert ModelVersion.objects.filter(registered_model=model.registered_model).count() == 1
    assert stored_blobs() == before  # no variant's bytes were left in storage

    # the next upload is v2, not v4 behind two orphans
    other = tmp_path / "other.onnx"
    build_matmul_chain(other, repeats=2)
    again = model_version_register(user=alice, team=alpha, name="digits-mlp", path=str(other), filename="o.onnx")
    assert again.version == 2


def test_a_succeeding_job_registers_its_variants_in_one_step(alice, digits):
    model, data = digits
    run = run_submit(
        user=alice,
        model_version_id=model.pk,
        dataset_version_id=data.pk,
        kind="quantize",
        params={"variants": ["int8_dynamic"], "max_rows": 300},
    )
    quantize_task.run_quantize.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    (entry,) = run.result["variants"]
    variant = ModelVersion.objects.get(parent=model)
    assert entry["model_version_id"] == str(variant.pk) and entry["version"] == variant.version == 2
    assert variant.sha256 == entry["sha256"]

    # Timed warm, in the profiler's windows, with the spread; the speed-up is the ratio of the medians.
    parent_timing, timing = run.result["parent"]["timing"], entry["timing"]
    for t in (parent_timing, timing):
        assert t["status"] == "ok" and t["batch_size"] == 64
        assert t["count"] >= 50 * 3  # three windows of at least 50 calls, after warm-up
        assert 0 < t["p50_ms"] <= t["p90_ms"] <= t["p99_ms"] and t["std_ms"] >= 0
    assert entry["speedup"] == pytest.approx(parent_timing["p50_ms"] / timing["p50_ms"])


def test_the_run_page_shows_the_timing_spread(client, alice, digits):
    model, data = digits
    run = run_submit(
        user=alice,
        model_version_id=model.pk,
        dataset_version_id=data.pk,
        kind="quantize",
        params={"variants": ["int8_dynamic"], "max_rows": 300, "timing_seconds": 2},
    )
    quantize_task.run_quantize.apply(args=[str(run.pk)])
    run.refresh_from_db()
    client.force_login(alice)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>std ms</th>" in html
    assert f"{run.result['parent']['timing']['p90_ms']:.4f}" in html
    assert 'id="timing-method"' in html and "warming up" in html


def test_quantizing_a_variant_is_refused_at_submission(alice, digits, tmp_path):
    model, data = digits
    made = quantize.fp16(model_spec(model).path, str(tmp_path / "fp16.onnx"))
    variant = model_variant_register(user=alice, parent=model, path=made.path, variant="fp16")
    with pytest.raises(ValidationFailed) as info:
        run_submit(user=alice, model_version_id=variant.pk, dataset_version_id=data.pk, kind="quantize", params={})
    message = info.value.message
    assert "already a fp16 variant of digits-mlp v1" in message and "quantize digits-mlp v1 instead" in message
