"""Every page names a favicon served from this site, not an empty data: URL."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_pages_link_the_local_favicon(client, alice):
    for html in (client.get("/login/").content.decode(), _signed_in(client, alice).get("/").content.decode()):
        link = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', html)
        assert link and link.group(1).endswith("/favicon.svg"), html[:400]
    found = finders.find("favicon.svg")
    assert found is not None
    with open(found) as handle:
        assert handle.read().startswith("<svg")


def _signed_in(client, user):
    client.force_login(user)
    return client
