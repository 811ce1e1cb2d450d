"""Verify a Cognito user pool's ID tokens, as API Gateway's Cognito authorizer did: RS256
signature by a key of the pool's JWKS, issuer, audience (one of the app clients: the CLI's,
the console's), expiry, and `token_use` = id (only ID tokens carry the organization
attribute).

The JWKS is fetched once per process and again only when a token names a key id it does
not hold (the pool rotated its keys), at most once a minute, so a flood of forged key ids
cannot make every request fetch.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import jwt

from whetstone.core.errors import UnauthenticatedError

JWKS_TIMEOUT_S = 5
_REFETCH_INTERVAL_S = 60
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "token_use"]


def user_pool_issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_S) as response:  # noqa: S310
        document: dict[str, Any] = json.load(response)
        return document


class CognitoTokenVerifier:
    """The claims of a valid ID token of one user pool, issued to one of its app clients."""

    def __init__(
        self,
        issuer: str,
        client_ids: str | Sequence[str],
        *,
        fetch: Callable[[str], dict[str, Any]] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._client_ids = [client_ids] if isinstance(client_ids, str) else list(client_ids)
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; UnauthenticatedError saying why it is not valid."""
        try:
            key = self._key(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._client_ids,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as error:
            raise UnauthenticatedError(f"the token is not valid: {error}") from error
        if claims["token_use"] != "id":
            raise UnauthenticatedError("send the ID token, not the access token")
        return claims

    def _key(self, kid: object) -> jwt.PyJWK:
        if not isinstance(kid, str):
            raise UnauthenticatedError("the token names no signing key")
        if kid not in self._keys and self._may_fetch():
            self._fetched_at = self._clock()
            jwks = jwt.PyJWKSet.from_dict(self._fetch(f"{self._issuer}/.well-known/jwks.json"))
            self._keys = {key.key_id: key for key in jwks.keys if key.key_id}
        if kid not in self._keys:
            raise UnauthenticatedError("the token was not signed by this user pool")
        return self._keys[kid]

    def _may_fetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= _REFETCH_INTERVAL_S
