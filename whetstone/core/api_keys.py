"""An organization's API key as the platform stores it (aws): metadata and the hash, never
the secret (its format: whetstone.core.tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.job import Caller

MAX_NAME_LENGTH = 64


class ApiKey(DeferredModel):
    """One API key: who created it, for which organization, and when it works."""

    model_config = ConfigDict(frozen=True)

    key_id: Annotated[str, Field(description="Public name of the key (its hash's start).")]
    sha256: Annotated[str, Field(description="The secret's SHA-256, hex.")]
    name: Annotated[
        str, Field(min_length=1, max_length=MAX_NAME_LENGTH, description="What it is for.")
    ]
    prefix: Annotated[str, Field(description="The secret's first characters, to recognise it.")]
    org_id: Annotated[str, Field(min_length=1, description="The organization it acts for.")]
    user_id: Annotated[str, Field(min_length=1, description="The user who created it.")]
    created_at: Annotated[datetime, Field(description="When it was created (UTC).")]
    expires_at: Annotated[
        datetime | None, Field(description="When it stops working; None: until revoked.")
    ] = None
    last_used_at: Annotated[
        datetime | None, Field(description="When it last authorized a request, if ever.")
    ] = None

    @property
    def caller(self) -> Caller:
        """Whom a request with this key acts as: its creator, in its organization."""
        return Caller(user_id=self.user_id, org_id=self.org_id)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now
