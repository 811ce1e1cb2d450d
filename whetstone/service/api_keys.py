"""API keys of the aws runtime: created, listed and revoked by a signed-in user for their
organization; checked by the Lambda authorizer (functions/authorizer.py).

A key acts as the user who created it, in that user's organization. Only the hash is
stored (why SHA-256 and not bcrypt: whetstone.core.tokens), so the secret is shown once,
by `create_api_key`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from whetstone.core.api_keys import ApiKey
from whetstone.core.errors import NotFoundError, QuotaExceededError, UnauthenticatedError
from whetstone.core.job import Caller, utcnow
from whetstone.core.tokens import hash_token, looks_like_token, new_token, token_hint, token_id
from whetstone.ports import ApiKeyStore
from whetstone.service.platform import Platform

# Keeps listing (and revoking, which lists) one small query; far above what scripts need.
MAX_KEYS_PER_ORGANIZATION = 100


def key_store(platform: Platform) -> ApiKeyStore:
    """The platform's key store; NotFoundError in a runtime without one (local)."""
    if platform.api_keys is None:
        raise NotFoundError(
            "this runtime issues no API keys; on a local server create a token with "
            "`whet token create` and send it as the API key",
            code="api_keys_unavailable",
        )
    return platform.api_keys


def create_api_key(
    store: ApiKeyStore, caller: Caller, name: str, expires_in: timedelta | None = None
) -> tuple[ApiKey, str]:
    """A new key of the caller's organization, and its secret (shown this once)."""
    if len(store.list_keys(caller.org_id)) >= MAX_KEYS_PER_ORGANIZATION:
        raise QuotaExceededError(
            f"your organization has {MAX_KEYS_PER_ORGANIZATION} API keys, the most it may "
            "have; revoke unused ones (DELETE /api-keys/{key_id})",
            code="too_many_api_keys",
            details={"limit": MAX_KEYS_PER_ORGANIZATION},
        )
    secret = new_token()
    now = utcnow()
    digest = hash_token(secret)
    key = ApiKey(
        key_id=token_id(digest),
        sha256=digest,
        name=name,
        prefix=token_hint(secret),
        org_id=caller.org_id,
        user_id=caller.user_id,
        created_at=now,
        expires_at=now + expires_in if expires_in else None,
    )
    store.put(key)
    return key, secret


def list_api_keys(store: ApiKeyStore, caller: Caller) -> list[ApiKey]:
    return store.list_keys(caller.org_id)


def revoke_api_key(store: ApiKeyStore, caller: Caller, key_id: str) -> ApiKey:
    """Remove the caller's organization's key; NotFoundError if it has no such key."""
    removed = store.delete(caller.org_id, key_id)
    if removed is None:
        raise NotFoundError(
            f"no API key {key_id!r} in your organization; GET /api-keys lists their ids",
            details={"key_id": key_id},
        )
    return removed


def authenticate_api_key(store: ApiKeyStore, secret: str, now: datetime | None = None) -> Caller:
    """Whom `secret` acts as; UnauthenticatedError (unknown, revoked, expired) otherwise.
    Records the use on the key."""
    key = store.find(hash_token(secret)) if looks_like_token(secret) else None
    if key is None:
        raise UnauthenticatedError("the API key is not valid (unknown or revoked)")
    now = now or utcnow()
    if key.expired(now):
        raise UnauthenticatedError(f"the API key {key.key_id} expired")
    store.touch(key.sha256, now)
    return key.caller
