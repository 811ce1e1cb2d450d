"""In aws the API's answers let the web console's origin, and no other, read them."""

from __future__ import annotations

import pytest

from functions import api
from whetstone.api.app import OPENAPI_PATH
from whetstone.cli.server import build_proxy_event
from whetstone.settings import get_settings

CONSOLE = "https://d111111abcdef8.cloudfront.net"


def answer_to(origin: str | None) -> dict[str, list[str]]:
    headers = {"origin": origin} if origin else {}
    event = build_proxy_event("GET", OPENAPI_PATH, headers, b"", "127.0.0.1", None)
    response = api.handler(event, None)
    assert response["statusCode"] == 200
    return {name.lower(): values for name, values in response["multiValueHeaders"].items()}


@pytest.fixture
def console_origin(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WHETSTONE_CONSOLE_ORIGIN", CONSOLE)
    get_settings.cache_clear()
    return CONSOLE


def test_a_request_from_the_console_may_read_the_answer(console_origin: str) -> None:
    # When the console's page calls the API
    headers = answer_to(console_origin)

    # Then the answer names its origin, and caches keep answers apart by origin
    assert headers["access-control-allow-origin"] == [console_origin]
    assert "Origin" in headers["vary"]


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://d111111abcdef8.cloudfront.net", None]
)
def test_a_request_from_any_other_origin_gets_no_cors_grant(
    console_origin: str, origin: str | None
) -> None:
    # When another page (or no page: the CLI) calls the API
    headers = answer_to(origin)

    # Then the answer allows no origin, so a browser keeps it from that page
    assert "access-control-allow-origin" not in headers


def test_without_a_console_the_answers_are_unchanged() -> None:
    # Given no console origin configured (the local runtime, or aws without the console)
    # When a page calls the API
    headers = answer_to(CONSOLE)

    # Then no CORS header is added
    assert "access-control-allow-origin" not in headers
    assert "Origin" not in headers.get("vary", [])
