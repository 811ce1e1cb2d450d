"""A WSGI application served by waitress, started and stopped like the stdlib's servers.

waitress parses HTTP (lengths, chunked bodies, header and body limits, answering 400,
413 or 431 to what it cannot accept, in the API's error shape) and runs the application
on a pool of threads, so a slow request does not hold up the others.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.wasyncore import close_all, loop

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_LOOP_TIMEOUT_S = 1.0
_ERROR_CODES = {413: "request_too_large", 431: "headers_too_large", 501: "not_implemented"}


class _JsonErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's answer to a request it cannot parse, as `{code, message, details}`."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps(
            {
                "code": _ERROR_CODES.get(error.code, "bad_request"),
                "message": f"{error.reason}: {error.body}",
                "details": None,
            }
        ).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _JsonErrorTask


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel


class PortInUseError(ValueError):
    """The port asked for is taken by another program."""


class WSGIServer:
    """`app` on `host:port` (port 0 picks a free one) until `shutdown()`."""

    def __init__(
        self,
        app: WSGIApp,
        host: str,
        port: int,
        *,
        threads: int,
        max_body_bytes: int,
        max_header_bytes: int,
    ) -> None:
        self._map: dict[int, Any] = {}
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
        limits = {
            "max_request_body_size": max_body_bytes,
            "max_request_header_size": max_header_bytes,
        }
        adjustments = Adjustments(
            host=address, port=port, threads=threads, ident="whetstone", **limits
        )
        try:
            self._server = _Server(app, map=self._map, adj=adjustments)
        except OSError as error:
            close_all(self._map, ignore_all=True)
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use (another `whet serve`?); "
                    "pick another with --port N, or --port 0 for any free port"
                ) from error
            raise
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def server_address(self) -> tuple[str, int]:
        return str(self._server.effective_host), int(self._server.effective_port)

    def serve_forever(self) -> None:
        self._stopped.clear()
        try:
            while not self._stop.is_set():
                loop(timeout=_LOOP_TIMEOUT_S, map=self._map, count=1)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` (from another thread) and wait until it returns."""
        self._stop.set()
        self._server.pull_trigger()
        self._stopped.wait()

    def server_close(self) -> None:
        close_all(self._map, ignore_all=True)
        self._server.task_dispatcher.shutdown()
