"""`whet serve`: a local HTTP server in front of the same router the Lambda uses.

Each HTTP request becomes an API Gateway REST proxy event, so the resolver, its
validation and its error mapping run exactly as they do in AWS. Bodies that are
not text (multipart uploads, binary files) travel base64-encoded, as API
Gateway sends them when `multipart/form-data` is a binary media type.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from whetstone.api.app import handler
from whetstone.api.identity import claims_for
from whetstone.cli.tokens import DEFAULT_CALLER, TokenFile
from whetstone.observability import logger

_RESOLVER_LOCK = threading.Lock()
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")
DEFAULT_MAX_BODY_BYTES = 512 * 1024 * 1024


def build_proxy_event(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    claims: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The API Gateway REST proxy event API Gateway would send for this request, with the
    claims its Cognito authorizer would add."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    content_type = headers.get("content-type", "")
    is_text = not body or content_type.startswith(TEXT_TYPES)
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": url.path,
            "path": url.path,
            "httpMethod": method,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip},
            "authorizer": {"claims": claims} if claims else None,
        },
        "body": (body.decode("utf-8") if is_text else base64.b64encode(body).decode("ascii"))
        if body
        else None,
        "isBase64Encoded": not is_text,
    }


def _is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


class _RequestHandler(BaseHTTPRequestHandler):
    server_version = "whetstone"
    max_body_bytes = DEFAULT_MAX_BODY_BYTES
    tokens: TokenFile | None = None

    def _claims(self, headers: dict[str, str]) -> dict[str, str] | None:
        """A valid bearer token's user; without a token, the local user for this machine."""
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            caller = self.tokens.caller(token) if self.tokens else None
            return claims_for(caller) if caller else None
        if _is_loopback(self.client_address[0]):
            return claims_for(DEFAULT_CALLER)
        return None

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > self.max_body_bytes:
            self._send_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body of {length} bytes exceeds the limit of {self.max_body_bytes}",
            )
            return
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        event = build_proxy_event(
            self.command,
            self.path,
            headers,
            body,
            self.client_address[0],
            self._claims(headers),
        )
        # The resolver keeps the current request on itself (as a Lambda container, which
        # serves one request at a time, may): requests take turns through it.
        with _RESOLVER_LOCK:
            response = handler(event, None)
        self._send(response)

    def _send(self, response: dict[str, Any]) -> None:
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
        self.send_response(response["statusCode"])
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(name, value)
        for name, value in (response.get("headers") or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        body = f'{{"code": "request_too_large", "message": "{message}", "details": null}}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("http request", line=format % args)


def make_server(host: str, port: int, tokens: TokenFile | None = None) -> ThreadingHTTPServer:
    """A server for `host:port`. Beyond localhost every request needs one of `tokens`.
    ValueError says why it cannot start (a damaged token file, no token beyond localhost)."""
    if tokens:
        tokens.check()
    if not (tokens and tokens.current()) and not _is_loopback(socket.gethostbyname(host)):
        raise ValueError(
            f"listening on {host} exposes the API beyond this machine; create an API token "
            "first (whet token create --user NAME --org ORG)"
        )
    handler_class = type("RequestHandler", (_RequestHandler,), {"tokens": tokens})
    server = ThreadingHTTPServer((host, port), handler_class)
    server.daemon_threads = True
    return server
