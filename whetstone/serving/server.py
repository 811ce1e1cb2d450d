"""A threaded stdlib HTTP server with the OpenAI endpoints: /v1/models,
/v1/chat/completions (streamed as server-sent events with `stream: true`, each piece of text
as it is generated) and /v1/completions (not streamed), and /metrics: the requests answered
(`whetstone_requests_total`), which the reconciler reads to find idle servers.
An adapter model given a base name answers that name too, as its base (the adapter off).
Every route but /health needs `Authorization: Bearer <key>` (whetstone.serving.auth)."""

from __future__ import annotations

import json
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import ValidationError

from whetstone.inference.generation import ChatModel, Generation
from whetstone.serving.api import ChatCompletionRequest, CompletionRequest, Usage, _Request
from whetstone.serving.auth import OPEN_PATHS, ServerKeys

MAX_BODY_BYTES = 4 * 1024 * 1024
_R = TypeVar("_R", bound=_Request)


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        model: ChatModel,
        name: str,
        *,
        keys: ServerKeys,
        base_name: str | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.model = model
        self.name = name
        self.keys = keys
        self.base_name = base_name if base_name != name else None
        self.created = int(time.time())
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "whetstone_requests", "Completions answered.", registry=self.registry
        )


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str, kind: str, code: str | None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def _usage(generation: Generation) -> dict[str, int]:
    return Usage(
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        total_tokens=generation.prompt_tokens + generation.completion_tokens,
    ).model_dump()


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        return  # request lines would drown the deployment log

    def __getattr__(self, name: str) -> Any:
        # The stdlib answers a method without a `do_<METHOD>` 501; any method but GET and
        # POST is one this server knows and does not allow on its routes.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        message = f"method {self.command} is not allowed; use GET or POST"
        refused = _Refused(
            HTTPStatus.METHOD_NOT_ALLOWED, message, "invalid_request_error", "method_not_allowed"
        )
        self.close_connection = True  # its body, if any, is not read
        self._refuse(refused, headers={"allow": "GET, POST"})

    def _send(
        self, status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _refuse(self, refused: _Refused, headers: dict[str, str] | None = None) -> None:
        error = {"message": refused.message, "type": refused.kind, "param": None}
        self._send(refused.status, {"error": {**error, "code": refused.code}}, headers)

    def _authorized(self, path: str) -> bool:
        """Whether the request may go on; a 401 is sent when it may not."""
        if path in OPEN_PATHS or self.server.keys.allows(self.headers.get("authorization")):
            return True
        message = "a valid key is required: Authorization: Bearer <key>"
        refused = _Refused(
            HTTPStatus.UNAUTHORIZED, message, "invalid_request_error", "invalid_api_key"
        )
        self.close_connection = True  # its body, if any, is not read
        self._refuse(refused, headers={"www-authenticate": "Bearer"})
        return False

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if not self._authorized(path):
            return
        names = self._served_names()
        if path == "/v1/models":
            data = [self._model_card(name) for name in names]
            self._send(HTTPStatus.OK, {"object": "list", "data": data})
        elif path.startswith("/v1/models/") and path.removeprefix("/v1/models/") in names:
            self._send(HTTPStatus.OK, self._model_card(path.removeprefix("/v1/models/")))
        elif path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif path == "/metrics":
            payload = generate_latest(self.server.registry)
            self.send_response(HTTPStatus.OK)
            self.send_header("content-type", CONTENT_TYPE_LATEST)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        else:
            self._refuse(_Refused(HTTPStatus.NOT_FOUND, "no such route", "not_found", None))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if not self._authorized(path):
            return
        try:
            body = self._json_body()
            if path == "/v1/chat/completions" and isinstance(body, dict) and body.get("stream"):
                self._stream_chat(body)
            elif path == "/v1/chat/completions":
                self._send(HTTPStatus.OK, self._chat(body))
            elif path == "/v1/completions":
                self._send(HTTPStatus.OK, self._complete(body))
            else:
                raise _Refused(HTTPStatus.NOT_FOUND, "no such route", "not_found", None)
            self.server.requests.inc()
        except _Refused as refused:
            self._refuse(refused)

    def _served_names(self) -> list[str]:
        base = self.server.base_name
        return [self.server.name, base] if base else [self.server.name]

    def _model_card(self, name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": self.server.created,
            "owned_by": "whetstone",
        }

    def _json_body(self) -> Any:
        declared = (self.headers.get("content-length") or "0").strip()
        if not declared.isdigit():  # a negative or malformed length would read to the end
            self.close_connection = True
            raise _Refused(
                HTTPStatus.BAD_REQUEST,
                f"invalid Content-Length {declared!r}",
                "invalid_request_error",
                None,
            )
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise _Refused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "request too large",
                "invalid_request_error",
                None,
            )
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError as error:
            raise _Refused(
                HTTPStatus.BAD_REQUEST, f"body is not JSON: {error}", "invalid_request_error", None
            ) from error

    def _parse(self, kind: type[_R], body: Any) -> _R:
        try:
            request = kind.model_validate(body)
        except ValidationError as error:
            message = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            raise _Refused(
                HTTPStatus.BAD_REQUEST, message, "invalid_request_error", "invalid_value"
            ) from error
        if request.model not in self._served_names():
            served = " and ".join(repr(name) for name in self._served_names())
            raise _Refused(
                HTTPStatus.NOT_FOUND,
                f"the model {request.model!r} does not exist; this server serves {served}",
                "invalid_request_error",
                "model_not_found",
            )
        return request

    def _options(self, request: _Request) -> dict[str, Any]:
        return {
            "base": request.model == self.server.base_name,
            "max_tokens": request.token_limit,
            "temperature": request.temperature or 0.0,
            "top_p": request.top_p if request.top_p is not None else 1.0,
            "seed": request.seed,
            "stop": request.stops,
        }

    def _generate(self, request: _Request, prompt: str) -> Generation:
        return self.server.model.generate(prompt, **self._options(request))

    def _stream_chat(self, body: Any) -> None:
        """The chat completion as OpenAI's chunks, each sent as the model generates it."""
        request = self._parse(ChatCompletionRequest, body)
        prompt = self.server.model.chat_prompt([m.as_template_input() for m in request.messages])
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model,
        }
        self.send_response(HTTPStatus.OK)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        self.close_connection = True  # the stream's end is the connection's

        def send(choice: dict[str, Any] | None, **more: Any) -> None:
            chunk = {**base, "choices": [{"index": 0, **choice}] if choice else [], **more}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        send({"delta": {"role": "assistant", "content": ""}, "finish_reason": None})
        for piece in self.server.model.stream(prompt, **self._options(request)):
            if isinstance(piece, Generation):
                send({"delta": {}, "finish_reason": piece.finish_reason})
                if request.stream_options and request.stream_options.include_usage:
                    send(None, usage=_usage(piece))
            else:
                send({"delta": {"content": piece}, "finish_reason": None})
        self.wfile.write(b"data: [DONE]\n\n")

    def _chat(self, body: Any) -> dict[str, Any]:
        request = self._parse(ChatCompletionRequest, body)
        prompt = self.server.model.chat_prompt([m.as_template_input() for m in request.messages])
        generation = self._generate(request, prompt)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": generation.text},
                    "finish_reason": generation.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(generation),
        }

    def _complete(self, body: Any) -> dict[str, Any]:
        request = self._parse(CompletionRequest, body)
        generation = self._generate(request, request.text)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "text": generation.text,
                    "finish_reason": generation.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(generation),
        }
