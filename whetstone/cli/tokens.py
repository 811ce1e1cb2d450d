"""API tokens of the local runtime: `$WHETSTONE_HOME/tokens.json`, token -> user and org.

Requests from this machine without a token act as the default local user;
`whet serve` listening beyond localhost requires a token on every request.
"""

from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path

from whetstone.core.job import Caller

DEFAULT_CALLER = Caller(user_id="local-user", org_id="local")
TOKEN_PREFIX = "whet_"


def tokens_path(home: Path) -> Path:
    return home / "tokens.json"


def load_tokens(home: Path) -> dict[str, Caller]:
    path = tokens_path(home)
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {token: Caller.model_validate(caller) for token, caller in raw.items()}


def create_token(home: Path, caller: Caller) -> str:
    tokens = load_tokens(home)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tokens[token] = caller
    path = tokens_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({t: c.model_dump() for t, c in tokens.items()}, indent=2))
    path.chmod(0o600)
    return token


def caller_for_token(tokens: dict[str, Caller], token: str) -> Caller | None:
    """Constant-time lookup, so response timing does not reveal token prefixes."""
    found = None
    for known, caller in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = caller
    return found
