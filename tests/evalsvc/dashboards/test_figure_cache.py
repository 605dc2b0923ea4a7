"""A succeeded run's figures are built once and served from the cache: the same page, its own run's only."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache

from evalsvc.dashboards.figurecache import build_figures, cache_key
from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.services import run_submit
from workers.tasks.evaluate import run_evaluate

SCRIPTS = re.compile(r'<script id="figure-\d+-data" type="application/json">.*?</script>', re.S)


def _evaluate(user, model, data):
    run = run_submit(user=user, model_version_id=model.pk, dataset_version_id=data.pk, params={})
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def bc_run(alice, bc_model, bc_data):
    return _evaluate(alice, bc_model, bc_data)


def test_cached_figures_are_the_freshly_built_ones(client, alice, bc_run):
    client.force_login(alice)
    assert cache.get(cache_key(bc_run)) is None
    first = client.get(f"/runs/{bc_run.pk}/").content.decode()
    cached = cache.get(cache_key(bc_run))
    assert cached, "the first view stores the run's figures"
    fresh = build_figures(get_kind(bc_run.kind), bc_run.result)
    assert cached == fresh
    assert SCRIPTS.findall(first) == [f["script"] for f in fresh] and len(fresh) > 1
    second = client.get(f"/runs/{bc_run.pk}/").content.decode()
    assert SCRIPTS.findall(second) == SCRIPTS.findall(first)
    assert re.findall(r"<h2>.*?</h2>", second) == re.findall(r"<h2>.*?</h2>", first)


def test_the_page_shows_what_is_cached_under_its_own_run(client, alice, bc_run):
    """The page reads its figures from the cache (not rebuilt per request), by the run's own key."""
    client.force_login(alice)
    client.get(f"/runs/{bc_run.pk}/")
    entry = cache.get(cache_key(bc_run))
    marked = [{**entry[0], "title": "from the cache"}, *entry[1:]]
    cache.set(cache_key(bc_run), marked)
    assert "<h2>from the cache</h2>" in client.get(f"/runs/{bc_run.pk}/").content.decode()


def test_each_run_shows_its_own_figures_and_other_teams_none(
    client, alice, carol, bc_run, diabetes_model, diabetes_data
):
    other = _evaluate(alice, diabetes_model, diabetes_data)  # a regression: other figures
    assert cache_key(other) != cache_key(bc_run)
    client.force_login(alice)
    bc_page = SCRIPTS.findall(client.get(f"/runs/{bc_run.pk}/").content.decode())
    other_page = SCRIPTS.findall(client.get(f"/runs/{other.pk}/").content.decode())
    assert bc_page == [f["script"] for f in build_figures(get_kind(bc_run.kind), bc_run.result)]
    assert other_page == [f["script"] for f in build_figures(get_kind(other.kind), other.result)]
    assert bc_page != other_page
    # Another team's user: the run is not found, cached figures or not.
    client.force_login(carol)
    response = client.get(f"/runs/{bc_run.pk}/")
    assert response.status_code == 404
    assert not SCRIPTS.findall(response.content.decode())


def test_runs_that_did_not_succeed_get_no_figures_and_nothing_cached(client, alice, bc_model, bc_data):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    client.force_login(alice)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert run.status == "queued" and not SCRIPTS.findall(page)
    assert cache.get(cache_key(run)) is None
