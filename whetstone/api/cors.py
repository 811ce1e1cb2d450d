"""CORS on the API's answers in aws, for the web console's origin and no other.

API Gateway answers the preflights (OPTIONS) and its own errors; the Lambda's answers
(REST proxy: `multiValueHeaders`) get the same origin here. `whet serve` serves the console
from its own origin and needs none of this.
"""

from __future__ import annotations

from typing import Any

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
VARY = "Vary"


def request_origin(event: dict[str, Any]) -> str | None:
    """The request's Origin header (header names are case-insensitive)."""
    for headers in (event.get("headers"), event.get("multiValueHeaders")):
        for name, value in (headers or {}).items():
            if name.lower() == "origin":
                return value[0] if isinstance(value, list) else str(value)
    return None


def with_cors(
    response: dict[str, Any], event: dict[str, Any], allowed_origin: str | None
) -> dict[str, Any]:
    """`response`, allowing `allowed_origin` to read it when the request came from there.
    Caches keep answers apart by Origin (Vary) whenever an origin is configured."""
    if not allowed_origin:
        return response
    headers: dict[str, list[str]] = response.setdefault("multiValueHeaders", {})
    headers.setdefault(VARY, []).append("Origin")
    if request_origin(event) == allowed_origin:
        headers[ALLOW_ORIGIN] = [allowed_origin]
    return response
