"""An image explanation's run page in Chromium: each explained image drawn with its attribution heatmap over it."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from evalsvc.evaluations.services import run_submit
from tests.e2e.test_browser import browser  # noqa: F401  (fixture)
from tests.factories import make_world
from workers.tasks.explain import run_explain

pytestmark = [pytest.mark.browser]


def test_image_explanation_page_draws_the_heatmap_over_each_image(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
    tmp_path,
):
    from evalsvc.registry.services import dataset_version_register, model_version_register
    from tests.conftest import FIXTURES
    from tests.workers.test_image_models import PROCESSING

    world = make_world()
    alice, alpha = world["alice"], world["alpha"]
    sample = np.load(FIXTURES / "digits_test.npz")
    archive = tmp_path / "digits.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for index, (pixels, label) in enumerate(zip(sample["input"][:8, 0], sample["label"][:8], strict=True)):
            buf = io.BytesIO()
            Image.fromarray(np.round(pixels * 16).astype(np.uint8), mode="L").save(buf, "PNG")
            zf.writestr(f"digits/{label}/{index:04d}.png", buf.getvalue())
    data = dataset_version_register(user=alice, team=alpha, name="digits", path=str(archive), filename="digits.zip")
    model = model_version_register(
        user=alice, team=alpha, name="digits-cnn", path=str(FIXTURES / "digits_cnn.onnx"), filename="digits_cnn.onnx",
        processing=PROCESSING,
    )  # fmt: skip
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "occlusion", "rows": {"indices": [1, 4]}, "global_rows": 4, "patch_size": 2},
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
    assert figures.count() == 3  # global importance over the 16 patches, then one overlay per explained image
    for index in range(3):
        page.wait_for_selector(f"#{figures.nth(index).get_attribute('id')} .main-svg", timeout=15000)
    assert figures.nth(0).locator(".barlayer .point").count() == 15
    for index in (1, 2):
        figure = figures.nth(index)
        # The image and the heatmap over it are both drawn (plotly renders each as an <image> in its trace layer).
        assert figure.locator(".imagelayer image").count() == 1
        assert figure.locator(".heatmaplayer image").count() == 1
        types = page.evaluate(
            "id => document.getElementById(id).data.map(t => [t.type, t.opacity])", figure.get_attribute("id")
        )
        assert types[0][0] == "image" and types[1] == ["heatmap", 0.5]
    assert errors == []

    body = page.request.get(f"{live_server.url}/api/runs/{run.pk}/result.csv").text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2 * 16 and {r["row"] for r in rows} == {"1", "4"}
    assert rows[0]["feature"] == "patch r0c0"
    stored = page.request.get(f"{live_server.url}/api/runs/{run.pk}/result.json").json()
    assert stored["explained"][0]["image"]["heat"] == run.result["explained"][0]["image"]["heat"]
