"""The job form in Chromium: each kind shows the fields its params schema offers, columns come from the chosen data set."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.e2e.test_browser_roles import sign_in
from tests.factories import make_world

pytestmark = [pytest.mark.browser]


def visible(page, selector: str) -> bool:
    return page.locator(selector).is_visible()


def test_fields_follow_the_kind_and_columns_follow_the_data_set(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    from evalsvc.evaluations.models import EvaluationRun
    from evalsvc.registry.services import dataset_version_register, model_version_register
    from tests.conftest import FIXTURES

    world = make_world()
    alice, alpha = world["alice"], world["alpha"]
    model = model_version_register(
        user=alice, team=alpha, name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"), filename="bc.onnx"
    )
    bc = dataset_version_register(
        user=alice, team=alpha, name="bc-test", path=str(FIXTURES / "breast_cancer_test.csv"),
        filename="breast_cancer_test.csv", label_column="diagnosis",
    )  # fmt: skip
    diabetes = dataset_version_register(
        user=alice, team=alpha, name="diabetes", path=str(FIXTURES / "diabetes.parquet"), filename="diabetes.parquet"
    )
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/runs/new/")

    # An evaluation's own fields, and none of a latency profile's.
    page.select_option("#id_kind", "evaluate")
    for shown in ("#id_label_column", "#id_slice_columns", "#id_task", "#id_batch_size", "#id_backend"):
        assert visible(page, shown), shown
    assert not visible(page, "#id_batch_sizes") and not visible(page, "#id_reference_dataset")
    page.select_option("#id_kind", "profile")
    assert visible(page, "#id_batch_sizes") and visible(page, "#id_backend")
    assert not visible(page, "#id_label_column") and not visible(page, "#id_slice_columns")
    page.select_option("#id_kind", "drift")
    assert visible(page, "#id_reference_dataset") and visible(page, "#id_columns")
    assert not visible(page, "#id_backend")

    # Columns are the chosen data set's, picked, not typed.
    def offered(selector: str) -> list[str]:
        return page.eval_on_selector_all(
            f"{selector} option", "els => els.filter(o => !o.hidden && o.value).map(o => o.value)"
        )

    page.select_option("#id_kind", "evaluate")
    page.select_option("#id_dataset_version", str(diabetes.pk))
    assert sorted(offered("#id_label_column")) == sorted(diabetes.column_names)
    page.select_option("#id_dataset_version", str(bc.pk))
    assert sorted(offered("#id_slice_columns")) == sorted(bc.column_names)
    assert "target" not in offered("#id_label_column")

    page.select_option("#id_model_version", str(model.pk))
    page.select_option("#id_label_column", "diagnosis")
    page.select_option("#id_slice_columns", ["mean_radius"])
    page.click("main button[type=submit]")
    page.wait_for_url("**/runs/*/")
    run = EvaluationRun.objects.get()
    assert run.kind == "evaluate" and run.dataset_version_id == bc.pk
    assert run.params["label_column"] == "diagnosis" and run.params["slice_columns"] == ["mean_radius"]
    assert "batch_sizes" not in run.params  # another kind's field is not sent
    assert not errors


def test_the_data_set_form_offers_the_csvs_columns_for_the_label(
    live_server,
    browser,  # noqa: F811
    transactional_db,
):
    import csv

    from evalsvc.registry.models import DatasetVersion
    from tests.conftest import FIXTURES

    make_world()
    path = FIXTURES / "breast_cancer_test.csv"
    with open(path, newline="") as handle:
        header = next(csv.reader(handle))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/datasets/upload/")
    assert page.get_attribute("#id_label_column", "list") == "label-columns"
    page.fill("#id_name", "bc-from-the-browser")
    page.set_input_files("#id_file", str(path))
    page.wait_for_selector("#label-columns[data-ready]", state="attached")
    offered = page.eval_on_selector_all("#label-columns option", "els => els.map(o => o.value)")
    assert offered == header  # read from the file's first line, in the file's order
    page.fill("#id_label_column", "diagnosis")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    version = DatasetVersion.objects.get(dataset__name="bc-from-the-browser")
    assert version.label_column == "diagnosis" and version.column_names == header
    assert not errors
