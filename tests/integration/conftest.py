"""A `whet serve` server on a free port, in this process, for tests over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.clients import Result, whet_runner
from support.jobs import RecordingOrchestrator
from support.platform import use_ports

from whetstone.cli.server import make_server
from whetstone.cli.tokens import TokenFile, create_token
from whetstone.client import WhetstoneClient
from whetstone.core.job import Caller
from whetstone.settings import get_settings

ALICE = Caller(user_id="alice", org_id="acme")
BOB = Caller(user_id="bob", org_id="globex")


@pytest.fixture
def tokens() -> dict[str, str]:
    home = get_settings().home
    return {"alice": create_token(home, ALICE), "bob": create_token(home, BOB)}


@pytest.fixture
def server_url() -> Iterator[str]:
    """A server with no token yet: this machine acts as the local user until a test asks
    for `tokens`, from when every request needs one."""
    server = make_server("127.0.0.1", 0, TokenFile(get_settings().home))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file, URL or token of the user running the tests reaches the SDK."""
    monkeypatch.setenv("WHETSTONE_CONFIG", str(tmp_path / "no-config.json"))
    monkeypatch.delenv("WHETSTONE_URL", raising=False)
    monkeypatch.delenv("WHETSTONE_TOKEN", raising=False)


@pytest.fixture
def client(server_url: str, no_user_config: None) -> WhetstoneClient:
    return WhetstoneClient(server_url)


@pytest.fixture
def whet(
    server_url: str, capsys: pytest.CaptureFixture[str], no_user_config: None
) -> Callable[..., Result]:
    return whet_runner(server_url, capsys)


@pytest.fixture(autouse=True)
def orchestrator(monkeypatch: pytest.MonkeyPatch) -> RecordingOrchestrator:
    recorder = RecordingOrchestrator()
    use_ports(monkeypatch, orchestrator=recorder)
    return recorder
