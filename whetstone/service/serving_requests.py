"""A request of the platform's own to a model server: a JSON POST and its JSON answer."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def post_json(
    url: str, body: dict[str, Any], headers: dict[str, str], *, timeout_s: float
) -> dict[str, Any]:
    """POST `body` as JSON to `url` with `headers`; the JSON object answered. urllib's errors
    pass on: HTTPError for a refusal (its status and body), OSError for no answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer
