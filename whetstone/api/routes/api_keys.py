"""API key routes (aws): a signed-in user creates, lists and revokes the keys of their
organization. A request made with an API key cannot manage keys, so a leaked key cannot
mint others or outlive its revocation."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from whetstone.api.identity import signed_in_user
from whetstone.api.schemas import api_keys as wire
from whetstone.runtime import get_platform
from whetstone.service import api_keys

router = Router()

KeyId = Annotated[str, Path(description="The key's id (GET /api-keys).", max_length=64)]


@router.post("/api-keys", summary="Create an API key for your organization (shown once)")
def create_api_key(request: wire.CreateApiKeyRequest) -> Response[wire.CreatedApiKeyResponse]:
    expires_in = timedelta(days=request.expires_in_days) if request.expires_in_days else None
    key, secret = api_keys.create_api_key(
        api_keys.key_store(get_platform()), signed_in_user(router), request.name, expires_in
    )
    body = wire.CreatedApiKeyResponse.model_validate(
        {**wire.ApiKeyResponse.from_record(key).model_dump(), "secret": secret}
    )
    return Response(
        status_code=HTTPStatus.CREATED, content_type=content_types.APPLICATION_JSON, body=body
    )


@router.get("/api-keys", summary="List your organization's API keys (never their secrets)")
def list_api_keys() -> wire.ApiKeyListResponse:
    keys = api_keys.list_api_keys(api_keys.key_store(get_platform()), signed_in_user(router))
    return wire.ApiKeyListResponse(api_keys=[wire.ApiKeyResponse.from_record(key) for key in keys])


@router.delete("/api-keys/<key_id>", summary="Revoke an API key")
def revoke_api_key(key_id: KeyId) -> Response[str]:
    api_keys.revoke_api_key(api_keys.key_store(get_platform()), signed_in_user(router), key_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")
