"""Calling the API through the Lambda handler with API Gateway REST proxy events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from whetstone.api.app import handler
from whetstone.api.identity import claims_for
from whetstone.cli.server import build_proxy_event
from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.client import encode_multipart
from whetstone.core.job import Caller


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any


def call_api(
    method: str,
    path: str,
    *,
    json_body: Any = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    caller: Caller | None = DEFAULT_CALLER,
    authorizer: dict[str, Any] | None = None,
) -> ApiResponse:
    """Send one request through `handler` as API Gateway would, with the Cognito claims of
    `caller` (none when None), or with `authorizer`, the context a Lambda authorizer
    returned; JSON responses are parsed."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("content-type", "application/json")
    claims = claims_for(caller) if caller else None
    event = build_proxy_event(method, path, headers, body, "127.0.0.1", claims)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    result = handler(event, None)
    response_headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        response_headers[name.lower()] = values[-1]
    raw = result.get("body") or ""
    parsed = json.loads(raw) if "json" in response_headers.get("content-type", "") else raw
    return ApiResponse(status=result["statusCode"], headers=response_headers, body=parsed)


# The body the SDK sends, so the API's tests and the SDK's share one encoder.
multipart = encode_multipart
