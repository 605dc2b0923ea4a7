"""Approving a report in the browser: a confirmation step with a comment, and the approval printed in the PDF."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.e2e.test_browser_roles import sign_in
from tests.evalsvc.reports.conftest import pdf_text
from tests.factories import MembershipFactory, UserFactory, make_world

pytestmark = [pytest.mark.browser]


def test_an_auditor_confirms_the_approval_with_a_comment_that_the_pdf_then_carries(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
    tmp_path,
):
    from evalsvc.evaluations.services import run_submit
    from evalsvc.registry.services import dataset_version_register, model_version_register
    from evalsvc.reports.services import report_generate
    from tests.conftest import FIXTURES
    from workers.tasks.evaluate import run_evaluate

    world = make_world()
    alice, alpha = world["alice"], world["alpha"]
    dave = UserFactory(username="dave")
    MembershipFactory(team=alpha, user=dave, role="auditor")
    model = model_version_register(
        user=alice, team=alpha, name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"), filename="bc.onnx"
    )
    data = dataset_version_register(
        user=alice, team=alpha, name="bc-test", path=str(FIXTURES / "breast_cancer_test.csv"),
        filename="breast_cancer_test.csv", label_column="diagnosis",
    )  # fmt: skip
    run = run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk, params={})
    run_evaluate.apply(args=[str(run.pk)])  # this process is the worker (local_worker)
    report = report_generate(user=alice, model_version_id=model.pk, run_ids=[str(run.pk)], title="Pilot sign-off")

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "dave")
    page.goto(f"{live_server.url}/reports/{report.pk}/")
    assert page.inner_text("#report-state").strip() == "Draft"
    page.click("#approve")
    page.wait_for_load_state()
    # The confirmation step: what is being signed, and a comment; nothing is approved yet.
    assert page.url.endswith(f"/reports/{report.pk}/approve/")
    assert report.sha256 in page.inner_text("#approve-confirm")
    report.refresh_from_db()
    assert report.status == "draft"
    comment = "Approved for the pilot; recheck after one month."
    page.fill("#id_comment", comment)
    page.click("#confirm-approve")
    page.wait_for_load_state()
    assert page.inner_text("#report-state").strip() == "Approved"
    assert page.inner_text("#approval-comment").strip() == comment

    # The PDF the page links to now carries the approval, read back as text.
    pdf = page.request.get(f"{live_server.url}/api/reports/{report.pk}/pdf/")
    assert pdf.ok
    text = " ".join(pdf_text(pdf.body(), tmp_path).split())
    report.refresh_from_db()
    assert f"APPROVED by dave on {report.approved_at:%Y-%m-%d %H:%M}" in text
    assert "Approved by dave" in text and comment in text
    assert not errors
