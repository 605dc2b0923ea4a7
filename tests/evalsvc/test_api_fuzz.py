"""schemathesis against the served OpenAPI schema: every operation, as a signed-in owner.

Each operation gets a few generated requests (derandomized, so a run is
repeatable), sent twice: with the generated path ids (mostly unknown: the 404
path) and with the ids of real objects of the owner's team (so bodies and
queries are fuzzed against a real monitor, run, model version ...). Every
answer must be no 5xx, a documented status code and content type, and a body
valid against the schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from evalsvc.evaluations.models import EvaluationRun, RunStatus

pytestmark = pytest.mark.django_db

#: Generated requests per operation: valid ones, and ones that break the schema (which must be refused with a 4xx).
EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 3}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def owner(alice, alpha, bc_model, bc_data, api):
    """Alice's token and the ids of real objects of her team, by path parameter name."""
    from evalsvc.monitoring.models import MonitorCheck
    from evalsvc.monitoring.services import monitor_create

    run = EvaluationRun.objects.create(
        team=alpha, kind="evaluate", model_version=bc_model, dataset_version=bc_data, created_by=alice,
        status=RunStatus.SUCCEEDED, result={"metrics": {"accuracy": 0.9}}, environment={"backend": "onnxruntime"},
    )  # fmt: skip
    monitor = monitor_create(
        user=alice,
        data={"name": "bc", "model_version": str(bc_model.pk), "reference_dataset": str(bc_data.pk),
              "schedule": "0 * * * *", "window_hours": 24},
        service_host="testserver",
    )  # fmt: skip
    check = MonitorCheck.objects.create(monitor=monitor, trigger="on_demand", status="succeeded", rows=5,
                                        drift=False, result={"drifted_features": []})  # fmt: skip
    token, _ = Token.objects.get_or_create(user=alice)
    ids = {
        "team": alpha.slug,
        "username": "bob",
        "check": str(check.pk),
        "run": str(run.pk),
        "model-versions": str(bc_model.pk),
        "dataset-versions": str(bc_data.pk),
        "models": str(bc_model.registered_model_id),
        "runs": str(run.pk),
        "monitors": str(monitor.pk),
    }
    return {"token": token.key, "ids": ids}


@pytest.fixture
def wsgi_schema(owner):
    # The WSGI app runs in the test's own transaction, so, as Django's test client does, the
    # connection stays open between requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json", get_wsgi_application(), headers={"Authorization": f"Token {owner['token']}"}
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _real_ids(path: str, params: dict, ids: dict) -> dict:
    """The same path parameters, pointing at real objects where the test has one of that collection."""
    collection = path.strip("/").split("/")[1]
    real = dict(params)
    for name in params:
        if name in ("pk", "id"):
            real[name] = ids.get(collection, params[name])
        elif name in ids:
            real[name] = ids[name]
    return real


def _fuzz(operation, mode: GenerationMode, owner: dict) -> None:
    headers = {"Authorization": f"Token {owner['token']}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case) -> None:
        # An empty path segment makes another URL (".../checks//" is not a check): not this operation.
        assume(all(str(value) for value in (case.path_parameters or {}).values()))
        # Each request starts from the same objects: whatever it changed is rolled back.
        with transaction.atomic():
            case.call_and_validate(headers=headers, checks=CHECKS)
            if case.path_parameters:
                case.path_parameters = _real_ids(case.path, case.path_parameters, owner["ids"])
                case.call_and_validate(headers=headers, checks=CHECKS)
            transaction.set_rollback(True)

    try:
        one()
    except Unsatisfiable:
        # Negative mode with nothing to break: every parameter takes any string, and there is no body.
        if mode is not GenerationMode.NEGATIVE:
            raise


def test_every_operation_answers_as_documented(wsgi_schema, owner):
    operations = [result.ok() for result in wsgi_schema.get_all_operations()]
    assert len(operations) >= 40
    failures = []
    for operation in operations:
        breakable = len(operation.query) > 0 or len(operation.body) > 0
        for mode in EXAMPLES if breakable else [GenerationMode.POSITIVE]:
            try:
                _fuzz(operation, mode, owner)
            except BaseException as exc:  # every operation is tried; all failures (groups too) are reported together
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
