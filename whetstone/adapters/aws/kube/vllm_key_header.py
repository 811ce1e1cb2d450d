"""An ASGI middleware for vLLM: a request carrying `X-Whetstone-Model-Key` is checked as if
it had sent `Authorization: Bearer <that key>`.

The platform reaches vLLM through the Kubernetes API server's service proxy, which removes
`Authorization` (it held the platform's credential for the API server), and vLLM's
`--api-key` check reads only that header. This module runs inside the vLLM image (mounted
from a ConfigMap, `--middleware vllm_key_header.KeyHeader`), so it uses the standard
library only. vLLM adds `--middleware` classes after its key check, so this runs first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

KEY_HEADER = b"x-whetstone-model-key"
_AUTHORIZATION = b"authorization"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class KeyHeader:
    """Pass `X-Whetstone-Model-Key` on as the bearer credential vLLM checks."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") in ("http", "websocket"):
            headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
            keys = [value for name, value in headers if name.lower() == KEY_HEADER]
            if keys:
                kept = [
                    (name, value)
                    for name, value in headers
                    if name.lower() not in (KEY_HEADER, _AUTHORIZATION)
                ]
                scope = {**scope, "headers": [*kept, (_AUTHORIZATION, b"Bearer " + keys[0])]}
        await self.app(scope, receive, send)
