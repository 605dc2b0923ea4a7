"""Debian's Chromium, driven by Playwright: sign in, open a run's dashboard, see the chart."""

from __future__ import annotations

import shutil

import pytest

from evalsvc.evaluations.services import run_submit
from tests.factories import make_world
from workers.tasks.evaluate import run_evaluate

pytestmark = [pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: `apt-get install chromium` (.ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def register_and_run(alice, alpha):
    from evalsvc.registry.services import dataset_version_register, model_version_register
    from tests.conftest import FIXTURES

    model = model_version_register(
        user=alice, team=alpha, name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"), filename="bc.onnx"
    )
    data = dataset_version_register(
        user=alice, team=alpha, name="bc-test", path=str(FIXTURES / "breast_cancer_test.csv"),
        filename="bc_test.csv", label_column="diagnosis",
    )  # fmt: skip
    run = run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk)
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def test_sign_in_and_see_the_confusion_matrix(live_server, browser, transactional_db, local_worker):
    world = make_world()
    run = register_and_run(world["alice"], world["alpha"])
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_server.url}/runs/{run.pk}/")
    assert "/login/" in page.url  # signed-out users are sent to sign in first
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/runs/{run.pk}/")

    assert page.locator("#status-text").inner_text().strip() == "Succeeded"
    accuracy = page.locator('[data-metric="accuracy"]').inner_text()
    assert accuracy == f"{run.result['metrics']['accuracy']:.4f}"
    # plotly.js (served from static/, no CDN) drew the heatmap as SVG
    page.wait_for_selector("#figure-0 .main-svg", timeout=15000)
    assert page.locator("#figure-0 .heatmaplayer").count() == 1
    cells = page.locator("#figure-0 .textpoint text, #figure-0 text.textpoint")
    texts = {t.strip() for t in cells.all_inner_texts()} or set(page.locator("#figure-0").inner_text().split())
    for row in run.result["confusion_matrix"]:
        for count in row:
            assert str(count) in texts
    assert errors == []
    page.screenshot(path=str(live_server_screenshot_path()))


def live_server_screenshot_path():
    from django.conf import settings

    return settings.VAR_DIR / "run_dashboard.png"
