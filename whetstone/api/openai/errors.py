"""OpenAI's error envelope on the /v1 routes: `{"error": {message, type, param, code}}`.

The API's handlers answer every error in Whetstone's shape (`{code, message, details}`);
the /v1 answers are rewritten here, once, so each error keeps the message the rest of the
API gives and the status that makes the `openai` client raise the matching exception.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

OPENAI_PREFIX = "/v1"

# OpenAI answers a request it refuses with 400 (BadRequestError); our routes answer 422.
_STATUS: dict[int, int] = {HTTPStatus.UNPROCESSABLE_ENTITY: HTTPStatus.BAD_REQUEST}
_TYPES: dict[int, str] = {
    HTTPStatus.UNAUTHORIZED: "authentication_error",
    HTTPStatus.FORBIDDEN: "permission_error",
    HTTPStatus.NOT_FOUND: "invalid_request_error",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limit_error",
}


# The envelope's JSON schema, for the OpenAPI document (api/openapi_errors.py).
ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}


def is_openai_path(path: str | None) -> bool:
    return bool(path) and (path == OPENAI_PREFIX or str(path).startswith(OPENAI_PREFIX + "/"))


def error_type(status: int) -> str:
    """OpenAI's `type` for an error answered with `status`."""
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return "server_error"
    return _TYPES.get(status, "invalid_request_error")


def envelope(status: int, message: str, code: str | None, param: str | None = None) -> str:
    """The JSON body of an OpenAI error."""
    error = {"message": message, "type": error_type(status), "param": param, "code": code}
    return json.dumps({"error": error})


def error_response(
    status: HTTPStatus, message: str, code: str, param: str | None = None
) -> Response[str]:
    """An error a /v1 route answers itself, already in OpenAI's shape."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=envelope(status, message, code, param),
    )


def _param(details: Any) -> str | None:
    """The request field a validation error names (its first one), as OpenAI's `param`."""
    if isinstance(details, list) and details and isinstance(details[0], dict):
        loc = str(details[0].get("loc") or "")
        return loc.removeprefix("body.").removeprefix("query.") or None
    return None


def to_openai_error(response: dict[str, Any]) -> dict[str, Any]:
    """A handler's answer with its error body rewritten into OpenAI's envelope; answers
    that are not errors, or already in that shape, pass unchanged."""
    status = int(response.get("statusCode") or HTTPStatus.OK)
    if status < HTTPStatus.BAD_REQUEST or response.get("isBase64Encoded"):
        return response
    try:
        body = json.loads(response.get("body") or "{}")
    except ValueError:
        body = {"message": response.get("body")}
    if not isinstance(body, dict) or "error" in body:
        return response
    status = _STATUS.get(status, status)
    message = str(body.get("message") or f"the request failed with status {status}")
    code = body.get("code")
    rewritten = envelope(status, message, str(code) if code else None, _param(body.get("details")))
    return {**response, "statusCode": status, "body": rewritten}
