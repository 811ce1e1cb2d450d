"""`whet serve` answers the web console: index.html at `/`, its assets under `/console/`,
its runtime config at `/config.json`, without a token and behind the same Host check."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from whetstone.cli.console_files import ASSETS, console_file


def get(url: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url)
    if host:
        req.add_header("host", host)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


needs_build = pytest.mark.skipif(
    not (ASSETS / "index.html").is_file(), reason="the console is not built (make console)"
)


@needs_build
def test_the_console_page_and_its_assets_are_served_without_a_token(
    server_url: str, tokens: dict[str, str]
) -> None:
    # Given a server where tokens exist (API calls need one)
    # When a browser loads the page and the script it names
    status, headers, page = get(f"{server_url}/")
    script = re.search(rb'src="\./(console/[^"]+\.js)"', page)
    assert script is not None, page[:300]
    asset_status, asset_headers, _ = get(f"{server_url}/{script.group(1).decode()}")

    # Then both come back, typed, the page under a content security policy
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert asset_status == 200 and asset_headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in asset_headers["Cache-Control"]


def test_the_config_says_whether_the_console_must_ask_for_a_token(server_url: str) -> None:
    _, _, before = get(f"{server_url}/config.json")
    from whetstone.cli.tokens import create_token
    from whetstone.core.job import Caller
    from whetstone.settings import get_settings

    create_token(get_settings().home, Caller(user_id="alice", org_id="acme"))
    _, _, after = get(f"{server_url}/config.json")

    assert json.loads(before) == {"runtime": "local", "apiBaseUrl": "", "auth": {"type": "none"}}
    assert json.loads(after)["auth"] == {"type": "token"}


def test_console_files_are_refused_under_a_name_this_server_does_not_serve(
    server_url: str,
) -> None:
    status, _, body = get(f"{server_url}/", host="attacker.example")
    assert status == 421 and json.loads(body)["code"] == "misdirected_request"


@pytest.mark.parametrize("path", ["/console/..%2Fpyproject.toml", "/console/nothing.js"])
def test_only_built_assets_are_served(server_url: str, path: str) -> None:
    status, _, body = get(f"{server_url}{path}")
    assert status == 404 and json.loads(body)["code"] == "not_found"


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    answer = console_file("/", tokens_required=False, assets=tmp_path)
    assert answer.status == 404 and b"make console" in answer.body
