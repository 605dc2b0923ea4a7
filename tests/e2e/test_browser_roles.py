"""Pages offer what the signed-in role may do; the register form has nothing to fill in that it knows already."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.factories import MembershipFactory, UserFactory, make_world

pytestmark = [pytest.mark.browser]


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def nav_links(page) -> list[str]:
    return [link.strip() for link in page.locator("header nav a").all_inner_texts()]


def test_an_auditor_is_not_offered_register_or_new_job(live_server, browser, transactional_db):  # noqa: F811
    world = make_world()
    dave = UserFactory(username="dave")
    MembershipFactory(team=world["alpha"], user=dave, role="auditor")
    page = browser.new_page()
    sign_in(page, live_server, "dave")
    links = nav_links(page)
    assert "Reports" in links and "Audit trail" in links
    assert not {"Register model", "Register data set", "New job"} & set(links)
    assert page.locator("text=+ register").count() == 0

    owner = browser.new_page()
    sign_in(owner, live_server, "alice")
    assert {"Register model", "Register data set", "New job"} <= set(nav_links(owner))


def test_the_register_form_preselects_the_only_team_and_never_shows_null(live_server, browser, transactional_db):  # noqa: F811
    make_world()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/models/upload/")
    assert page.eval_on_selector("#id_team", "el => el.value") == "alpha"
    assert page.locator("#id_team option").count() == 1  # no empty choice to pick by mistake
    assert page.input_value("#id_processing") == ""
    assert "null" not in page.locator("main").inner_text()
    # a failed submission (no file) shows the form again, still without "null"
    page.fill("#id_name", "x")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert page.input_value("#id_processing") == ""
    assert page.eval_on_selector("#id_team", "el => el.value") == "alpha"
    assert not errors


def test_a_latency_profile_is_submitted_from_the_job_form_on_an_offered_backend(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    from evalsvc.evaluations.models import EvaluationRun
    from evalsvc.fleet.selectors import offers
    from evalsvc.registry.services import model_version_register
    from tests.conftest import FIXTURES

    world = make_world()
    model = model_version_register(
        user=world["alice"], team=world["alpha"], name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"),
        filename="bc.onnx",
    )  # fmt: skip
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/runs/new/")
    offered = sorted({o.backend for o in offers()})
    assert page.locator("#id_backend option").all_inner_texts() == offered  # chosen, not typed
    assert "profile" in page.locator("#id_kind option").evaluate_all("els => els.map(e => e.value)")
    page.select_option("#id_kind", "profile")
    page.select_option("#id_model_version", str(model.pk))
    page.select_option("#id_backend", "onnxruntime")
    page.fill("#id_batch_sizes", "1, 4")
    page.click("main button[type=submit]")
    page.wait_for_url("**/runs/*/")
    run = EvaluationRun.objects.get()
    assert run.kind == "profile" and run.dataset_version is None and run.queue == "profile"
    assert run.params["backends"] == ["onnxruntime"] and run.params["batch_sizes"] == [1, 4]
    assert "Latency profile of bc v1" in page.locator("h1").inner_text()
    assert not errors


def test_an_owner_manages_members_on_the_team_page_and_a_viewer_only_reads(
    live_server,
    browser,  # noqa: F811
    transactional_db,
):
    from evalsvc.teams.models import Invitation, Membership

    make_world()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.click("header nav >> text=Teams")
    page.click("#teams >> text=Alpha")
    page.wait_for_url("**/teams/alpha/")
    roles = dict(zip(page.locator("#members td:first-child").all_inner_texts(),
                     page.locator("#members td.role").all_inner_texts(), strict=True))  # fmt: skip
    assert roles == {"alice": "owner", "bob": "viewer"}

    bob_row = page.locator('#members tr[data-user="bob"]')
    bob_row.locator("select").select_option("editor")
    bob_row.locator("button[value=change]").click()
    page.wait_for_load_state()
    assert "bob is now editor" in page.locator(".flash").inner_text()
    assert Membership.objects.get(team__slug="alpha", user__username="bob").role == "editor"

    page.fill("#invite-username", "carol")
    page.select_option("#invite-role", "auditor")
    page.click("#invite button[value=invite]")
    page.wait_for_load_state()
    assert "carol is invited as auditor" in page.locator(".flash").inner_text()
    assert page.locator('#pending tr[data-user="carol"]').count() == 1
    assert Invitation.objects.get(team__slug="alpha", user__username="carol").role == "auditor"
    assert not Membership.objects.filter(team__slug="alpha", user__username="carol").exists()

    # the last owner cannot demote themselves: the page says why
    alice_row = page.locator('#members tr[data-user="alice"]')
    alice_row.locator("select").select_option("viewer")
    alice_row.locator("button[value=change]").click()
    page.wait_for_load_state()
    assert "last owner" in page.locator(".flash").inner_text()

    viewer = browser.new_page()
    Membership.objects.filter(team__slug="alpha", user__username="bob").update(role="viewer")
    sign_in(viewer, live_server, "bob")
    viewer.goto(f"{live_server.url}/teams/alpha/")
    assert viewer.locator("#members tr").count() == 3  # header, alice, bob
    assert viewer.locator("#invite").count() == 0 and viewer.locator("#members button").count() == 0
    assert viewer.goto(f"{live_server.url}/teams/gamma/").status == 404  # another team does not exist for bob
    assert not errors


def test_processing_spec_intended_use_and_limitations_are_edited_on_the_version_page(
    live_server,
    browser,  # noqa: F811
    transactional_db,
):
    from evalsvc.registry.models import ModelVersion
    from evalsvc.registry.services import model_version_register
    from tests.conftest import FIXTURES

    world = make_world()
    model = model_version_register(
        user=world["alice"], team=world["alpha"], name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"),
        filename="bc.onnx",
    )  # fmt: skip
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/models/{model.pk}/")

    page.fill("#processing-input", '{"output": {"activation": "sigmoid"')
    page.click("#processing-form button")
    page.wait_for_load_state()
    assert "not valid JSON" in page.locator(".flash").inner_text()
    page.fill("#processing-input", '{"output": {"decision": "maybe"}}')
    page.click("#processing-form button")
    page.wait_for_load_state()
    assert "decision" in page.locator(".flash").inner_text()  # the spec validator's own message
    page.fill("#processing-input", '{"output": {"activation": "softmax"}}')
    page.click("#processing-form button")
    page.wait_for_load_state()
    assert "Processing spec saved" in page.locator(".flash").inner_text()
    assert '"softmax"' in page.locator("#processing").inner_text()
    model.refresh_from_db()
    assert model.processing["output"]["activation"] == "softmax"

    page.fill("#intended-use-input", "Triage support only.")
    page.fill("#limitations-input", "Not validated on male patients.")
    page.click("#model-use-form button")
    page.wait_for_load_state()
    assert page.locator("#intended-use").inner_text() == "Triage support only."
    assert page.locator("#limitations").inner_text() == "Not validated on male patients."
    assert ModelVersion.objects.get(pk=model.pk).registered_model.limitations == "Not validated on male patients."

    viewer = browser.new_page()
    sign_in(viewer, live_server, "bob")
    viewer.goto(f"{live_server.url}/models/{model.pk}/")
    assert viewer.locator("#processing-form").count() == 0 and viewer.locator("#model-use-form").count() == 0
    assert not errors


def test_an_owner_sets_report_thresholds_in_the_browser(live_server, browser, transactional_db):  # noqa: F811
    from evalsvc.reports.models import ReportPolicy

    make_world()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/teams/alpha/")
    page.click("#report-policy-link")
    page.wait_for_url("**/reports/policy/alpha/")
    page.fill("#thresholds-input", '{"accuracy": {"min": "high"}}')
    page.click("#policy-form button")
    page.wait_for_load_state()
    assert "accuracy" in page.locator(".flash").inner_text()  # the service's own refusal
    page.fill("#thresholds-input", '{"accuracy": {"min": 0.9}, "rmse": {"max": 60}}')
    page.check("#self-approval")
    page.click("#policy-form button")
    page.wait_for_load_state()
    assert "Report policy saved" in page.locator(".flash").inner_text()
    policy = ReportPolicy.objects.get(team__slug="alpha")
    assert policy.thresholds == {"accuracy": {"min": 0.9}, "rmse": {"max": 60}} and policy.allow_self_approval

    viewer = browser.new_page()
    sign_in(viewer, live_server, "bob")
    viewer.goto(f"{live_server.url}/reports/policy/alpha/")
    assert viewer.locator("#policy-form").count() == 0
    assert '"min": 0.9' in viewer.locator("#thresholds").inner_text()
    assert not errors


def test_the_audit_table_fits_the_window_with_long_details(live_server, browser, transactional_db):  # noqa: F811
    from evalsvc.registry.curation import registered_model_update
    from evalsvc.registry.services import model_version_register
    from tests.conftest import FIXTURES

    world = make_world()
    model = model_version_register(
        user=world["alice"], team=world["alpha"], name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"),
        filename="bc.onnx",
    )  # fmt: skip
    unbroken = "https://example.com/" + "a" * 300  # one long word: nowhere to break but inside it
    registered_model_update(user=world["alice"], model_id=model.registered_model_id, intended_use=unbroken)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/audit/?team=alpha")
    assert page.locator("#audit-table td.details", has_text="aaaaaaaaaa").count() >= 1
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
