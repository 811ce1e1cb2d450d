"""The OpenAPI document tells the truth about errors and successes: every operation lists
the errors it can answer, all with the error body the API really returns, and the status
codes its successes really have."""

from __future__ import annotations

from typing import Any

import pytest
from support.apigw import call_api

API = "/api/v1/fine-tuning"
ERROR_REF = "#/components/schemas/ErrorBody"
OPENAI_ERROR_REF = "#/components/schemas/OpenAIErrorEnvelope"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return call_api("GET", "/api/v1/openapi.json").body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_error_response_has_the_apis_error_body(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        # every route authenticates and reads the store
        assert {"401", "503"} <= set(errors), (method, path)
        # the OpenAI-compatible routes answer OpenAI's envelope, with 400 for our 422
        openai = path.startswith("/v1/")
        ref = OPENAI_ERROR_REF if openai else ERROR_REF
        assert not (openai and "422" in errors), (method, path)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ref}, (method, path, status)
            assert response["description"], (method, path, status)
    body = document["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "details"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_routes_on_a_named_resource_document_404_and_their_changes_409(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        if "{" in path:
            assert "404" in operation["responses"], (method, path)
        if "{" in path and method in ("post", "delete"):
            assert "409" in operation["responses"], (method, path)
    # and a route with nothing to validate does not claim a 422
    assert "422" not in document["paths"][f"{API}/hardware-options"]["get"]["responses"]


def test_success_statuses_are_the_ones_answered(document: dict[str, Any]) -> None:
    paths = document["paths"]
    created = paths[f"{API}/jobs/json"]["post"]["responses"]
    assert created["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobResponse")
    assert "429" in created and "200" not in created
    assert "202" in paths[f"{API}/jobs/{{job_id}}/deploy"]["post"]["responses"]
    deleted = paths[f"{API}/jobs/{{job_id}}"]["delete"]["responses"]
    assert set(deleted) & {"200", "204"} == {"204"} and "content" not in deleted["204"]


@pytest.mark.parametrize(
    ("method", "path", "route", "status"),
    [
        ("GET", f"{API}/jobs/ftjob-nothere", f"{API}/jobs/{{job_id}}", 404),
        ("POST", f"{API}/estimate-cost", f"{API}/estimate-cost", 422),
        ("GET", f"{API}/jobs?limit=0", f"{API}/jobs", 400),
    ],
)
def test_the_errors_answered_are_documented_with_their_shape(
    document: dict[str, Any], method: str, path: str, route: str, status: int
) -> None:
    answered = call_api(method, path, json_body={} if method == "POST" else None)

    assert answered.status == status
    assert set(answered.body) == {"code", "message", "details"}
    assert str(status) in document["paths"][route][method.lower()]["responses"]


def test_every_operation_documents_the_request_rate_429(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        assert "429" in operation["responses"], (method, path)
