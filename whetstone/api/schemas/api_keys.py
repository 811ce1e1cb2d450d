"""API keys as the API shows them: metadata, and the secret only in the answer that
creates one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from whetstone.api.schemas.base import WireModel, field_of
from whetstone.core.api_keys import MAX_NAME_LENGTH, ApiKey
from whetstone.core.deferred import DeferredModel

MAX_EXPIRY_DAYS = 3650


class CreateApiKeyRequest(DeferredModel):
    """What to call the new key and how long it works."""

    name: Annotated[
        str, Field(min_length=1, max_length=MAX_NAME_LENGTH, description="What the key is for.")
    ]
    expires_in_days: Annotated[
        int | None,
        Field(ge=1, le=MAX_EXPIRY_DAYS, description="Days until it stops working; null: never."),
    ] = None


class ApiKeyResponse(WireModel):
    """One key of the organization, without its secret or hash."""

    key_id: str = field_of(ApiKey, "key_id")
    name: str = field_of(ApiKey, "name")
    prefix: str = field_of(ApiKey, "prefix")
    user_id: str = field_of(ApiKey, "user_id")
    created_at: datetime = field_of(ApiKey, "created_at")
    expires_at: datetime | None = field_of(ApiKey, "expires_at")
    last_used_at: datetime | None = field_of(ApiKey, "last_used_at")


class CreatedApiKeyResponse(ApiKeyResponse):
    """A new key with its secret: the only answer that ever holds it."""

    secret: Annotated[
        str,
        Field(description="The key: send it as `Authorization: Bearer <secret>`; not shown again."),
    ]


class ApiKeyListResponse(WireModel):
    """The organization's keys, newest first."""

    api_keys: Annotated[list[ApiKeyResponse], Field(description="The keys.")]
