"""The console's Cognito sign-in in Chromium, the hosted UI and the token endpoint played by
routes: authorization code with an S256 PKCE challenge, the state checked on the way back,
the ID token sent to the API; a foreign state is refused."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support.browser import new_page

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser
DOMAIN = "https://whetstone-test.auth.eu-west-1.amazoncognito.com"


@pytest.fixture
def page(browser: Any) -> Any:
    """A page that ignores `whet serve`'s Content-Security-Policy, which allows this origin
    only (local signs in with no identity provider); the aws one allows Cognito's domain."""
    return new_page(browser, bypass_csp=True)


def cognito(page: Any, console_url: str) -> dict[str, list[Any]]:
    """Routes for an aws config.json, the hosted UI and the token endpoint; what each saw."""
    seen: dict[str, list[Any]] = {"authorize": [], "token": [], "api": []}
    config = {
        "runtime": "aws",
        "apiBaseUrl": console_url,
        "auth": {
            "type": "cognito",
            "domain": DOMAIN,
            "clientId": "client-1",
            "redirectUri": f"{console_url}/",
            "scopes": ["openid", "email"],
        },
    }
    cors = {"access-control-allow-origin": "*"}

    def authorize(route: Any) -> None:
        seen["authorize"].append(parse_qs(urlsplit(route.request.url).query))
        route.fulfill(body="the hosted UI", content_type="text/html")

    def token(route: Any) -> None:
        seen["token"].append(parse_qs(route.request.post_data or ""))
        tokens = {"id_token": "id-1", "access_token": "a-1", "expires_in": 3600}
        route.fulfill(json=tokens, headers=cors)

    def api(route: Any) -> None:
        seen["api"].append(route.request.headers.get("authorization"))
        route.fulfill(json={"jobs": [], "next_token": None})

    page.route("**/config.json", lambda route: route.fulfill(json=config))
    page.route(f"{DOMAIN}/oauth2/authorize**", authorize)
    page.route(f"{DOMAIN}/oauth2/token", token)
    page.route("**/api/v1/fine-tuning/jobs?*", api)
    return seen


def sign_in(page: Any, console_url: str) -> dict[str, list[str]]:
    page.goto(console_url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{DOMAIN}/**")
    return dict(parse_qs(urlsplit(page.url).query))


def test_sign_in_exchanges_the_code_with_its_verifier_and_sends_the_id_token(
    page: Any, console_url: str
) -> None:
    seen = cognito(page, console_url)

    # When the user signs in and the hosted UI sends them back with a code and the state
    request = sign_in(page, console_url)
    page.goto(f"{console_url}/?code=code-1&state={request['state'][0]}#/jobs")
    playwright.expect(page.get_by_role("heading", name="Jobs")).to_be_visible()

    # Then the request was a code request with an S256 challenge of the verifier it sent later
    assert request["response_type"] == ["code"] and request["client_id"] == ["client-1"]
    assert request["code_challenge_method"] == ["S256"]
    assert request["scope"] == ["openid email"]
    exchange = seen["token"][0]
    assert exchange["grant_type"] == ["authorization_code"] and exchange["code"] == ["code-1"]
    digest = hashlib.sha256(exchange["code_verifier"][0].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == request["code_challenge"][0]
    # And the API is called with the ID token, the code gone from the address
    assert seen["api"] and set(seen["api"]) == {"Bearer id-1"}
    assert "code=" not in page.url
    playwright.expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_an_answer_with_another_state_is_refused(page: Any, console_url: str) -> None:
    seen = cognito(page, console_url)
    sign_in(page, console_url)

    page.goto(f"{console_url}/?code=code-1&state=forged")

    playwright.expect(page.get_by_role("alert")).to_contain_text("state")
    assert seen["token"] == [] and seen["api"] == []
