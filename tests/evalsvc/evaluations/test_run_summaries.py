"""Lists of runs carry summaries (a headline, never the stored result); a run's full result has its own endpoint."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evalsvc.evaluations import services
from evalsvc.evaluations.models import EvaluationRun, RunStatus

pytestmark = pytest.mark.django_db

EVALUATE = {"metrics": {"accuracy": 0.956140350877193, "f1": 0.96}, "rows": 114, "per_row": list(range(5000))}
PROFILE = {"cells": [{"status": "ok", "model": {"latency": {"p50_ms": 1.25, "samples": list(range(5000))}}}]}


def _run(alpha, alice, model, data, **fields) -> EvaluationRun:
    fields.setdefault("kind", "evaluate")
    return EvaluationRun.objects.create(
        team=alpha, model_version=model, dataset_version=data, created_by=alice, **fields
    )


def test_the_list_carries_summaries_and_the_detail_the_full_result(api, alice, alpha, bc_model, bc_data):
    done = _run(alpha, alice, bc_model, bc_data, status=RunStatus.SUCCEEDED, result=EVALUATE,
                environment={"backend": "onnxruntime", "host": {"cpu": "x" * 1000}}, params={"batch_size": 256})  # fmt: skip
    profiled = _run(alpha, alice, bc_model, None, kind="profile", status=RunStatus.SUCCEEDED, result=PROFILE)
    queued = _run(alpha, alice, bc_model, bc_data)
    body = api["alice"].get("/api/runs/").json()
    items = {item["id"]: item for item in body["results"]}
    assert body["count"] == 3 and set(items) == {str(done.pk), str(profiled.pk), str(queued.pk)}
    for item in items.values():
        assert not {"result", "environment", "params"} & set(item), sorted(item)
    assert items[str(done.pk)]["headline"] == "accuracy 0.9561"
    assert items[str(profiled.pk)]["headline"] == "fastest p50 1.25 ms"
    assert items[str(queued.pk)]["headline"] == ""
    assert items[str(done.pk)]["model_name"] == bc_model.registered_model.name
    assert items[str(done.pk)]["dataset_version"] == str(bc_data.pk)
    # The page weighs what its summaries weigh, not what the results do.
    assert len(api["alice"].get("/api/runs/").content) < 4000
    full = api["alice"].get(f"/api/runs/{done.pk}/").json()
    assert full["result"] == EVALUATE and full["environment"]["backend"] == "onnxruntime"
    assert full["params"] == {"batch_size": 256} and full["headline"] == "accuracy 0.9561"
    assert api["carol"].get(f"/api/runs/{done.pk}/").status_code == 404
    assert api["carol"].get("/api/runs/").json()["count"] == 0


def test_a_page_of_runs_costs_the_same_queries_for_many_rows(api, alice, alpha, bc_model, bc_data):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api["alice"].get("/api/runs/").status_code == 200
        return len(captured.captured_queries)

    _run(alpha, alice, bc_model, bc_data, status=RunStatus.SUCCEEDED, result=EVALUATE)
    few = queries()
    for _ in range(30):
        _run(alpha, alice, bc_model, bc_data, status=RunStatus.SUCCEEDED, result=EVALUATE)
    assert queries() == few
    with CaptureQueriesContext(connection) as captured:
        api["alice"].get("/api/runs/")
    listed = [q["sql"] for q in captured.captured_queries if '"evaluations_evaluationrun"."kind"' in q["sql"]]
    assert listed and all('"evaluations_evaluationrun"."result"' not in sql for sql in listed)
    assert all("DISTINCT" not in sql for sql in listed)


def test_the_headline_is_stored_when_a_run_ends(alice, alpha, bc_model, bc_data):
    run = _run(alpha, alice, bc_model, bc_data, status=RunStatus.RUNNING)
    assert services.run_succeed(run_id=run.pk, result=EVALUATE, environment={})
    assert EvaluationRun.objects.get(pk=run.pk).headline == "accuracy 0.9561"
    failed = _run(alpha, alice, bc_model, None, kind="profile", status=RunStatus.RUNNING)
    assert services.run_fail(run_id=failed.pk, message="one cell failed", result=PROFILE)
    assert EvaluationRun.objects.get(pk=failed.pk).headline == "fastest p50 1.25 ms"
    # A save that writes the result keeps the headline in step.
    run.result = {"metrics": {"r2": 0.5}}
    run.save(update_fields=["result"])
    assert EvaluationRun.objects.get(pk=run.pk).headline == "R² 0.5000"


def test_the_migration_fills_the_headline_of_runs_stored_before(alice, alpha, bc_model, bc_data):
    old = _run(alpha, alice, bc_model, bc_data, status=RunStatus.SUCCEEDED, result=EVALUATE)
    bare = _run(alpha, alice, bc_model, bc_data)
    EvaluationRun.objects.update(headline="")
    import_module("evalsvc.evaluations.migrations.0003_evaluationrun_headline").fill_headlines(apps, None)
    assert EvaluationRun.objects.get(pk=old.pk).headline == "accuracy 0.9561"
    assert EvaluationRun.objects.get(pk=bare.pk).headline == ""


def test_drift_and_explanation_runs_have_a_headline():
    from evalsvc.evaluations.headline import run_headline

    features = [{"name": n} for n in ("a", "b", "c", "d", "e")]
    assert run_headline({"drift": True, "features": features, "drifted_features": ["c", "a"]}) == (
        "drift in 2 of 5 columns: c, a"
    )
    many = {"drift": True, "features": features, "drifted_features": ["e", "d", "c", "b"]}
    assert run_headline(many) == "drift in 4 of 5 columns: e, d, c, …"
    assert run_headline({"drift": False, "features": features, "drifted_features": []}) == "no drift in 5 columns"
    assert run_headline({"drift": True, "features": features, "drifted_features": []}) == (
        "drift detected (multivariate)"
    )
    explained = {"features": ["radius", "texture", "area"], "global": {"rows": 8, "importance": [0.1, 0.7, 0.3]}}
    assert run_headline(explained) == "top feature: texture"
    assert run_headline({"features": ["x"], "global": {"rows": 0, "importance": []}}) == ""


def test_a_result_with_non_finite_numbers_is_stored_with_none_for_them(alice, alpha, bc_model, bc_data):
    # PostgreSQL's json type has no NaN or Infinity: a score that came out unbounded must not fail the run.
    run = _run(alpha, alice, bc_model, bc_data, kind="explain", status=RunStatus.RUNNING)
    result = {"trust": {"scores": {"sensitivity_max": float("inf"), "infidelity": float("nan"), "stability": 0.9}},
              "values": [[1.0, float("-inf")], (2.0, 3)]}  # fmt: skip
    assert services.run_succeed(run_id=run.pk, result=result, environment={})
    stored = EvaluationRun.objects.get(pk=run.pk)
    assert stored.status == RunStatus.SUCCEEDED
    assert stored.result["trust"]["scores"] == {"sensitivity_max": None, "infidelity": None, "stability": 0.9}
    assert stored.result["values"] == [[1.0, None], [2.0, 3]]
