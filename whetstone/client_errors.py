"""The SDK's errors: what the server refused, what could not be reached, what timed out."""

from __future__ import annotations

import json
from typing import Any


class WhetstoneError(Exception):
    """Base of the SDK's errors."""


class WhetstoneAPIError(WhetstoneError):
    """The server refused or failed a request; `code` is the server's stable error code."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class WhetstoneConnectionError(WhetstoneError):
    """The server could not be reached."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the Whetstone API at {url} ({reason}); start it with `whet serve` "
            "or point WHETSTONE_URL / --url at a running server"
        )
        self.url = url
        self.reason = reason


class WhetstoneTimeoutError(WhetstoneError, TimeoutError):
    """A job did not end within the time `Job.wait` was given."""


class WhetstoneConfigError(WhetstoneError):
    """A local input (config file, dataset path) is missing or malformed."""


def api_error(status: int, raw: bytes) -> WhetstoneAPIError:
    """The error an HTTP error response stands for, whichever shape its body has."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body and "message" in body:
        return WhetstoneAPIError(
            status, str(body["code"]), str(body["message"]), body.get("details")
        )
    if isinstance(body, dict) and "message" in body:  # powertools' own errors (unknown route)
        return WhetstoneAPIError(status, f"http_{status}", str(body["message"]))
    text = raw.decode("utf-8", "replace").strip()[:500]
    return WhetstoneAPIError(status, f"http_{status}", text or f"HTTP {status}")
