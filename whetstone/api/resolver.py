"""The API's resolver, safe to share between the threads of `whet serve`.

Powertools keeps the request being resolved on the resolver (and on its class), as a
Lambda container serving one request at a time may. Here each thread sees its own
request and context, so requests run concurrently through one resolver.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder, Route
from aws_lambda_powertools.utilities.typing import LambdaContext


def _per_thread(name: str) -> Any:
    """An attribute each thread sets and reads on its own."""
    return property(
        lambda self: getattr(self._local, name),
        lambda self, value: setattr(self._local, name, value),
    )


class ThreadSafeResolver(APIGatewayRestResolver):
    """An APIGatewayRestResolver whose per-request state is per thread."""

    def __init__(self, **options: Any) -> None:
        self._local = threading.local()
        self._build_lock = threading.Lock()
        super().__init__(**options)

    current_event = _per_thread("event")
    lambda_context = _per_thread("lambda_context")

    @property
    def context(self) -> dict[str, Any]:
        # Cleared after every request, as powertools does, so it needs no shared start.
        if not hasattr(self._local, "context"):
            self._local.context = {}
        context: dict[str, Any] = self._local.context
        return context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._local.context = value

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.current_event = self._to_proxy_event(dict(event))
        self.lambda_context = context
        return super().resolve(event, context)

    def _call_route(self, route: Route, route_arguments: dict[str, str]) -> ResponseBuilder[Any]:
        # A route builds its middleware stack on its first call; two threads building it
        # at once would wrap the route twice.
        if not route._middleware_stack_built:
            with self._build_lock:
                if not route._middleware_stack_built:
                    route._build_middleware_stack(self._router_middlewares, app=self)
        return super()._call_route(route, route_arguments)
