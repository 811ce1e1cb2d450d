"""What a model server's deployment is named and keyed by: a generation per start, so a
deploy only removes what it created, and a key the server requires on every request."""

from __future__ import annotations

import hmac
import secrets

from whetstone.core.tokens import hash_token

SERVER_KEY_PREFIX = "whsk_"
_GENERATION_BYTES = 4  # 8 hex characters: lowercase, fits DNS labels


def new_generation() -> str:
    """A fresh deployment generation."""
    return secrets.token_hex(_GENERATION_BYTES)


def new_server_key() -> str:
    """A fresh key for one model server: SERVER_KEY_PREFIX and 256 random bits."""
    return SERVER_KEY_PREFIX + secrets.token_urlsafe(32)


def key_matches(given: str, sha256: str) -> bool:
    """Whether `given` is the key whose hash is `sha256`, compared in constant time."""
    return hmac.compare_digest(hash_token(given), sha256)


def bearer_credential(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` header, else None."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None
