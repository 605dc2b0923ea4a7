"""The schema describes what the API does: list endpoints are pages, error answers are documented.

Real responses from the running API are validated against the schema it serves (jsonschema over
the OpenAPI 3.0 component schemas, ``nullable`` read as JSON Schema's ``null`` type).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db

PAGINATED = ["/api/model-versions/", "/api/dataset-versions/", "/api/runs/", "/api/reports/", "/api/audit/",
             "/api/audit/sign-ins/"]  # fmt: skip
MONITOR_PAGINATED = ["/api/monitors/", "/api/monitors/{id}/batches/", "/api/monitors/{id}/checks/", "/api/monitors/{id}/labels/",
                     "/api/monitors/{id}/alerts/"]  # fmt: skip


def _json_schema(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable"):
            if "type" in out:
                out["type"] = [out["type"], "null"]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        if "$ref" in out:
            out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


@pytest.fixture
def openapi(api):
    response = api["alice"].get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _validator(openapi: dict, path: str, method: str, code: str) -> Draft202012Validator:
    operation = openapi["paths"][path][method]
    assert code in operation["responses"], f"{method.upper()} {path} does not document {code}"
    schema = operation["responses"][code]["content"]["application/json"]["schema"]
    return Draft202012Validator({**_json_schema(schema), "$defs": _json_schema(openapi["components"]["schemas"])})


def test_list_endpoints_are_documented_as_the_pages_they_return(api, openapi, bc_model, bc_data):
    api["alice"].post(
        "/api/runs/", {"model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk)}, format="json"
    )
    monitor = api["alice"].post(
        "/api/monitors/",
        {
            "name": "bc",
            "model_version": str(bc_model.pk),
            "reference_dataset": str(bc_data.pk),
            "schedule": "0 * * * *",
        },
        format="json",
    )
    assert monitor.status_code == 201, monitor.json()
    pk = monitor.json()["id"]
    rows = pd.read_csv(FIXTURES / "breast_cancer_test.csv").head(5).to_dict(orient="records")
    assert api["alice"].post(f"/api/monitors/{pk}/batches/", {"rows": rows}, format="json").status_code == 201
    assert api["alice"].post(f"/api/monitors/{pk}/checks/").status_code == 202
    for documented in [*PAGINATED, *MONITOR_PAGINATED]:
        path = documented.replace("{id}", pk)
        body = api["alice"].get(path).json()
        assert set(body) == {"count", "next", "previous", "results"}, path
        assert body["count"] >= 1 or documented not in MONITOR_PAGINATED[:3], (path, body)
        errors = [e.message for e in _validator(openapi, documented, "get", "200").iter_errors(body)]
        assert errors == [], (path, errors[:3])
    assert api["alice"].get("/api/model-versions/").json()["count"] == 1


def test_every_paged_answer_is_documented_as_a_page(openapi):
    """Every GET that answers with `paginated` is documented with its page schema (count, next, previous, results)."""
    for path in [*PAGINATED, *MONITOR_PAGINATED]:
        schema = openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[-1]
        assert set(openapi["components"]["schemas"][name]["properties"]) == {"count", "next", "previous", "results"}
        assert openapi["paths"][path]["get"]["operationId"].endswith("_list"), path


def test_lists_document_summaries_and_details_the_full_result(openapi):
    schemas = openapi["components"]["schemas"]
    for path, summary, full in [
        ("/api/runs/", "RunSummary", "/api/runs/{id}/"),
        ("/api/monitors/{id}/checks/", "CheckSummary", "/api/monitors/{id}/checks/{check}/"),
    ]:
        page = openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        items = schemas[page["$ref"].rsplit("/", 1)[-1]]["properties"]["results"]["items"]["$ref"]
        assert items.endswith(f"/{summary}Out") and "result" not in schemas[f"{summary}Out"]["properties"]
        detail = openapi["paths"][full]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert "result" in schemas[detail.rsplit("/", 1)[-1]]["properties"], full


def test_every_operation_documents_its_error_answers(openapi):
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            missing = {"400", "401", "403", "404"} - set(operation["responses"])
            assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"


def test_error_answers_match_their_documented_schema(api, openapi, client):
    missing = api["alice"].get("/api/model-versions/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404
    assert list(_validator(openapi, "/api/model-versions/{id}/", "get", "404").iter_errors(missing.json())) == []
    refused = client.get("/api/runs/")
    assert refused.status_code in (401, 403)
    assert list(_validator(openapi, "/api/runs/", "get", str(refused.status_code)).iter_errors(refused.json())) == []
    bad = api["alice"].post("/api/runs/", {}, format="json")
    assert bad.status_code == 400
    assert list(_validator(openapi, "/api/runs/", "post", "400").iter_errors(bad.json())) == []
