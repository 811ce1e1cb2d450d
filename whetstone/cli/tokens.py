"""API tokens of the local runtime: `$WHETSTONE_HOME/tokens.json`, token -> user and org.

Requests from this machine without a token act as the default local user;
`whet serve` listening beyond localhost requires a token on every request. The server
reads the file again whenever it changes, so a token created while it runs works at once.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path

from pydantic import ValidationError

from whetstone.core.job import Caller
from whetstone.observability import logger

DEFAULT_CALLER = Caller(user_id="local-user", org_id="local")
TOKEN_PREFIX = "whet_"


def tokens_path(home: Path) -> Path:
    return home / "tokens.json"


def load_tokens(home: Path) -> dict[str, Caller]:
    """The tokens of `home`; ValueError says what is wrong with a damaged file."""
    path = tokens_path(home)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {token: Caller.model_validate(caller) for token, caller in raw.items()}
    except (ValueError, AttributeError, ValidationError) as error:
        raise ValueError(
            f"{path} is not a token file ({error}); fix it or remove it and create the "
            "tokens again with `whet token create`"
        ) from error


def create_token(home: Path, caller: Caller) -> str:
    tokens = load_tokens(home)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tokens[token] = caller
    path = tokens_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Private from its first byte (mkstemp creates 0600), and replaced in one step so a
    # running server never reads half a file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tokens-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({t: c.model_dump() for t, c in tokens.items()}, out, indent=2)
    os.replace(temporary, path)
    return token


def caller_for_token(tokens: dict[str, Caller], token: str) -> Caller | None:
    """Constant-time lookup, so response timing does not reveal token prefixes."""
    found = None
    for known, caller in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = caller
    return found


class TokenFile:
    """The tokens of `home`, read again whenever the file changes: a token created, or
    removed, while `whet serve` runs takes effect on the next request."""

    def __init__(self, home: Path) -> None:
        self.path = tokens_path(home)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._tokens: dict[str, Caller] = {}

    def check(self) -> None:
        """Raise ValueError, saying what to fix, if the file is damaged."""
        load_tokens(self.path.parent)

    def current(self) -> dict[str, Caller]:
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
                except ValueError as error:  # refuse every token rather than guess
                    logger.error("tokens not loaded", error=str(error))
                    self._tokens = {}
            return self._tokens

    def caller(self, token: str) -> Caller | None:
        return caller_for_token(self.current(), token)
