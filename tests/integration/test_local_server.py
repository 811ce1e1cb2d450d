"""`whet serve` over raw sockets: malformed HTTP gets a 4xx and the server keeps serving;
names, origins and concurrency."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.http import request

from whetstone.api.app import OPENAPI_PATH
from whetstone.api.routes import jobs as job_routes
from whetstone.cli.main import main
from whetstone.cli.server import DEFAULT_MAX_BODY_BYTES, MAX_HEADER_BYTES

API = "/api/v1/fine-tuning"
JSON_POST = f"POST {API}/datasets/validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def exchange(server_url: str, data: bytes) -> tuple[int | None, dict[str, str], bytes]:
    """Send `data` as is, read until the server closes: its status, headers and body
    (None when it closed without answering)."""
    address = urlsplit(server_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except ConnectionResetError:  # closed with some of what we sent unread, as it may
            pass
    if not received:
        return None, {}, b""
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def still_serves(server_url: str) -> bool:
    status, _ = request("GET", f"{server_url}{OPENAPI_PATH}")
    return status == 200


MALFORMED = {
    "negative length": JSON_POST.encode() + b"Content-Length: -5\r\n\r\n{}",
    "garbage length": JSON_POST.encode() + b"Content-Length: 12abc\r\n\r\n{}",
    "bad chunk size": JSON_POST.encode()
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "bad request line": b"NOT AN HTTP REQUEST\r\n\r\n",
    "unknown method": f"BREW {API}/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    "trace": f"TRACE {API}/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    # Exactly the limit, unfinished: the server reads all of it before refusing it (bytes
    # left unread when it closes would reset the connection before the answer is read).
    "oversized headers": (JSON_POST + "X-Big: ").encode().ljust(MAX_HEADER_BYTES, b"a"),
    "oversized body": JSON_POST.encode()
    + f"Content-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n\r\n".encode(),
    "non-UTF-8 JSON": JSON_POST.encode()
    + b"Content-Type: application/json\r\nContent-Length: 4\r\n\r\n\xff\xfe\xfa\xfb",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_a_4xx_in_the_error_shape_and_the_server_keeps_serving(
    server_url: str, data: bytes
) -> None:
    # Given a running server
    # When a malformed request arrives over a raw socket
    status, headers, body = exchange(server_url, data)

    # Then it is answered with a 4xx carrying {code, message, details}, and the server serves on
    assert status is not None and 400 <= status < 500, (status, body)
    assert set(json.loads(body)) == {"code", "message", "details"}
    assert still_serves(server_url)


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (MALFORMED["negative length"], 400, "bad_request"),
        (MALFORMED["trace"], 405, "method_not_allowed"),
        (MALFORMED["oversized headers"], 431, "headers_too_large"),
        (MALFORMED["oversized body"], 413, "request_too_large"),
        (MALFORMED["non-UTF-8 JSON"], 400, "invalid_encoding"),
    ],
    ids=["negative length", "trace", "oversized headers", "oversized body", "non-UTF-8"],
)
def test_each_malformation_gets_its_own_status(
    server_url: str, data: bytes, status: int, code: str
) -> None:
    answered, _, body = exchange(server_url, data)
    assert (answered, json.loads(body)["code"]) == (status, code)


def test_an_unknown_method_is_405_with_the_allowed_methods(server_url: str) -> None:
    status, headers, _ = exchange(server_url, MALFORMED["trace"])
    assert status == 405
    assert headers["allow"] == "GET, POST, PUT, PATCH, DELETE"


def test_a_truncated_body_gets_no_server_error_and_the_server_keeps_serving(
    server_url: str,
) -> None:
    # Given a request announcing 100 bytes of body, of which 10 arrive before the client hangs up
    data = JSON_POST.encode() + b"Content-Length: 100\r\n\r\n" + b"{" * 10

    # When it is sent
    status, _, _ = exchange(server_url, data)

    # Then nothing half-read reaches the API (no answer, no 5xx) and the server serves on
    assert status is None or 400 <= status < 500
    assert still_serves(server_url)


def test_a_name_this_server_does_not_serve_is_refused(server_url: str) -> None:
    # Given a page whose name was rebound to this machine's address
    data = f"GET {API}/jobs HTTP/1.1\r\nHost: evil.example:8000\r\n\r\n".encode()

    # When its request arrives
    status, _, body = exchange(server_url, data)

    # Then the server refuses to answer for that name
    assert status == 421 and json.loads(body)["code"] == "misdirected_request"


def test_localhost_and_addresses_are_served_names(server_url: str) -> None:
    port = urlsplit(server_url).port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST."):
        data = f"GET {API}/jobs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        assert exchange(server_url, data.encode())[0] == 200, host


def test_a_state_changing_request_from_a_foreign_page_is_refused(server_url: str) -> None:
    # Given a web page on another origin posting to the API (a cross-site form)
    host = urlsplit(server_url).netloc
    refused = (
        f"POST {API}/uploads HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    own = (
        f"POST {API}/uploads HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    )

    # When it and a request from the server's own page (the API docs) arrive
    foreign_status, _, body = exchange(server_url, refused.encode())
    own_status, _, _ = exchange(server_url, own.encode())

    # Then only the foreign one is refused
    assert foreign_status == 403 and json.loads(body)["code"] == "forbidden_origin"
    assert own_status == 200


def test_a_slow_request_does_not_hold_up_a_fast_one(
    server_url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given alice's upload held inside the resolver until bob's request has been answered
    _, slot = request("POST", f"{server_url}{API}/uploads", token=tokens["alice"])
    release = threading.Event()
    released: list[bool] = []
    real_caller = job_routes.current_caller

    def held_caller(app: Any) -> Any:
        if real_caller(app).user_id == "alice" and not released:
            released.append(release.wait(timeout=60))
        return real_caller(app)  # read again after the wait: still alice's request?

    monkeypatch.setattr(job_routes, "current_caller", held_caller)
    slow: dict[str, Any] = {}

    def alice_uploads() -> None:
        slow["status"], slow["body"] = request(
            "PUT",
            f"{server_url}{slot['path']}",
            token=tokens["alice"],
            body=b"x" * 1000,
            content_type="application/octet-stream",
        )

    # When alice's upload starts, and bob asks for his stats while it waits
    alice = threading.Thread(target=alice_uploads)
    alice.start()
    bob_status, _ = request("GET", f"{server_url}{API}/stats", token=tokens["bob"])
    release.set()
    alice.join(timeout=60)

    # Then bob was answered while alice's request waited, and alice's request kept its
    # own caller and body
    assert bob_status == 200
    assert released == [True]
    assert slow == {"status": 200, "body": {"upload_id": slot["upload_id"], "size_bytes": 1000}}


def test_serve_on_a_busy_port_names_it_and_how_to_pick_another(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a port another program listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # When `whet serve` is started on it
        code = main(["serve", "--port", str(port)])

    # Then it exits non-zero, naming the port and --port, without a traceback
    err = capsys.readouterr().err
    assert code != 0
    assert f"port {port}" in err and "--port" in err and "Traceback" not in err
