"""Who may call a local model server: the platform, with the deployment's key, and the
users of the job's organization, with their `whet token`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whetstone.cli.tokens import TokenFile
from whetstone.core.errors import UnauthenticatedError
from whetstone.core.server_keys import bearer_credential, key_matches
from whetstone.core.tokens import hash_token

# Answers without a key: a liveness probe learns nothing from it.
OPEN_PATHS = frozenset({"/health"})


@dataclass(frozen=True)
class ServerKeys:
    """The deployment key's sha256 (the key itself is not kept), and the token file whose
    tokens of `org_id` are accepted too (None: the key only)."""

    key_sha256: str
    tokens: TokenFile | None = None
    org_id: str | None = None

    @classmethod
    def from_key_file(
        cls, path: Path, tokens_home: Path | None = None, org_id: str | None = None
    ) -> ServerKeys:
        """The keys of a server whose deployment key lies in `path`."""
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise ValueError(f"{path} holds no key")
        tokens = TokenFile(tokens_home) if tokens_home is not None and org_id else None
        return cls(hash_token(key), tokens, org_id)

    def allows(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value names the key or a token of the org."""
        credential = bearer_credential(authorization)
        if credential is None:
            return False
        if key_matches(credential, self.key_sha256):
            return True
        if self.tokens is None:
            return False
        try:
            return self.tokens.authenticate(credential).org_id == self.org_id
        except UnauthenticatedError:
            return False
