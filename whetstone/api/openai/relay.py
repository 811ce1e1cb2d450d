"""Streamed chat completions relayed as the model's server sends them, where the server in
front of the handler can stream (`whet serve`, WSGI: a response may be an iterable).

The Lambda handler answers one body, so a streamed request cannot pass through it as it
comes. `whet serve` marks the events it builds (RELAY_CONTEXT in their requestContext, which
a client cannot set); for those the chat route checks the request as always (the model, its
deployment, started on first use) and answers the request to the model's server
(chat.BackendRequest), marked by RELAY_HEADER, instead of the completion. `whet serve` then
sends it, streamed, and passes each event of the answer on, renamed. Elsewhere (aws:
API Gateway REST buffers responses) the completion is computed, then sent as chunks
(chat.as_stream).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import IO, Any

from whetstone.api.openai.chat import BackendRequest
from whetstone.api.openai.errors import envelope

RELAY_CONTEXT = "whetstoneRelaysStreams"
RELAY_HEADER = "x-whetstone-relay"
BACKEND_TIMEOUT_S = 300.0
_DATA = b"data: {"


def relays_streams(event: dict[str, Any]) -> bool:
    """Whether the server that built `event` relays a RelayPlan answer as a stream."""
    return bool((event.get("requestContext") or {}).get(RELAY_CONTEXT))


def plan_of(response: dict[str, Any]) -> bytes | None:
    """The BackendRequest a handler's answer holds for the server to relay, when it is one."""
    headers = {**(response.get("headers") or {}), **(response.get("multiValueHeaders") or {})}
    if not any(name.lower() == RELAY_HEADER for name in headers):
        return None
    return str(response.get("body") or "").encode()


def _renamed(stream: IO[bytes], model: str) -> Iterator[bytes]:
    """The backend's server-sent events, each chunk answering with `model`'s name."""
    with stream:
        for line in stream:
            if line.startswith(_DATA):
                chunk = json.loads(line[len(_DATA) - 1 :])
                line = f"data: {json.dumps({**chunk, 'model': model})}\n".encode()
            yield line


def relay(plan_json: bytes, start_response: Callable[..., Any]) -> Iterator[bytes]:
    """The WSGI answer to a BackendRequest: the backend's stream as it comes, or its
    refusal."""
    plan = BackendRequest.model_validate_json(plan_json)
    request = urllib.request.Request(
        plan.url,
        data=json.dumps({**plan.body, "stream": True}).encode(),
        headers={**plan.headers, "accept": "text/event-stream"},
    )
    try:
        stream = urllib.request.urlopen(request, timeout=BACKEND_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        with error:
            payload = error.read()
        start_response(f"{error.code} {error.reason}", [("content-type", "application/json")])
        return iter([payload])
    except OSError as error:
        status = HTTPStatus.SERVICE_UNAVAILABLE
        message = f"the model's server did not answer: {error}; try again shortly"
        start_response(f"{status} {status.phrase}", [("content-type", "application/json")])
        return iter([envelope(status, message, "unavailable").encode()])
    start_response("200 OK", [("content-type", "text/event-stream"), ("cache-control", "no-cache")])
    return _renamed(stream, plan.model)
