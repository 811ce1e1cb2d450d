"""API tokens of the local runtime: `$WHETSTONE_HOME/tokens.json`.

The file keeps each token's sha256, never the token: whoever reads it cannot act as
anyone. A file of plain tokens (written before hashing) is rewritten hashed when read.
Until a token exists, requests from this machine act as the default local user; once
one exists, every request needs a valid one. The server reads the file again whenever
it changes, so a token created or revoked while it runs takes effect at once.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

from whetstone.core.errors import UnauthenticatedError
from whetstone.core.job import Caller, utcnow
from whetstone.core.tokens import hash_token, looks_like_token, new_token
from whetstone.core.tokens import token_id as id_of_hash
from whetstone.observability import logger

DEFAULT_CALLER = Caller(user_id="local-user", org_id="local")


class StoredToken(BaseModel):
    """One token as the file keeps it."""

    sha256: Annotated[str, Field(description="The token's sha256, hex.")]
    user_id: Annotated[str, Field(description="The user the token acts as.")]
    org_id: Annotated[str, Field(description="That user's organization.")]
    created_at: Annotated[datetime | None, Field(description="When it was created.")] = None
    expires_at: Annotated[
        datetime | None, Field(description="When it stops working; None: never.")
    ] = None

    @property
    def token_id(self) -> str:
        """The name `whet token list` shows and `whet token revoke` takes."""
        return id_of_hash(self.sha256)

    @property
    def caller(self) -> Caller:
        return Caller(user_id=self.user_id, org_id=self.org_id)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class _TokenFileContent(BaseModel):
    version: Annotated[int, Field(description="Format of the file: 2 stores hashes.")] = 2
    tokens: Annotated[list[StoredToken], Field(description="Every token, in creation order.")]


def tokens_path(home: Path) -> Path:
    return home / "tokens.json"


def _parse(raw: Any) -> tuple[dict[str, StoredToken], bool]:
    """The tokens by hash, and whether they came from a file of plain tokens."""
    if isinstance(raw, dict) and "tokens" in raw:
        content = _TokenFileContent.model_validate(raw)
        return {stored.sha256: stored for stored in content.tokens}, False
    plain = {token: Caller.model_validate(caller) for token, caller in raw.items()}
    hashed = {
        hash_token(token): StoredToken(sha256=hash_token(token), **caller.model_dump())
        for token, caller in plain.items()
    }
    return hashed, True


def _write(home: Path, tokens: dict[str, StoredToken]) -> None:
    path = tokens_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = _TokenFileContent(tokens=list(tokens.values()))
    # Private from its first byte (mkstemp creates 0600), and replaced in one step so a
    # running server never reads half a file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tokens-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(content.model_dump_json(indent=2))
    os.replace(temporary, path)


def load_tokens(home: Path) -> dict[str, StoredToken]:
    """The tokens of `home` by sha256; ValueError says what is wrong with a damaged file."""
    path = tokens_path(home)
    if not path.exists():
        return {}
    try:
        tokens, plain = _parse(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, AttributeError, ValidationError) as error:
        raise ValueError(
            f"{path} is not a token file ({error}); fix it or remove it and create the "
            "tokens again with `whet token create`"
        ) from error
    if plain:
        _write(home, tokens)
        logger.info("token file rewritten with hashed tokens", path=str(path))
    return tokens


def create_token(home: Path, caller: Caller, expires_in: timedelta | None = None) -> str:
    """A new token acting as `caller`, valid for `expires_in` (None: until revoked)."""
    tokens = load_tokens(home)
    token = new_token()
    now = utcnow()
    stored = StoredToken(
        sha256=hash_token(token),
        **caller.model_dump(),
        created_at=now,
        expires_at=now + expires_in if expires_in else None,
    )
    tokens[stored.sha256] = stored
    _write(home, tokens)
    return token


def revoke_token(home: Path, token_id: str) -> StoredToken:
    """Remove the token whose id (or the token itself) is `token_id`; LookupError if none."""
    tokens = load_tokens(home)
    wanted = hash_token(token_id) if looks_like_token(token_id) else token_id
    matches = [s for s in tokens.values() if s.sha256 == wanted or s.token_id == wanted]
    if len(matches) != 1:
        raise LookupError(f"no token {token_id!r}; `whet token list` shows their ids")
    del tokens[matches[0].sha256]
    _write(home, tokens)
    return matches[0]


class TokenFile:
    """The tokens of `home`, read again whenever the file changes."""

    def __init__(self, home: Path) -> None:
        self.path = tokens_path(home)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._tokens: dict[str, StoredToken] = {}
        self._damaged = False

    def check(self) -> None:
        """Raise ValueError, saying what to fix, if the file is damaged."""
        load_tokens(self.path.parent)

    def current(self) -> dict[str, StoredToken]:
        try:
            stat = self.path.stat()
            stamp: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._tokens = load_tokens(self.path.parent) if stamp else {}
                    self._damaged = False
                except ValueError as error:  # refuse every token rather than guess
                    logger.error("tokens not loaded", error=str(error))
                    self._tokens, self._damaged = {}, True
            return self._tokens

    def required(self) -> bool:
        """Whether every request needs a token: once one exists (or the file is damaged)."""
        return bool(self.current()) or self._damaged

    def authenticate(self, token: str) -> Caller:
        """The caller `token` acts as; UnauthenticatedError says why it does not."""
        stored = self.current().get(hash_token(token))
        if stored is None:
            raise UnauthenticatedError(
                "the token is not valid (unknown, revoked, or from another server); "
                "create one with `whet token create`"
            )
        if stored.expired(utcnow()):
            raise UnauthenticatedError(
                f"the token {stored.token_id} expired at {stored.expires_at:%Y-%m-%d %H:%M} "
                "UTC; create a new one with `whet token create`"
            )
        return stored.caller
