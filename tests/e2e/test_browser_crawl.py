"""Every page a signed-in user can reach, opened in Chromium: no error status, no console error, no
Content-Security-Policy violation, no exception in the page — as an owner and as a viewer, who is
offered no form that changes anything."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlparse

import pandas as pd
import pytest
from django.utils import timezone

from evalsvc.evaluations.services import run_submit
from tests.conftest import FIXTURES
from tests.e2e.test_browser import browser  # noqa: F401  (fixture)
from tests.e2e.test_browser_csp import RECORD_VIOLATIONS
from tests.factories import make_world

pytestmark = [pytest.mark.browser]

PASSWORD = "pw-for-tests-1"
#: Links the crawl does not follow: they sign out, change something, download a file or leave the pages.
NOT_FOLLOWED = re.compile(
    r"^/(logout|admin|static|media)/|/(cancel|regenerate|approve|download)/|/result\.|\.(pdf|json|csv|html)$"
    r"|^/invitations/[^/]+/|^/api/(?!docs/|redoc/)"
)
#: ReDoc's "powered by" badge is an image on its CDN, which the policy refuses on purpose.
TOLERATED = ("cdn.redoc.ly",)


def _run(user, model, data, kind="evaluate", params=None):
    from workers.tasks.drift import run_drift
    from workers.tasks.evaluate import run_evaluate
    from workers.tasks.explain import run_explain

    task = {"evaluate": run_evaluate, "drift": run_drift, "explain": run_explain}[kind]
    run = run_submit(
        user=user, model_version_id=model.pk, dataset_version_id=data.pk if data else None, kind=kind, params=params
    )
    run.refresh_from_db()
    task.apply(args=[str(run.pk)], task_id=run.celery_task_id or None)
    run.refresh_from_db()
    assert run.status == "succeeded", (kind, run.error)
    return run


def _objects(world):
    """One of each object the pages show: runs of several kinds, a monitor with checks, a report."""
    from evalsvc.monitoring.services import batch_ingest, monitor_create
    from evalsvc.registry.services import dataset_version_register, model_version_register
    from evalsvc.reports.services import report_generate
    from workers.tasks.monitoring import monitor_check

    alice, alpha = world["alice"], world["alpha"]
    bc = model_version_register(
        user=alice, team=alpha, name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"), filename="bc.onnx"
    )
    bc_test = dataset_version_register(
        user=alice, team=alpha, name="bc-test", path=str(FIXTURES / "breast_cancer_test.csv"),
        filename="bc_test.csv", label_column="diagnosis",
    )  # fmt: skip
    bc_train = dataset_version_register(
        user=alice, team=alpha, name="bc-train", path=str(FIXTURES / "breast_cancer.csv"),
        filename="bc.csv", label_column="diagnosis",
    )  # fmt: skip
    ridge = model_version_register(
        user=alice, team=alpha, name="ridge", path=str(FIXTURES / "diabetes_ridge.onnx"), filename="ridge.onnx"
    )
    diabetes = dataset_version_register(
        user=alice, team=alpha, name="diabetes", path=str(FIXTURES / "diabetes.parquet"),
        filename="diabetes.parquet", label_column="progression",
    )  # fmt: skip
    first = _run(alice, bc, bc_test)
    second = _run(alice, bc, bc_train)
    _run(alice, ridge, diabetes)  # a regressor's scatter plots
    _run(alice, bc, bc_test, "drift", {"reference_dataset": str(bc_train.pk), "n_permutations": 20})
    _run(
        alice, bc, bc_test, "explain",
        {"method": "kernel_shap", "method_params": {"nsamples": 32}, "rows": {"indices": [1]}, "global_rows": 8},
    )  # fmt: skip

    table = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    features = [c for c in table.columns if c != "diagnosis"]
    monitor = monitor_create(
        user=alice,
        data={
            "name": "bc-production", "model_version": str(bc.pk), "reference_dataset": str(bc_train.pk),
            "columns": features, "schedule": "0 * * * *",
            "detectors": {"attribution_drift": False, "prediction_drift": False},
        },
    )  # fmt: skip
    batch_ingest(user=alice, pk=monitor.pk, rows=table[features].head(60).to_dict(orient="records"))
    monitor_check.apply(args=[str(monitor.pk)])
    now = timezone.now()
    report_generate(
        user=alice,
        model_version_id=bc.pk,
        run_ids=[str(first.pk), str(second.pk)],
        monitors=[{"monitor": str(monitor.pk), "start": (now - timedelta(days=1)).isoformat(),
                   "end": (now + timedelta(hours=1)).isoformat()}],
    )  # fmt: skip
    return {"compare": f"/runs/compare/?ids={first.pk},{second.pk}"}


def _crawl(browser, base: str, username: str, start: list[str]) -> dict[str, str]:  # noqa: F811
    """Open every page reachable from ``start``; return each path's problems ('' for none)."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"exception: {exc}"))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    found: dict[str, str] = {}
    queue = list(start)
    while queue:
        path = queue.pop(0)
        if path in found:
            continue
        problems.clear()
        response = page.goto(f"{base}{path}", wait_until="load")
        page.wait_for_timeout(300)  # figures draw after load
        status = response.status if response else 0
        seen = [*problems, *(f"CSP {v}" for v in page.evaluate("window.__cspViolations"))]
        seen = [p for p in seen if not any(t in p for t in TOLERATED)]
        found[path] = "; ".join(([f"status {status}"] if status != 200 else []) + seen)
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            url = urlparse(href)
            if f"{url.scheme}://{url.netloc}" != base or NOT_FOLLOWED.search(url.path):
                continue
            link = url.path + (f"?{url.query}" if url.query else "")
            if link not in found and len(found) + len(queue) < 300:
                queue.append(link)
    page.close()
    return found


def test_every_page_opens_without_an_error_as_an_owner_and_as_a_viewer(
    live_server,
    browser,  # noqa: F811
    transactional_db,
    local_worker,
):
    world = make_world()
    extra = _objects(world)
    base = live_server.url

    pages = _crawl(browser, base, "alice", ["/", extra["compare"], "/api/redoc/"])
    bad = {path: problem for path, problem in pages.items() if problem}
    assert bad == {}, bad
    visited = " ".join(pages)
    # Every kind of page was reached, not just the navigation.
    for expected in ("/models/", "/datasets/", "/runs/", "/runs/compare/", "/monitors/", "/checks/",
                     "/reports/", "/teams/alpha/", "/audit/", "/about/", "/api/docs/", "/backends/"):  # fmt: skip
        assert expected in visited, (expected, sorted(pages))
    assert sum(1 for p in pages if re.fullmatch(r"/runs/[0-9a-f-]{36}/", p)) == 5, sorted(pages)

    viewer = _crawl(browser, base, "bob", ["/", extra["compare"]])
    bad = {path: problem for path, problem in viewer.items() if problem}
    assert bad == {}, bad
    # A viewer reads the same objects but is offered no form that writes.
    assert sum(1 for p in viewer if re.fullmatch(r"/runs/[0-9a-f-]{36}/", p)) == 5, sorted(viewer)
    for form in ("/models/upload/", "/datasets/upload/", "/runs/new/", "/monitors/new/", "/reports/new/"):
        assert form in pages, form  # the owner is offered each of them
        assert not [p for p in viewer if p.startswith(form)], (form, sorted(viewer))
