"""The bearer secrets Whetstone issues: `whet token` (local) and API keys (aws).

One format for both, so a client's `api_key` looks the same in either runtime: the prefix
then 32 random bytes, URL-safe. Only the SHA-256 is ever stored. A salted, slow hash
(bcrypt, scrypt) protects low-entropy passwords from guessing; 256 random bits cannot be
guessed, and an unsalted digest lets the store find a secret by its hash in one lookup.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "whet_"
ID_LENGTH = 12
# How much of a secret its listing shows, so its owner can tell keys apart.
_HINT_LENGTH = len(TOKEN_PREFIX) + 4


def new_token() -> str:
    """A fresh secret: TOKEN_PREFIX and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The secret's SHA-256, hex: what the stores keep."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(sha256: str) -> str:
    """The public name of the secret with this hash (listings, revocation)."""
    return sha256[:ID_LENGTH]


def token_hint(token: str) -> str:
    """The secret's first characters, which a listing may show."""
    return token[:_HINT_LENGTH]


def looks_like_token(credential: str) -> bool:
    """Whether `credential` has the format of a secret issued here (not, e.g., a JWT)."""
    return credential.startswith(TOKEN_PREFIX)
