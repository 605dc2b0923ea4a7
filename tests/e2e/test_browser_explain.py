"""An explanation's run page in Chromium: every figure drawn, the trust table and its flags, the downloads."""

from __future__ import annotations

import csv
import io

import pytest

from evalsvc.evaluations.services import run_submit
from tests.e2e.test_browser import browser  # noqa: F401  (fixture)
from tests.factories import make_world
from workers.tasks.explain import run_explain

pytestmark = [pytest.mark.browser]


def test_explanation_page_draws_importance_beeswarm_waterfall_and_cohorts(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    from evalsvc.registry.services import dataset_version_register, model_version_register
    from tests.conftest import FIXTURES

    world = make_world()
    alice, alpha = world["alice"], world["alpha"]
    model = model_version_register(
        user=alice, team=alpha, name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"), filename="bc.onnx"
    )
    data = dataset_version_register(
        user=alice, team=alpha, name="bc-test", path=str(FIXTURES / "breast_cancer_test.csv"),
        filename="bc_test.csv", label_column="diagnosis",
    )  # fmt: skip
    run = run_submit(
        user=alice,
        model_version_id=model.pk,
        dataset_version_id=data.pk,
        kind="explain",
        params={"method": "kernel_shap", "method_params": {"nsamples": 64}, "rows": {"indices": [2, 7]},
                "global_rows": 12, "cohort_by": "label"},
    )  # fmt: skip
    # Run under the task id the submission recorded: a message with another id does not own the run.
    run.refresh_from_db()
    run_explain.apply(args=[str(run.pk)], task_id=run.celery_task_id or None)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/login/?next=/runs/{run.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/runs/{run.pk}/")

    figures = page.locator(".figure")
    assert figures.count() == 4
    for index in range(4):
        page.wait_for_selector(f"#{figures.nth(index).get_attribute('id')} .main-svg", timeout=15000)
    # Global importance: one bar per feature shown (the top 15 of 30).
    assert figures.nth(0).locator(".barlayer .point").count() == 15
    # Beeswarm: one trace per feature, one point per row of the global sample.
    assert figures.nth(1).locator(".scatterlayer .trace").count() == 15
    assert figures.nth(1).locator(".scatterlayer .point").count() == 15 * 12
    # Cohorts: one bar trace per label.
    assert figures.nth(3).locator(".barlayer .trace").count() == 2

    # The trust table (scores against thresholds) is on the page, with the flags as notes.
    text = page.locator("#generic-result").inner_text()
    assert "How far to trust it" in text and "additivity error" in text
    for flag in run.result["trust"]["flags"]:
        assert flag in text
    assert errors == []

    # Downloads: CSV one line per explained row and column, JSON the stored result.
    body = page.request.get(f"{live_server.url}/api/runs/{run.pk}/result.csv").text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2 * 30 and {r["row"] for r in rows} == {"2", "7"}
    first = next(r for r in rows if r["row"] == "2" and r["feature"] == run.result["features"][0])
    assert float(first["attribution"]) == pytest.approx(run.result["explained"][0]["values"][0])
    stored = page.request.get(f"{live_server.url}/api/runs/{run.pk}/result.json").json()
    assert stored["trust"] == run.result["trust"]
