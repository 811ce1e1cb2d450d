"""Per-organization request throttling (aws): a fixed-window counter per organization in
DynamoDB, checked before routing, answering 429 with Retry-After."""

from __future__ import annotations

import dataclasses

import boto3
import pytest
from support.apigw import call_api

from whetstone.adapters.aws.dynamodb_throttle import DynamoDBRequestThrottle
from whetstone.api import errors
from whetstone.runtime import get_platform
from whetstone.service.platform import Platform

WINDOW_START = 1_800_000_000.0  # a multiple of 60


def test_an_organization_past_its_window_waits_for_the_next_and_others_do_not(
    aws_platform: Platform,
) -> None:
    # Given a limit of 3 requests a minute, 15 s into a minute
    now = [WINDOW_START + 15]
    throttle = DynamoDBRequestThrottle(
        aws_platform.settings.table_name,
        boto3.client("dynamodb"),
        limit=3,
        window_s=60,
        clock=lambda: now[0],
    )

    # When one organization makes 4 requests, and another one
    answers = [throttle.take("acme") for _ in range(4)]
    other = throttle.take("globex")
    now[0] = WINDOW_START + 61
    next_window = throttle.take("acme")

    # Then the 4th waits for the window's end; the other organization and the next window pass
    assert answers == [None, None, None, 45]
    assert other is None and next_window is None


class Refusing:
    """A throttle whose limit is reached, for 7 more seconds."""

    def take(self, org_id: str) -> float | None:
        return 7


@pytest.fixture
def over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    limited = dataclasses.replace(get_platform(), throttle=Refusing())
    monkeypatch.setattr(errors, "get_platform", lambda: limited)


@pytest.mark.usefixtures("over_the_limit")
def test_a_request_over_the_limit_is_a_429_with_retry_after() -> None:
    response = call_api("GET", "/api/v1/fine-tuning/jobs")

    assert (response.status, response.body["code"]) == (429, "rate_limited")
    assert response.headers["retry-after"] == "7"


@pytest.mark.usefixtures("over_the_limit")
def test_an_openai_request_over_the_limit_gets_openais_rate_limit_error() -> None:
    response = call_api("GET", "/v1/models")

    assert response.status == 429
    assert response.body["error"]["type"] == "rate_limit_error"


@pytest.mark.usefixtures("over_the_limit")
def test_a_request_without_an_organization_is_not_counted() -> None:
    assert call_api("GET", "/api/v1/fine-tuning/jobs", caller=None).status == 401


def test_the_aws_platform_throttles_by_the_settings(aws_platform: Platform) -> None:
    assert isinstance(aws_platform.throttle, DynamoDBRequestThrottle)
    assert aws_platform.throttle.take("acme") is None
