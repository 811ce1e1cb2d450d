"""The web console's built files (console/, built by `make console` into the package), as
`whet serve` answers them: index.html at `/`, hashed assets under `/console/`, and the
runtime config at `/config.json`. None of these paths can collide with the API's (`/api/`,
`/v1/`). docs/console.md describes the console and its config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "console_assets"
INDEX_PATHS = frozenset({"/", "/index.html"})
CONFIG_PATH = "/config.json"
# Built names only (index-<hash>.js): nothing outside the folder can be named.
_ASSET = re.compile(r"^/console/([A-Za-z0-9_-]+\.[A-Za-z0-9.]+)$")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The page talks to this server only; uPlot sets inline styles.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class ConsoleFile:
    """One answer of the console: its status, content type, body and caching."""

    status: int
    content_type: str
    body: bytes
    cache_control: str

    def headers(self) -> list[tuple[str, str]]:
        """The response headers, the security ones included."""
        return [
            ("content-type", self.content_type),
            ("content-length", str(len(self.body))),
            ("cache-control", self.cache_control),
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-content-type-options", "nosniff"),
        ]


def is_console_path(path: str) -> bool:
    """Whether GET `path` asks for the console rather than the API."""
    return path in INDEX_PATHS or path == CONFIG_PATH or path.startswith("/console/")


def local_config(tokens_required: bool) -> bytes:
    """The console's runtime config for this server: same origin, a token once tokens exist."""
    auth = {"type": "token" if tokens_required else "none"}
    return json.dumps({"runtime": "local", "apiBaseUrl": "", "auth": auth}).encode()


def console_file(path: str, tokens_required: bool, assets: Path = ASSETS) -> ConsoleFile:
    """The answer to GET `path`, one of the console's paths (is_console_path)."""
    if path == CONFIG_PATH:
        return ConsoleFile(200, "application/json", local_config(tokens_required), "no-store")
    if path in INDEX_PATHS:
        file = assets / "index.html"
        cache = "no-cache"
    else:
        match = _ASSET.match(path)
        file = assets / "console" / match.group(1) if match else assets / "missing"
        cache = "public, max-age=31536000, immutable"  # the names hold their content's hash
    if not file.is_file():
        return _not_found(path, assets)
    content_type = _TYPES.get(file.suffix, "application/octet-stream")
    return ConsoleFile(200, content_type, file.read_bytes(), cache)


def _not_found(path: str, assets: Path) -> ConsoleFile:
    message = (
        f"no console file {path}"
        if (assets / "index.html").is_file()
        else "the web console is not built into this installation; run `make console`"
    )
    body = json.dumps({"code": "not_found", "message": message, "details": None}).encode()
    return ConsoleFile(404, "application/json", body, "no-store")
