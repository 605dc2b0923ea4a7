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


def test_profile_dashboard_draws_every_figure_and_the_concurrency_sweep(
    live_server, browser, transactional_db, local_worker
):
    """The latency dashboard in Chromium: every plotly figure drawn, the sweep tabled, the downloads served."""
    from evalsvc.registry.services import model_version_register
    from tests.conftest import FIXTURES
    from workers.tasks.profile import run_profile

    world = make_world()
    model = model_version_register(
        user=world["alice"], team=world["alpha"], name="cnn", path=str(FIXTURES / "digits_cnn.onnx"),
        filename="digits_cnn.onnx",
    )  # fmt: skip
    run = run_submit(
        user=world["alice"],
        model_version_id=model.pk,
        dataset_version_id=None,
        kind="profile",
        params={"backends": ["onnxruntime"], "batch_sizes": [1, 8], "threads": [1], "concurrency": 2,
                "max_seconds_per_cell": 3},
    )  # fmt: skip
    run_profile.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    cells = run.result["cells"]

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/login/?next=/runs/{run.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/runs/{run.pk}/")

    figures = page.locator(".figure")
    titles = page.locator("section.card > h2").all_inner_texts()
    for title in ("Latency percentiles", "Throughput versus batch size", "Latency versus throughput",
                  "Latency distribution", "Concurrency: latency", "Concurrency: throughput", "Cold start"):  # fmt: skip
        assert title in titles
    for index in range(figures.count()):
        page.wait_for_selector(f"#{figures.nth(index).get_attribute('id')} .main-svg", timeout=15000)
    # Percentile bars: four traces (p50, p90, p95, p99), one bar per configuration each.
    bars = page.locator(".figure").first.locator(".barlayer .trace")
    assert bars.count() == 4
    assert page.locator(".figure").first.locator(".barlayer .point").count() == 4 * len(cells)

    # No objective was set: no cell is called a failure.
    assert set(page.locator("#profile tbody tr td:last-child").all_inner_texts()) == {"—"}

    # The sweep's table shows the stored numbers, one row per level, for each cell.
    tables = page.locator("table.concurrency")
    assert tables.count() == len(cells)
    first = cells[0]["concurrency"]
    rows = tables.first.locator("tbody tr")
    assert [int(r) for r in rows.locator("td:first-child").all_inner_texts()] == [
        level["concurrency"] for level in first["levels"]
    ]
    assert rows.first.locator("td").nth(1).inner_text() == f"{first['levels'][0]['latency']['p50_ms']:.3f}"

    csv_text = page.request.get(f"{live_server.url}/api/runs/{run.pk}/result.csv").text()
    header, *lines = csv_text.strip().splitlines()
    assert "latency_climbs_at" in header and len(lines) == len(cells)
    assert errors == []
    page.screenshot(path=str(live_server_screenshot_path().with_name("profile_dashboard.png")), full_page=True)
