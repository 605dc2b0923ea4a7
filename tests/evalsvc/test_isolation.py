"""Team isolation on every endpoint: another team's object is a 404, never a 403, never its data."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evalsvc.evaluations.services import run_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_objects(alice, bc_model, bc_data):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={})
    return {"model": bc_model, "data": bc_data, "run": run}


def detail_urls(objs) -> list[str]:
    m, d, r = objs["model"].pk, objs["data"].pk, objs["run"].pk
    return [
        f"/api/model-versions/{m}/",
        f"/api/model-versions/{m}/download/",
        f"/api/dataset-versions/{d}/",
        f"/api/dataset-versions/{d}/download/",
        f"/api/runs/{r}/",
    ]


def test_other_team_gets_404_on_every_detail_and_download(api, alice_objects):
    for url in detail_urls(alice_objects):
        owner = api["alice"].get(url)
        assert owner.status_code == 200, url
        other = api["carol"].get(url)
        assert other.status_code == 404, url
        assert str(alice_objects["model"].sha256) not in other.content.decode(errors="replace")


def test_viewer_of_the_team_can_read(api, alice_objects):
    for url in detail_urls(alice_objects):
        assert api["bob"].get(url).status_code == 200, url


def test_other_team_lists_are_empty_and_team_filter_is_404(api, alice_objects):
    for url in ("/api/model-versions/", "/api/dataset-versions/", "/api/runs/"):
        assert api["alice"].get(url).json()["count"] == 1, url
        assert api["carol"].get(url).json()["count"] == 0, url
        assert api["carol"].get(url, {"team": "alpha"}).status_code == 404, url
    teams = api["carol"].get("/api/teams/").json()
    assert [t["slug"] for t in teams] == ["gamma"]


def test_other_team_gets_404_on_submit_and_cancel(api, alice_objects):
    model, data, run = alice_objects["model"], alice_objects["data"], alice_objects["run"]
    response = api["carol"].post(
        "/api/runs/", {"model_version": str(model.pk), "dataset_version": str(data.pk)}, format="json"
    )
    assert response.status_code == 404
    assert api["carol"].post(f"/api/runs/{run.pk}/cancel/").status_code == 404
    run.refresh_from_db()
    assert run.status == "queued"


def test_other_team_cannot_upload_into_the_team(api):
    response = api["carol"].post(
        "/api/model-versions/",
        {"team": "alpha", "name": "x", "file": SimpleUploadedFile("m.onnx", b"x")},
        format="multipart",
    )
    assert response.status_code == 404


def test_other_team_gets_404_on_pages(client, carol, alice_objects):
    client.force_login(carol)
    m, d, r = alice_objects["model"].pk, alice_objects["data"].pk, alice_objects["run"].pk
    for url in (f"/models/{m}/", f"/datasets/{d}/", f"/runs/{r}/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/runs/{r}/cancel/").status_code == 404


def test_malformed_ids_are_404(api):
    for url in ("/api/model-versions/not-a-uuid/", "/api/runs/123/", "/api/dataset-versions/%20/download/"):
        assert api["alice"].get(url).status_code == 404, url


def test_anonymous_requests_are_refused(client, alice_objects):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/model-versions/").status_code == 401
    page = client.get("/")
    assert page.status_code == 302 and "/login/" in page["Location"]
