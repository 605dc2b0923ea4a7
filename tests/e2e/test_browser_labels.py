"""Labels are text in real Chromium: a class label holding a link is drawn as its characters, not a link."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import browser, register_and_run  # noqa: F401  (fixture)
from tests.factories import make_world

pytestmark = [pytest.mark.browser]

LINK = '<a href="https://evil.example/">x</a>'


def test_a_label_with_a_link_is_not_a_live_link(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    world = make_world()
    run = register_and_run(world["alice"], world["alpha"])
    # The classes as a model with hostile class labels would report them.
    run.result = {**run.result, "labels": [LINK, "<b>benign</b>"]}
    run.save(update_fields=["result"])

    page = browser.new_page()
    page.goto(f"{live_server.url}/login/?next=/runs/{run.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/runs/{run.pk}/")
    page.wait_for_selector("#figure-0 .main-svg", timeout=15000)

    assert page.locator("#figure-0 a").count() == 0  # no link anywhere in the figure
    assert page.locator("#figure-0 [font-weight=bold], #figure-0 b").count() == 0
    ticks = page.locator("#figure-0 .xtick text").all_text_contents()
    assert LINK in ticks and "<b>benign</b>" in ticks  # drawn as the characters they are
