"""Property-based fuzzing of every route in the OpenAPI document: no input yields a 5xx
or a connection dropped without an answer."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from whetstone.api.app import OPENAPI_PATH

EXAMPLES_PER_ROUTE = 25


@pytest.fixture
def api_schema(server_url: str) -> Any:
    with urllib.request.urlopen(f"{server_url}{OPENAPI_PATH}", timeout=30) as response:
        document = json.loads(response.read())
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.update(base_url=server_url)
    return loaded


def test_no_route_answers_a_server_error_or_drops_the_connection(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 17
    server_errors: list[str] = []
    dropped: list[str] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            try:
                response = case.call()
            except requests.ConnectionError as error:
                dropped.append(f"{case.method} {case.formatted_path}: {error}")
                return
            if response.status_code >= 500:
                server_errors.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text}"
                )

        fuzz()

    assert server_errors == []
    assert dropped == []
