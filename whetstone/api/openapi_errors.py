"""The error responses of every operation in the OpenAPI document, with the one error body
the API returns (`code`, `message`, `details`; api/errors.py), not the framework's
`{"detail": [...]}`, which no route returns.

Which errors an operation can give follows from its shape, the same way api/errors.py maps
them: every route authenticates (401), counts against the organization's request rate (429,
aws) and reads the job store (503 when it is unavailable);
a route with a body can be malformed (400), too large (413) or invalid (422); a route with
parameters answers 400 when one does not read as its type and 422 when the service refuses
its value; a route with path parameters names something that may not exist (404), and a
POST, PUT or DELETE on it may meet a state that forbids it (409). A route declares any
other error (a quota's 429) in its decorator's `responses`; this fills in the body schema.
The OpenAI-compatible routes under /v1 answer OpenAI's envelope instead, with 400 where
ours say 422 (api/openai/errors.py).
"""

from __future__ import annotations

from typing import Any

from whetstone.api.errors import ErrorBody
from whetstone.api.openai.errors import ENVELOPE_SCHEMA, is_openai_path

ERROR_SCHEMA = "ErrorBody"
OPENAI_ERROR_SCHEMA = "OpenAIErrorEnvelope"
_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")
DESCRIPTIONS = {
    "400": "The request could not be parsed (malformed HTTP, JSON or multipart body, or a "
    "parameter that does not read as its type, such as a time without a time zone).",
    "401": "No valid credentials: a bearer token (local) or a signed-in user's token (aws).",
    "404": "What the path names does not exist or is not your organization's.",
    "409": "The request conflicts with the current state (e.g. the job already ended).",
    "413": "The request body is over the size limit.",
    "422": "The request is well-formed but invalid; `details` lists field errors.",
    "429": "A quota or rate limit is reached; `message` says which.",
    "503": "A dependency is unavailable; retry after the Retry-After header.",
}
_CHANGES = ("post", "put", "delete")


def expected_errors(method: str, path: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses an operation can answer, from its shape."""
    invalid = "400" if is_openai_path(path) else "422"
    errors = {"401", "429", "503"}  # 429: the organization's request rate (aws)
    if "requestBody" in operation:
        errors |= {"400", "413", invalid}
    if operation.get("parameters"):
        # 400: a parameter that does not read as its type (api/errors.py); 422: values the
        # service refuses (an unknown metric, a cursor it did not return)
        errors |= {"400", invalid}
    if "{" in path:
        errors.add("404")
        if method in _CHANGES:
            errors.add("409")
    return errors


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every operation's error responses, all with the ErrorBody schema."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FRAMEWORK_SCHEMAS:
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA] = ErrorBody.model_json_schema()
    schemas[OPENAI_ERROR_SCHEMA] = ENVELOPE_SCHEMA
    for path, operations in document.get("paths", {}).items():
        schema = OPENAI_ERROR_SCHEMA if is_openai_path(path) else ERROR_SCHEMA
        body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # the framework's, added to every route
            if "204" in responses:  # no body, whatever the handler's annotation says
                responses["204"] = {"description": "Done; no content."}
            declared = {status for status in responses if status[0] in "45"}
            for status in sorted(expected_errors(method, path, operation) | declared):
                description = responses.get(status, {}).get("description") or DESCRIPTIONS.get(
                    status, "An error; see `code`."
                )
                responses[status] = {"description": description, "content": body}
    return document
