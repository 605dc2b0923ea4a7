"""Runs side by side: the API and the page, the kind's own comparison or the generic one, and every refusal."""

from __future__ import annotations

import pytest

from evalsvc.evaluations.kinds.base import CompareRun
from evalsvc.evaluations.kinds.generic import generic_compare
from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register
from tests.conftest import FIXTURES
from workers.tasks.evaluate import run_evaluate
from workers.tasks.profile import run_profile


def _done(run: EvaluationRun, task=run_evaluate) -> EvaluationRun:
    task.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def two_evaluations(alice, alpha, bc_model, bc_data):
    full = dataset_version_register(
        user=alice, team=alpha, name="bc-full", path=str(FIXTURES / "breast_cancer.csv"), filename="bc.csv",
        label_column="diagnosis",
    )  # fmt: skip
    first = _done(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={}))
    second = _done(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=full.pk, params={}))
    return first, second


def test_the_api_sets_two_evaluations_side_by_side(api, two_evaluations):
    first, second = two_evaluations
    response = api["alice"].get(f"/api/runs/compare/?ids={first.pk},{second.pk}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["kind"] == "evaluate"
    assert [r["id"] for r in body["runs"]] == [str(first.pk), str(second.pk)]
    assert body["runs"][1]["dataset_version"] == str(second.dataset_version_id)
    metrics = {m["key"]: m for m in body["metrics"]}
    for key in ("accuracy", "f1", "roc_auc"):
        a, b = first.result["metrics"][key], second.result["metrics"][key]
        row = metrics[key]
        assert row["values"] == [a, b] and row["better"] == "higher"
        assert row["deltas"][0] is None and row["deltas"][1] == pytest.approx(b - a, abs=1e-15)
        assert row["states"][0] == "baseline"
        assert row["states"][1] == ("same" if a == b else "better" if b > a else "worse")
    assert metrics["brier"]["better"] == "lower"
    assert metrics["brier"]["values"] == [first.result["calibration"]["brier"], second.result["calibration"]["brier"]]
    assert metrics["rows"]["values"] == [171, second.result["rows"]] and second.result["rows"] > 171
    # Overlaid curves: one line per run, plus the chance diagonal, from each run's stored curve.
    figures = {f["title"]: f["figure"] for f in body["figures"]}
    roc = figures["ROC curves"]["data"]
    assert len(roc) == 3 and roc[-1]["name"] == "chance"
    assert roc[0]["x"] == first.result["curves"]["classes"][0]["roc"]["fpr"]
    assert roc[1]["y"] == second.result["curves"]["classes"][0]["roc"]["tpr"]
    assert f"AUC {second.result['metrics']['roc_auc']:.3f}" in roc[1]["name"]
    assert {"Precision-recall curves", "Calibration"} <= set(figures)
    params = {p["name"]: p for p in body["params"]}
    assert params["batch_size"]["differs"] is False


def test_the_page_highlights_differences_from_the_first_run(client, alice, two_evaluations):
    first, second = two_evaluations
    client.force_login(alice)
    response = client.get(f"/runs/compare/?ids={first.pk}&ids={second.pk}")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="compare-metrics"' in page and 'data-state="baseline"' in page
    a, b = first.result["metrics"]["accuracy"], second.result["metrics"]["accuracy"]
    assert f"{a:.4f}" in page and f"{b:.4f}" in page
    state = "better" if b > a else "worse"
    assert f'<td class="{state}" data-state="{state}">{b:.4f}' in page
    assert "<h2>ROC curves</h2>" in page
    # The runs list offers the checkboxes that lead here.
    listing = client.get("/runs/").content.decode()
    assert f'name="ids" value="{first.pk}" form="compare-form"' in listing


def test_refusals_say_what_is_wrong(api, client, alice, carol, bc_model, two_evaluations):
    first, second = two_evaluations
    queued = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=None, kind="profile", params={})
    cases = [
        (f"{first.pk}", 400, "at least two runs"),
        (f"{first.pk},not-a-run", 400, "not run ids: 'not-a-run'"),
        (f"{first.pk},{queued.pk}", 400, "only runs of one kind can be compared"),
        (",".join([str(first.pk)] * 9), 400, "at least two runs"),
    ]
    for ids, code, fragment in cases:
        response = api["alice"].get(f"/api/runs/compare/?ids={ids}")
        assert response.status_code == code, (ids, response.json())
        assert fragment in response.json()["detail"], (ids, response.json())
    # Another team's runs are not found, by id, on the API and on the page.
    response = api["carol"].get(f"/api/runs/compare/?ids={first.pk},{second.pk}")
    assert response.status_code == 404
    assert str(first.pk) in response.json()["detail"] and "other teams" in response.json()["detail"]
    client.force_login(carol)
    page = client.get(f"/runs/compare/?ids={first.pk}&ids={second.pk}")
    assert page.status_code == 404 and b"other teams" in page.content
    client.force_login(alice)
    page = client.get(f"/runs/compare/?ids={first.pk}&ids={queued.pk}")
    assert (
        page.status_code == 400 and b"only runs of one kind" in page.content and b'id="compare-error"' in page.content
    )


def test_an_unfinished_run_is_refused(api, alice, bc_model, bc_data, two_evaluations):
    first, _ = two_evaluations
    queued = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    response = api["alice"].get(f"/api/runs/compare/?ids={first.pk},{queued.pk}")
    assert response.status_code == 400
    assert f"{str(queued.pk)[:8]} is queued" in response.json()["detail"]


def test_profiles_compare_latency_per_configuration(api, alice, alpha):
    from evalsvc.registry.services import model_version_register

    path = FIXTURES / "digits_mlp.onnx"
    model = model_version_register(user=alice, team=alpha, name="mlp", path=str(path), filename=path.name)
    runs = [
        _done(
            run_submit(
                user=alice,
                model_version_id=model.pk,
                dataset_version_id=None,
                kind="profile",
                params={"batch_sizes": sizes, "max_seconds_per_cell": 1},
            ),  # fmt: skip
            run_profile,
        )
        for sizes in ([1], [1, 8])
    ]
    body = api["alice"].get(f"/api/runs/compare/?ids={runs[0].pk},{runs[1].pk}").json()
    assert body["kind"] == "profile"
    rows = {m["key"]: m for m in body["metrics"]}
    b1, b8 = "p50_ms onnxruntime/cpu/fp32 b1", "p50_ms onnxruntime/cpu/fp32 b8"
    stored = [r.result["cells"][0]["model"]["latency"]["p50_ms"] for r in runs]
    assert rows[b1]["values"] == stored and rows[b1]["better"] == "lower"
    assert rows[b8]["values"][0] is None and rows[b8]["states"][1] == "changed"  # the first run did not time b8
    figures = {f["title"]: f["figure"] for f in body["figures"]}
    bars = figures["Latency per configuration"]["data"]
    assert [t["type"] for t in bars] == ["bar", "bar"] and bars[1]["y"][0] == stored[1]


def test_a_kind_without_its_own_comparison_gets_every_numeric_metric():
    runs = [
        CompareRun("a", {}, {"metrics": {"agreement": 0.9, "max_error": 0.1, "note": "x", "ok": True}}),
        CompareRun("b", {}, {"metrics": {"agreement": 0.8, "latency_ms": 3.0}}),
    ]
    comparison = generic_compare(runs)
    rows = {row.key: row for row in comparison.metrics}
    assert list(rows) == ["agreement", "max_error", "latency_ms"]
    assert rows["agreement"].values == [0.9, 0.8] and rows["agreement"].better is None
    assert rows["max_error"].values == [0.1, None] and rows["max_error"].better == "lower"
    assert rows["latency_ms"].better == "lower"
    assert comparison.figures == []


def test_the_answer_matches_the_served_schema(api, two_evaluations):
    from tests.evalsvc.test_schema_conformance import _validator

    first, second = two_evaluations
    openapi = api["alice"].get("/api/schema/", {"format": "json"}).json()
    body = api["alice"].get(f"/api/runs/compare/?ids={first.pk},{second.pk}").json()
    errors = [e.message for e in _validator(openapi, "/api/runs/compare/", "get", "200").iter_errors(body)]
    assert errors == [], errors[:3]
    assert {"400", "404"} <= set(openapi["paths"]["/api/runs/compare/"]["get"]["responses"])


def test_parity_jobs_compare_per_candidate(api, alice, alpha, tmp_path):
    from evalsvc.registry.services import model_version_register
    from tests.support.models import digits_table
    from workers.tasks.parity import run_parity

    table = digits_table()
    table.to_csv(tmp_path / "digits.csv", index=False)
    path = FIXTURES / "digits_mlp.onnx"
    model = model_version_register(
        user=alice, team=alpha, name="mlp", path=str(path), filename=path.name,
        processing={"output": {"activation": "softmax"}},
    )  # fmt: skip
    data = dataset_version_register(
        user=alice, team=alpha, name="digits", path=str(tmp_path / "digits.csv"), filename="digits.csv",
        label_column="digit",
    )  # fmt: skip
    runs = [
        _done(
            run_submit(
                user=alice,
                model_version_id=model.pk,
                dataset_version_id=data.pk,
                kind="parity",
                params={"candidates": candidates, "batch_size": 100},
            ),  # fmt: skip
            run_parity,
        )
        for candidates in ([{"backend": "openvino", "device": "cpu"}],) * 2
    ]
    body = api["alice"].get(f"/api/runs/compare/?ids={runs[0].pk},{runs[1].pk}").json()
    assert body["kind"] == "parity"
    rows = {m["key"]: m for m in body["metrics"]}
    stored = [r.result["candidates"][0]["outputs"][0] for r in runs]
    openvino = "max_abs mlp v1 (openvino/cpu/fp32)"
    assert rows[openvino]["values"] == [s["max_abs"] for s in stored] and rows[openvino]["better"] == "lower"
    agreement = rows["label_agreement mlp v1 (openvino/cpu/fp32)"]
    assert agreement["values"] == [s["label_agreement"] for s in stored] and agreement["better"] == "higher"
    # The runs list's headline leads the table for every kind.
    assert body["metrics"][0]["key"] == "headline" and body["metrics"][0]["values"][0].startswith("label agreement")
    (figure,) = body["figures"]
    assert [t["name"] for t in figure["figure"]["data"]] == [r["name"] for r in body["runs"]]


def test_quantization_jobs_compare_per_variant():
    from evalsvc.evaluations.kinds.quantize.compare import quantize_compare

    def result(speedup: float | None, accuracy: float) -> dict:
        variant = {
            "variant": "int8_dynamic", "status": "ok", "speedup": speedup, "size_ratio": 0.3,
            "metrics": {"accuracy": accuracy}, "agreement": [{"name": "logits", "label_agreement": 0.99}],
        }  # fmt: skip
        return {"rows": 10, "variants": [variant, {"variant": "fp16", "status": "failed", "error": "x"}]}

    comparison = quantize_compare([CompareRun("a", {}, result(1.8, 0.95)), CompareRun("b", {}, result(None, 0.97))])
    rows = {row.key: row for row in comparison.metrics}
    assert rows["speedup int8_dynamic"].values == [1.8, None] and rows["speedup int8_dynamic"].better == "higher"
    assert rows["accuracy int8_dynamic"].values == [0.95, 0.97]
    assert rows["size_ratio int8_dynamic"].better == "lower"
    assert not any("fp16" in key for key in rows)  # a failed variant has nothing to compare
