"""A text explanation's run page in Chromium: each explained text highlighted token by token, markup shown as text."""

from __future__ import annotations

import csv
import io

import pytest

from evalsvc.evaluations.services import run_submit
from tests.e2e.test_browser import browser  # noqa: F401  (fixture)
from tests.factories import make_world
from tests.workers.test_explain_text_task import build_text_model, register_text
from workers.tasks.explain import run_explain

pytestmark = [pytest.mark.browser]

MARKUP_TOKEN = "<b>bold</b>"
MARKUP_LABEL = "<img src=x onerror=alert(1)>"


def test_text_explanation_page_highlights_tokens_and_escapes_them(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
    tmp_path,
):
    world = make_world()
    built = build_text_model(tmp_path, extra_words=(MARKUP_TOKEN,))
    model, data = register_text(world["alice"], world["alpha"], built, labels=["negative", MARKUP_LABEL])
    import pandas as pd

    reviews = pd.read_csv(built["csv"])["review"]
    row = int(next(i for i, text in enumerate(reviews) if MARKUP_TOKEN in text.split()))
    run = run_submit(
        user=world["alice"], model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "kernel_shap", "method_params": {"nsamples": 128, "target": 1}, "rows": {"indices": [row]},
                "global_rows": 6},
    )  # fmt: skip
    run.refresh_from_db()
    run_explain.apply(args=[str(run.pk)], task_id=run.celery_task_id or None)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    explained = run.result["explained"][0]
    assert explained["target"] == MARKUP_LABEL and MARKUP_TOKEN in explained["features"]

    page = browser.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/login/?next=/runs/{run.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/runs/{run.pk}/")

    figures = page.locator(".figure")
    assert figures.count() == 2  # global importance over the tokens, then the highlighted text
    for index in range(2):
        page.wait_for_selector(f"#{figures.nth(index).get_attribute('id')} .main-svg", timeout=15000)
    text = figures.nth(1)
    assert text.locator(".heatmaplayer image").count() == 1  # the shading under the tokens
    drawn = text.text_content() or ""
    for token in explained["features"]:
        assert token in drawn, token  # every token is written in its cell, markup as plain text
    assert f"{MARKUP_LABEL} explained" in drawn  # the class label in the title, as text
    assert text.locator("img").count() == 0 and text.locator("tspan[style*='bold']").count() == 0
    assert page.locator("b", has_text="bold").count() == 0
    assert dialogs == [] and errors == []

    body = page.request.get(f"{live_server.url}/api/runs/{run.pk}/result.csv").text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["feature"] for r in rows] == explained["features"]
    # The download guards cells that a spreadsheet would read as a formula (a leading "-" gets a quote).
    assert [float(r["attribution"].lstrip("'")) for r in rows] == pytest.approx(explained["values"])
