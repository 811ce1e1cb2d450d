"""`whet serve`: a local HTTP server in front of the same router the Lambda uses.

Each HTTP request becomes an API Gateway REST proxy event, so the resolver, its
validation and its error mapping run exactly as they do in AWS. Bodies that are
not text (multipart uploads, binary files) travel base64-encoded, as API
Gateway sends them when `multipart/form-data` is a binary media type.

Before the handler sees a request, this server does what API Gateway and its
authorizer do in AWS: it refuses unknown methods, names of this machine it does not
serve (DNS rebinding), state-changing requests from a foreign web page (Origin), and
callers without a valid token. docs/security.md says why each check is there.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from whetstone.api.app import DOCS_PATH, OPENAPI_PATH, handler
from whetstone.api.identity import claims_for
from whetstone.api.openai import relay
from whetstone.api.openai.errors import envelope, is_openai_path
from whetstone.cli.console_files import console_file, is_console_path
from whetstone.cli.tokens import DEFAULT_CALLER, TokenFile
from whetstone.cli.wsgi_server import WSGIServer
from whetstone.core.errors import UnauthenticatedError
from whetstone.core.job import Caller

TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")
DEFAULT_MAX_BODY_BYTES = 512 * 1024 * 1024
MAX_HEADER_BYTES = 32 * 1024
DEFAULT_THREADS = 8
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Readable without a token, so a browser can load the interactive docs: they hold no data.
PUBLIC_PATHS = frozenset({OPENAPI_PATH, DOCS_PATH})


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
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _host_name(host: str) -> str:
    """The name in a Host header: `[::1]:8000` -> `::1`, `Example.com.:80` -> `example.com`."""
    value = host.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def served_names(host: str, extra: Sequence[str] = ()) -> frozenset[str]:
    """The names a request may call this server by, beside any IP address: a page that
    rebinds its own name to this machine still sends that name, and is refused."""
    names = {"localhost", _host_name(host), *(_host_name(name) for name in extra)}
    if not _is_loopback(socket.gethostbyname(host)):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


class _Refusal(Exception):
    def __init__(
        self, status: HTTPStatus, code: str, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class ApiApplication:
    """The WSGI application of `whet serve`: checks, then the Lambda handler."""

    def __init__(
        self,
        names: frozenset[str],
        tokens: TokenFile | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.names = names
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            path = urlsplit(environ.get("PATH_INFO") or "/").path
            if environ["REQUEST_METHOD"] == "GET" and is_console_path(path):
                # The console's files hold no data: no token, but the Host check still holds.
                self._check_host(environ)
                required = self.tokens is not None and self.tokens.required()
                answer = console_file(path, required)
                start_response(_status_line(answer.status), answer.headers())
                return [answer.body]
            event = self._event(environ)
        except _Refusal as refusal:
            body = {"code": refusal.code, "message": refusal.message, "details": None}
            payload = json.dumps(body).encode()
            if is_openai_path(environ.get("PATH_INFO")):
                payload = envelope(refusal.status, refusal.message, refusal.code).encode()
            headers = [("content-type", "application/json"), *refusal.headers]
            start_response(_status_line(refusal.status), headers)
            return [payload]
        response = handler(event, None)
        plan = relay.plan_of(response)
        if plan is not None:  # a streamed chat completion: relayed as it comes
            return relay.relay(plan, start_response)
        return self._respond(response, start_response)

    def _event(self, environ: dict[str, Any]) -> dict[str, Any]:
        method = environ["REQUEST_METHOD"]
        if method not in ALLOWED_METHODS:
            raise _Refusal(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{method} is not served; use one of {', '.join(ALLOWED_METHODS)}",
                [("allow", ", ".join(ALLOWED_METHODS))],
            )
        host = self._check_host(environ)
        origin = environ.get("HTTP_ORIGIN")
        if method in STATE_CHANGING and origin and urlsplit(origin).netloc.lower() != host.lower():
            raise _Refusal(
                HTTPStatus.FORBIDDEN,
                "forbidden_origin",
                f"a page from {origin} may not change anything on this server",
            )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self.max_body_bytes:  # waitress refuses it first; kept for other servers
            raise _Refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "request_too_large",
                f"request body of {length} bytes exceeds the limit of {self.max_body_bytes}",
            )
        target = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        caller = self._caller(environ, urlsplit(target).path, method)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = _headers(environ)
        if body and headers.get("content-type", "").startswith(TEXT_TYPES):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _Refusal(
                    HTTPStatus.BAD_REQUEST,
                    "invalid_encoding",
                    f"the request body is not UTF-8 ({error.reason} at byte {error.start}); "
                    "send text bodies as UTF-8",
                ) from error
        claims = claims_for(caller) if caller else None
        event = build_proxy_event(method, target, headers, body, environ["REMOTE_ADDR"], claims)
        event["requestContext"][relay.RELAY_CONTEXT] = True
        return event

    def _check_host(self, environ: dict[str, Any]) -> str:
        """The request's Host, refused when it names this machine by a name it does not serve."""
        host = str(environ.get("HTTP_HOST", ""))
        if host and not (_is_ip(_host_name(host)) or _host_name(host) in self.names):
            raise _Refusal(
                HTTPStatus.MISDIRECTED_REQUEST,
                "misdirected_request",
                f"this server does not answer to the name {_host_name(host)!r}; call it by "
                "its address, or allow the name with `whet serve --allowed-host NAME`",
            )
        return host

    def _caller(self, environ: dict[str, Any], path: str, method: str) -> Caller | None:
        """The token's user; without one, the local user of this machine while no token
        exists. None for the public documents, read without a valid token."""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        try:
            if authorization.lower().startswith("bearer "):
                if self.tokens is None:
                    raise UnauthenticatedError("this server takes no tokens; send none")
                return self.tokens.authenticate(authorization[7:].strip())
            if self.tokens is not None and self.tokens.required():
                raise UnauthenticatedError(
                    "this server requires a token on every request (tokens exist); send "
                    "one with --token or WHETSTONE_TOKEN (`whet token create` makes one)"
                )
            if not _is_loopback(environ["REMOTE_ADDR"]):
                raise UnauthenticatedError(
                    "requests from other machines need a token; send one with --token"
                )
        except UnauthenticatedError as error:
            if method == "GET" and path in PUBLIC_PATHS:
                return None
            raise _Refusal(HTTPStatus.UNAUTHORIZED, error.code, error.message) from error
        return DEFAULT_CALLER

    @staticmethod
    def _respond(response: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
        headers = [
            (name, value)
            for name, values in (response.get("multiValueHeaders") or {}).items()
            for value in values
        ]
        headers += list((response.get("headers") or {}).items())
        headers.append(("content-length", str(len(payload))))
        start_response(_status_line(response["statusCode"]), headers)
        return [payload]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers by lower-case name, as API Gateway passes them."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def make_server(
    host: str,
    port: int,
    tokens: TokenFile | None = None,
    *,
    allowed_hosts: Sequence[str] = (),
    threads: int = DEFAULT_THREADS,
) -> WSGIServer:
    """A server for `host:port`. Beyond localhost every request needs one of `tokens`.
    ValueError says why it cannot start (a damaged token file, no token beyond localhost,
    the port taken: PortInUseError)."""
    if tokens:
        tokens.check()
    if not (tokens and tokens.current()) and not _is_loopback(socket.gethostbyname(host)):
        raise ValueError(
            f"listening on {host} exposes the API beyond this machine; create an API token "
            "first (whet token create --user NAME --org ORG)"
        )
    app = ApiApplication(served_names(host, allowed_hosts), tokens)
    return WSGIServer(
        app,
        host,
        port,
        threads=threads,
        max_body_bytes=DEFAULT_MAX_BODY_BYTES,
        max_header_bytes=MAX_HEADER_BYTES,
    )
