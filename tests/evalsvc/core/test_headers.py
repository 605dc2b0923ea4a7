"""Headers and exposure: CSP everywhere, nothing private cached, schema behind sign-in, no debug pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import Client, override_settings

from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parts = [p.strip().split() for p in header.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


@pytest.mark.parametrize("path", ["/login/", "/", "/api/teams/", "/admin/login/", "/no-such-page/"])
def test_every_response_carries_a_strict_content_security_policy(client, alice, path):
    if path != "/login/":
        client.force_login(alice)
    response = client.get(path)
    policy = _directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval
    # Inline styles only by content hash (plotly's), never any inline style.
    assert policy["style-src"][0] == "'self'" and "'unsafe-inline'" not in policy["style-src"]
    assert all(source.startswith(("'sha256-", "'unsafe-hashes'")) for source in policy["style-src"][1:])
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_signed_in_pages_and_api_answers_are_not_stored(client, alice, api):
    client.force_login(alice)
    for path in ("/", "/audit/", "/reports/", "/backends/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"], path
    assert "no-store" in api["alice"].get("/api/runs/")["Cache-Control"]
    assert "no-store" in Client().get("/api/runs/")["Cache-Control"]  # a refusal too


def test_static_files_keep_their_cache_lifetime(client, alice):
    client.force_login(alice)
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_api_schema_and_docs_need_sign_in(client, alice):
    assert client.get("/api/schema/").status_code in (401, 403)
    for page in ("/api/docs/", "/api/redoc/"):
        response = client.get(page)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    client.force_login(alice)
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and "<script>" not in docs.content.decode()  # start-up script is its own file
    assert client.get("/api/docs/?script=")["Content-Type"].startswith("application/javascript")
    redoc = client.get("/api/redoc/")
    assert redoc.status_code == 200 and "https://" not in redoc.content.decode()


@override_settings(EVALSVC_PUBLIC_API_DOCS=True)
def test_a_setting_opens_the_schema_and_docs(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/runs/").status_code in (401, 403)  # the API itself stays closed


LOCAL_MODE_PROBE = """
import django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="localhost")
missing = client.get("/no-such-page/")
css = client.get("/static/css/app.css")
plotly = client.get("/static/vendor/plotly.min.js")
print(settings.DEBUG, missing.status_code, "URLconf" in missing.content.decode(), "api/docs" in missing.content.decode(),
      css.status_code, plotly.status_code)
"""


def test_local_mode_runs_without_debug_and_still_serves_static_files(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    env.update(DJANGO_SETTINGS_MODULE="evalsvc.settings.local", EVALSVC_VAR_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", LOCAL_MODE_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "404", "False", "False", "200", "200"]


def test_the_browsers_favicon_request_finds_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    assert client.get(response["Location"]).status_code == 200
