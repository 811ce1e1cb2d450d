"""/v1/chat/completions: fine-tuned models answered by their deployments, and base models by
a deployment serving them too (OpenAI)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from whetstone.api.identity import current_caller
from whetstone.api.openai import chat, relay
from whetstone.core.errors import InvalidInputError
from whetstone.runtime import get_platform

router = Router()


# No body model: the request passes to the model's server, which validates it.
@router.post("/chat/completions", summary="Chat with a fine-tuned or base model (OpenAI)")
def chat_completions() -> Response[Any]:
    try:
        body = router.current_event.json_body
    except ValueError as error:
        raise InvalidInputError(f"the body is not JSON: {error}", code="invalid_json") from error
    if not isinstance(body, dict):
        raise InvalidInputError("the body is not a JSON object", code="invalid_json")
    caller = current_caller(router)
    if body.get("stream") and relay.relays_streams(router.current_event.raw_event):
        backend = chat.backend_request(get_platform(), caller, body)
        return Response(
            status_code=HTTPStatus.OK,
            content_type=content_types.APPLICATION_JSON,
            body=backend.model_dump_json(),
            headers={relay.RELAY_HEADER: "1"},
        )
    try:
        completion = chat.complete(get_platform(), caller, body)
    except chat.BackendAnswer as answer:
        return Response(
            status_code=answer.status, content_type=content_types.APPLICATION_JSON, body=answer.body
        )
    if body.get("stream"):
        return Response(
            status_code=HTTPStatus.OK,
            content_type="text/event-stream",
            body=chat.as_stream(completion),
        )
    return Response(
        status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=completion
    )
