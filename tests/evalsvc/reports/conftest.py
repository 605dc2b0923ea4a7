"""Report fixtures: finished runs, and poppler to read the PDFs back.

poppler-utils is a system package (.ci/run installs it); without it these
tests fail with a message saying so instead of skipping silently.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_submit
from workers.tasks.evaluate import run_evaluate


def poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is not installed: `apt-get install poppler-utils` (.ci/run installs it)")
    return found


def pdf_text(content: bytes, tmp_path: Path, name: str = "report.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    done = subprocess.run(
        [poppler("pdftotext"), "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.decode("utf-8")


def pdf_tool(tool: str, content: bytes, tmp_path: Path, *args: str) -> str:
    path = tmp_path / "tool.pdf"
    path.write_bytes(content)
    done = subprocess.run([poppler(tool), *args, str(path)], capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8", errors="replace")


def execute(run: EvaluationRun) -> EvaluationRun:
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def bc_run(alice, bc_model, bc_data):
    return execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={}))


@pytest.fixture
def diabetes_run(alice, diabetes_model, diabetes_data):
    return execute(
        run_submit(user=alice, model_version_id=diabetes_model.pk, dataset_version_id=diabetes_data.pk, params={})
    )


@pytest.fixture
def make_report(api):
    def make(model_version, runs, *, user: str = "alice", title: str | None = None) -> dict:
        body = {"model_version": str(model_version.pk), "runs": [str(r.pk) for r in runs]}
        if title is not None:
            body["title"] = title
        response = api[user].post("/api/reports/", body, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    return make


@pytest.fixture
def dave(users, alpha):
    """An auditor on team alpha."""
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory(username="dave")
    MembershipFactory(team=alpha, user=user, role="auditor")
    return user


@pytest.fixture
def dave_api(dave):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=dave)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
