"""Pages of headless Chromium for the browser tests."""

from __future__ import annotations

from typing import Any


def new_page(browser: Any, **context: Any) -> Any:
    """A page of a fresh context (its own sessionStorage) sized like a laptop screen."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}, **context).new_page()
    page.set_default_timeout(30_000)
    return page
