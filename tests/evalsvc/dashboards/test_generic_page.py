"""A kind without a page template of its own: its succeeded run's page lays out its tables generically."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from evalsvc.evaluations.forms import RunSubmitForm
from evalsvc.evaluations.kinds import all_kinds, get_kind
from evalsvc.evaluations.services import run_submit
from workers.tasks.evaluate import run_evaluate

TABLED = "tests.evalsvc.dashboards.tabled_kind"


@pytest.fixture
def tabled_kind():
    with override_settings(EVALSVC_JOB_KINDS=[*settings.EVALSVC_JOB_KINDS, TABLED]):
        yield get_kind("tabled")
    assert "tabled" not in [k.name for k in all_kinds()]  # the settings list is the registry


def test_a_kind_without_a_template_renders_its_tables_and_figures(client, alice, bc_model, bc_data, tabled_kind):
    assert tabled_kind.template is None
    assert ("tabled", tabled_kind.summary) in RunSubmitForm(user=alice).fields["kind"].choices
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, kind="tabled")
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error

    client.force_login(alice)
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="generic-result"' in page and "Tabled evaluation results" in page
    # The generic section's tables: every scalar of the result, and the metrics, with the report's formatting.
    assert "<h3>Results</h3>" in page and "<h3>Metrics</h3>" in page
    assert f"<td>{run.result['metrics']['accuracy']:.4f}</td>" in page
    assert f"<td>{run.result['rows']}</td>" in page
    assert "<h3>Per class</h3>" in page
    # Its figures are drawn as for any kind.
    assert 'id="figure-0"' in page and "Confusion matrix" in page
    # No CSV table was declared: the download says so, and the JSON is served.
    assert client.get(f"/api/runs/{run.pk}/result.csv").status_code == 404
    assert client.get(f"/api/runs/{run.pk}/result.json").json() == run.result


def test_a_kind_without_a_template_before_it_finishes(client, alice, bc_model, bc_data, tabled_kind):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, kind="tabled")
    client.force_login(alice)
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    assert 'id="generic-result"' not in response.content.decode()
