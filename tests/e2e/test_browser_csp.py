"""The Content-Security-Policy in real Chromium: plotly figures still draw, and nothing is refused."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import browser, register_and_run  # noqa: F401  (fixture)
from tests.factories import make_world

pytestmark = [pytest.mark.browser]

# Every violation also fires this DOM event; init scripts run outside the page's policy.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


def _watched_page(browser):  # noqa: F811
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: console.append(str(exc)))
    page.on("response", lambda r: console.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.add_init_script(RECORD_VIOLATIONS)
    return page, console


def _sign_in(page, base: str, next_path: str) -> None:
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def test_dashboard_figures_draw_under_the_policy_without_violations(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    world = make_world()
    run = register_and_run(world["alice"], world["alpha"])
    page, console = _watched_page(browser)
    _sign_in(page, live_server.url, f"/runs/{run.pk}/")
    response = page.request.get(f"{live_server.url}/runs/{run.pk}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    page.wait_for_selector("#figure-0 .main-svg", timeout=15000)
    assert page.locator("#figure-0 .heatmaplayer").count() == 1
    # plotly's own stylesheet was written (CSSOM into its empty <style>): the mode bar is laid out.
    rules = page.evaluate('document.getElementById("plotly.js-style-global").sheet.cssRules.length')
    assert rules > 10
    # The mode bar's PNG export renders the figure through a data: image.
    page.hover("#figure-0")
    with page.expect_download(timeout=15000) as download:
        page.locator("#figure-0 .modebar-btn[data-title='Download plot as a PNG']").click()
    assert download.value.suggested_filename.endswith(".png")
    page.wait_for_timeout(300)

    violations = page.evaluate("window.__cspViolations")
    assert violations == [], violations
    assert console == [], console

    # The API's documentation pages work under the policy too.
    for path, ready in (("/api/docs/", ".swagger-ui .info"), ("/api/redoc/", "redoc h1, .api-content h1")):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector(ready, timeout=20000)
        # ReDoc's "powered by" badge is an image on its CDN: the policy keeps the page off the network.
        violations = [v for v in page.evaluate("window.__cspViolations") if "https://cdn.redoc.ly/" not in v]
        assert violations == [], (path, violations)
    assert not [m for m in console if "Content Security Policy" in m and "cdn.redoc.ly" not in m], console
