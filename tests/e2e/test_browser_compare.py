"""In Chromium, under the Content-Security-Policy: an evaluation's curves on its run page, and runs compared."""

from __future__ import annotations

import pytest

from evalsvc.evaluations.services import run_submit
from tests.e2e.test_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.e2e.test_browser_csp import _sign_in, _watched_page
from tests.factories import make_world
from workers.tasks.evaluate import run_evaluate

pytestmark = [pytest.mark.browser]


def _evaluations(alice, alpha):
    from evalsvc.registry.services import dataset_version_register, model_version_register
    from tests.conftest import FIXTURES

    model = model_version_register(
        user=alice, team=alpha, name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"), filename="bc.onnx"
    )
    runs = []
    for name, filename in (("bc-test", "breast_cancer_test.csv"), ("bc-full", "breast_cancer.csv")):
        data = dataset_version_register(
            user=alice, team=alpha, name=name, path=str(FIXTURES / filename), filename=filename,
            label_column="diagnosis",
        )  # fmt: skip
        run = run_submit(
            user=alice, model_version_id=model.pk, dataset_version_id=data.pk, params={"slice_columns": ["mean_radius"]}
        )
        run_evaluate.apply(args=[str(run.pk)])
        run.refresh_from_db()
        assert run.status == "succeeded", run.error
        runs.append(run)
    return model, runs


def _all_drawn(page) -> list[str]:
    figures = page.locator(".figure")
    ids = [figures.nth(i).get_attribute("id") for i in range(figures.count())]
    for figure_id in ids:
        page.wait_for_selector(f"#{figure_id} .main-svg", timeout=15000)
    return ids


def test_the_run_page_draws_curves_calibration_and_the_threshold_sweep(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    world = make_world()
    _, (run, _) = _evaluations(world["alice"], world["alpha"])
    page, console = _watched_page(browser)
    _sign_in(page, live_server.url, f"/runs/{run.pk}/")

    titles = page.locator("section.card > h2").all_inner_texts()
    expected = ["Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration", "Threshold sweep"]
    assert [t for t in titles if t in expected] == expected
    ids = _all_drawn(page)
    assert len(ids) == 5
    # ROC: the positive class's curve and the chance diagonal; its legend carries the stored area.
    assert page.locator("#figure-1 .scatterlayer .trace").count() == 2
    auc = run.result["curves"]["classes"][0]["roc"]["auc"]
    assert f"AUC {auc:.3f}" in page.locator("#figure-1 .legend").text_content()
    # The sweep: precision, recall, F1, FPR and the operating threshold.
    assert page.locator("#figure-4 .scatterlayer .trace").count() == 5
    assert "operating threshold 0.5" in page.locator("#figure-4 .legend").text_content()
    # The slice table flags nothing here (quartiles of 171 rows), and each quartile is a row.
    assert page.locator('[data-table="by-mean_radius"] tbody tr').count() == 4
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cspViolations") == []
    assert console == [], console


def test_compare_selected_runs_from_the_list(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    from evalsvc.evaluations.models import EvaluationRun

    world = make_world()
    alice = world["alice"]
    model, (first, second) = _evaluations(alice, world["alpha"])
    profile = EvaluationRun.objects.create(
        team=world["alpha"], model_version=model, created_by=alice, kind="profile", status="succeeded", result={}
    )
    page, console = _watched_page(browser)
    _sign_in(page, live_server.url, "/runs/")

    page.check(f'#runs tr[data-run="{first.pk}"] input[name=ids]')
    page.check(f'#runs tr[data-run="{second.pk}"] input[name=ids]')
    page.click("#compare-selected")
    page.wait_for_url("**/runs/compare/**")
    header = page.locator("#compare-metrics thead th").all_inner_texts()
    assert len(header) == 3
    # The ids go in the list's order (newest first); the first is the baseline.
    base, other = sorted((first, second), key=lambda run: page.url.index(str(run.pk)))
    assert str(base.pk)[:8] in header[1] and "baseline" in header[1]
    row = page.locator('#compare-metrics tr[data-metric="accuracy"] td')
    a, b = base.result["metrics"]["accuracy"], other.result["metrics"]["accuracy"]
    assert row.nth(0).inner_text() == f"{a:.4f}"
    assert row.nth(1).get_attribute("data-state") == ("better" if b > a else "worse")
    assert f"{b - a:+.4f}".lstrip("+") in row.nth(1).inner_text()
    assert page.locator('#compare-params tr.differs[data-param="slice_columns"]').count() == 0

    ids = _all_drawn(page)
    titles = page.locator("section.card > h2").all_inner_texts()
    assert {"ROC curves", "Precision-recall curves", "Calibration"} <= set(titles)
    # One ROC line per run and the chance diagonal, each run named in the legend.
    roc = f"#{ids[0]}"
    assert page.locator(f"{roc} .scatterlayer .trace").count() == 3
    legend = page.locator(f"{roc} .legend").text_content()
    assert str(first.pk)[:8] in legend and str(second.pk)[:8] in legend
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cspViolations") == []
    assert console == [], console

    # Runs of two kinds are refused, with the reason on the page.
    page.goto(f"{live_server.url}/runs/")
    page.check(f'#runs tr[data-run="{first.pk}"] input[name=ids]')
    page.check(f'#runs tr[data-run="{profile.pk}"] input[name=ids]')
    page.click("#compare-selected")
    page.wait_for_selector("#compare-error")
    assert "only runs of one kind can be compared" in page.locator("#compare-error").inner_text()
    # The refusal is a 400 answer (which Chromium logs), and nothing else.
    assert console[0].startswith("400 ") and "/runs/compare/" in console[0]
    assert [m for m in console[1:] if "status of 400" not in m] == [], console
