"""What the browser tests share: the console served by `whet serve`, and a page of Debian's
headless Chromium (Playwright's own browser download is not used)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import new_page

from whetstone.cli.console_files import ASSETS
from whetstone.cli.server import make_server
from whetstone.cli.tokens import TokenFile
from whetstone.settings import get_settings

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def console_url() -> Iterator[str]:
    """The URL of a `whet serve` on a free port, answering the built console."""
    if not (ASSETS / "index.html").is_file():
        pytest.fail("the console is not built: run `make console`")
    server = make_server("127.0.0.1", 0, TokenFile(get_settings().home))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make chromium` installs Debian's package")
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Any:
    return new_page(browser)
