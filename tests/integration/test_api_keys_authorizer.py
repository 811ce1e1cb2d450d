"""The Lambda authorizer's other half: Cognito ID tokens, verified against the user pool's
JWKS (a key pair made here; nothing is fetched from the network)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support.apigw import call_api

from functions import authorizer
from whetstone.adapters.aws.cognito_tokens import CognitoTokenVerifier
from whetstone.api.paths import API_PREFIX
from whetstone.service.platform import Platform
from whetstone.settings import get_settings

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
CLIENT_ID = "app-client"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/v1/POST/api/v1/fine-tuning/jobs"
POOL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks() -> dict[str, Any]:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(POOL_KEY.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": "pool-key", "alg": "RS256", "use": "sig"}]}


class CountingJwks:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> dict[str, Any]:
        self.urls.append(url)
        return jwks()


def id_token(key: Any = POOL_KEY, kid: str = "pool-key", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "sub": "alice",
        "custom:organization": "acme",
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "token_use": "id",
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> CountingJwks:
    counting = CountingJwks()
    verifier = CognitoTokenVerifier(ISSUER, CLIENT_ID, fetch=counting)
    monkeypatch.setattr(authorizer, "token_verifier", lambda: verifier)
    return counting


def authorize(credential: str) -> dict[str, Any]:
    event = {"type": "TOKEN", "authorizationToken": credential, "methodArn": METHOD_ARN}
    answer: dict[str, Any] = authorizer.handler(event)
    return answer


def test_a_valid_id_token_yields_the_users_claims(fetched: CountingJwks) -> None:
    # Given an ID token the user pool signed
    token = id_token()

    # When the authorizer is sent it, bare as the CLI sends it and as a bearer token
    answers = [authorize(token), authorize(f"Bearer {token}"), authorize(f"bearer  {token}")]

    # Then both allow with the user's organization, and the JWKS was fetched once
    for answer in answers:
        assert answer["context"] == {
            "sub": "alice",
            "custom:organization": "acme",
            "whetstone:credential": "cognito",
        }
        assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert fetched.urls == [f"{ISSUER}/.well-known/jwks.json"]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(id_token(exp=int(time.time()) - 60), id="expired"),
        pytest.param(id_token(key=OTHER_KEY), id="signed-by-another-key"),
        pytest.param(id_token(aud="another-client"), id="another-app-client"),
        pytest.param(id_token(iss="https://cognito-idp.us-east-1.amazonaws.com/x"), id="issuer"),
        pytest.param(id_token(token_use="access"), id="access-token"),
        pytest.param(id_token(**{"custom:organization": ""}), id="no-organization"),
        pytest.param(id_token(kid="unknown"), id="unknown-key-id"),
        pytest.param(
            jwt.encode({"sub": "alice"}, "s" * 32, algorithm="HS256", headers={"kid": "pool-key"}),
            id="symmetric-algorithm",
        ),
    ],
)
def test_an_invalid_token_is_refused_with_401(token: str, fetched: CountingJwks) -> None:
    # Given a token the user pool's client must not accept
    # When the authorizer is sent it
    # Then it answers Unauthorized, which API Gateway turns into 401
    with pytest.raises(PermissionError, match="^Unauthorized$"):
        authorize(token)


def test_unknown_key_ids_refetch_the_jwks_at_most_once_a_minute(fetched: CountingJwks) -> None:
    # Given a verifier that fetched the JWKS for a valid token
    authorize(id_token())

    # When tokens naming unknown keys arrive in a burst
    for _ in range(5):
        with pytest.raises(PermissionError):
            authorize(id_token(kid="rotated"))

    # Then the burst caused no further fetch (the first is under a minute old)
    assert len(fetched.urls) == 1


def test_a_signed_in_user_creates_a_key_that_then_authorizes(
    aws_platform: Platform, fetched: CountingJwks
) -> None:
    # Given the claims the authorizer gives a signed-in user
    authorizer.key_store.cache_clear()
    user = authorize(id_token())["context"]

    # When that user creates a key, and the key is sent to the authorizer
    created = call_api(
        "POST", f"{API_PREFIX}/api-keys", json_body={"name": "ci"}, caller=None, authorizer=user
    )
    as_key = authorize(f"Bearer {created.body['secret']}")["context"]

    # Then the key acts as that user in that organization
    assert created.status == 201
    assert (as_key["sub"], as_key["custom:organization"]) == ("alice", "acme")


def test_id_tokens_of_the_console_client_authorize_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the authorizer configured as infra configures it: the CLI's and the console's
    # app clients of one user pool
    monkeypatch.setenv("WHETSTONE_USER_POOL_ID", "us-east-1_pool")
    monkeypatch.setenv("WHETSTONE_AWS_REGION", "us-east-1")
    monkeypatch.setenv("WHETSTONE_USER_POOL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("WHETSTONE_CONSOLE_CLIENT_ID", "console-client")
    get_settings.cache_clear()
    monkeypatch.setattr(
        authorizer, "CognitoTokenVerifier", partial(CognitoTokenVerifier, fetch=lambda _: jwks())
    )
    authorizer.token_verifier.cache_clear()
    try:
        # When the hosted UI's ID token (aud: the console) and a token of another client
        # are sent
        console = authorize(id_token(aud="console-client"))
        with pytest.raises(PermissionError, match="Unauthorized"):
            authorize(id_token(aud="someone-elses-client"))
    finally:
        authorizer.token_verifier.cache_clear()

    # Then the console's user is allowed with their organization
    assert console["context"]["custom:organization"] == "acme"
