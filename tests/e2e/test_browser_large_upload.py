"""In the browser: a large data set shows "validating", then what the worker found; too large is a readable 413."""

from __future__ import annotations

import time

import pytest

from tests.conftest import FIXTURES
from tests.e2e.test_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.e2e.test_browser_roles import sign_in
from tests.factories import make_world

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_page_shows_validating_then_the_schema(live_server, browser, celery_worker_process, settings, tmp_path):  # noqa: F811
    settings.EVALSVC_INLINE_VALIDATION_BYTES = 1024  # the fixture's 120 kB counts as large
    make_world()
    page = browser.new_page()
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/datasets/upload/")
    page.fill("#id_name", "bc")
    page.fill("#id_label_column", "diagnosis")
    page.set_input_files("#id_file", str(FIXTURES / "breast_cancer.csv"))
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    status = page.locator("#version-status")
    assert "validating" in status.inner_text()
    assert "a worker is validating the file" in page.locator("main").inner_text()

    deadline = time.monotonic() + 90
    while page.locator("#version-status").count() and time.monotonic() < deadline:
        page.wait_for_timeout(1000)  # the page reloads itself every 5 s while it waits
    assert page.locator("#version-status").count() == 0, celery_worker_process.log_path.read_text()[-2000:]
    text = page.locator("main").inner_text()
    assert "569" in text and "diagnosis" in text and "download" in text

    # Past the limit the form's request is cut off and a page says why.
    settings.EVALSVC_MAX_UPLOAD_BYTES = 1024 * 1024
    big = tmp_path / "big.csv"
    big.write_text("a,b\n" + "1,2\n" * 600_000)  # 2.4 MB
    page.goto(f"{live_server.url}/datasets/upload/")
    page.fill("#id_name", "too-big")
    page.set_input_files("#id_file", str(big))
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "Upload too large" in page.locator("h1").inner_text()
    assert "larger than the 1 MiB limit (1,048,576 bytes" in page.locator("main").inner_text()
