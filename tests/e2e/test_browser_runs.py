"""The runs list in Chromium: kind, model, data set, headline and status; filters and pages."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.e2e.test_browser_roles import sign_in
from tests.factories import make_world

pytestmark = [pytest.mark.browser]


def test_runs_are_listed_with_headlines_filtered_and_paged(live_server, browser, transactional_db):  # noqa: F811
    from evalsvc.evaluations.models import EvaluationRun
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
    common = {"team": alpha, "model_version": model, "created_by": alice}
    for _ in range(28):
        EvaluationRun.objects.create(kind="evaluate", dataset_version=data, status="queued", **common)
    done = EvaluationRun.objects.create(
        kind="evaluate", dataset_version=data, status="succeeded", result={"metrics": {"accuracy": 0.95614}}, **common
    )
    profile = EvaluationRun.objects.create(kind="profile", status="failed", **common)
    gamma_run = EvaluationRun.objects.create(  # carol's team: never listed for alice
        kind="evaluate", status="queued", team=world["gamma"], model_version=model, created_by=world["carol"]
    )

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.click("header nav >> text=Runs")
    page.wait_for_url("**/runs/")
    assert page.locator("#runs tbody tr").count() == 25
    assert "Page 1 of 2 · 30 runs" in page.locator("#pager").inner_text()
    assert page.locator(f'#runs tr[data-run="{gamma_run.pk}"]').count() == 0
    page.click("#pager a[rel=next]")
    page.wait_for_load_state()
    assert page.locator("#runs tbody tr").count() == 5

    page.goto(f"{live_server.url}/runs/")
    page.select_option("#run-filters select[name=status]", "succeeded")
    page.click("#run-filters button")
    page.wait_for_load_state()
    (row,) = page.locator("#runs tbody tr").all()
    assert row.get_attribute("data-run") == str(done.pk)
    assert row.locator(".headline").inner_text() == "accuracy 0.9561"
    row.locator("a", has_text="bc v1").click()
    page.wait_for_url(f"**/models/{model.pk}/")

    # a run's page links to its model version, data set version and the reports that include it
    from evalsvc.reports.models import Report, ReportRun

    report = Report.objects.create(
        team=alpha, model_version=model, title="Q3 review", created_by=alice, document={}, version=1,
        sha256="0" * 64, size_bytes=0, pdf_key="", html="",
    )  # fmt: skip
    ReportRun.objects.create(report=report, run=done, position=0)
    page.goto(f"{live_server.url}/runs/{done.pk}/")
    assert page.get_attribute("#run-model", "href") == f"/models/{model.pk}/"
    assert page.get_attribute("#run-dataset", "href") == f"/datasets/{data.pk}/"
    assert page.get_attribute("#run-reports a", "href") == f"/reports/{report.pk}/"
    assert "Q3 review (version 1)" in page.locator("#run-reports").inner_text()

    page.goto(f"{live_server.url}/runs/?kind=profile")
    (row,) = page.locator("#runs tbody tr").all()
    assert row.get_attribute("data-run") == str(profile.pk) and "Failed" in row.inner_text()
    page.goto(f"{live_server.url}/runs/?dataset=bc-test&status=queued")
    assert "28 runs" in page.locator("#pager").inner_text()
    assert not errors
