"""Requests to a `whet serve` server over real HTTP, and the processes it starts."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any


def request(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """The status and the parsed JSON body (None when empty) of one request, errors included."""
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("content-type", content_type)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
