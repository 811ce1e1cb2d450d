"""What every API command shares: connection options, the client, JSON or human output."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from whetstone.cli.output import to_json
from whetstone.client import DEFAULT_TIMEOUT_S, WhetstoneClient

# Exit codes scripts can rely on (documented in `whet --help` and docs/cli.md).
EXIT_OK = 0
EXIT_REFUSED = 1  # the API refused the request (4xx), or the check it ran failed
EXIT_USAGE = 2  # bad arguments, or a local file that is missing or malformed
EXIT_JOB_FAILED = 3  # the awaited job ended failed or cancelled, or the deployment failed
EXIT_UNAVAILABLE = 4  # the server could not be reached, or failed (5xx)
EXIT_JOB_PAUSED = 5  # the awaited job paused (asked, or at its cost cap) and waits for a resume

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  the API refused the request (4xx), or the check it ran failed
     (dataset invalid, model does not fit the hardware)
  2  usage error: bad arguments, a missing or malformed local file
  3  the awaited job ended failed or cancelled, or the awaited
     deployment (jobs deploy --wait) ended failed
  4  the server could not be reached, or answered 5xx
  5  the awaited job paused (asked, or at its cost cap): `whet jobs resume ID`

connection: --url / --token, else WHETSTONE_URL / WHETSTONE_TOKEN, else the
config file $WHETSTONE_CONFIG (default ~/.config/whetstone/config.json,
{"url": ..., "token": ...}), else http://127.0.0.1:8000 without a token."""

Handler = Callable[[argparse.Namespace], int]


def api_options() -> argparse.ArgumentParser:
    """Options every API command takes, before or after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection and output")
    group.add_argument("--url", default=argparse.SUPPRESS, help="API base URL (env WHETSTONE_URL)")
    group.add_argument("--token", default=argparse.SUPPRESS, help="API token (env WHETSTONE_TOKEN)")
    group.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        help=f"seconds to wait for one HTTP response (default {DEFAULT_TIMEOUT_S:g})",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the API's JSON instead of tables",
    )
    return parent


def connect(args: argparse.Namespace) -> WhetstoneClient:
    return WhetstoneClient(
        getattr(args, "url", None),
        getattr(args, "token", None),
        timeout=getattr(args, "timeout", DEFAULT_TIMEOUT_S),
    )


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit(args: argparse.Namespace, value: Any, human: Callable[[], str]) -> None:
    """The value as JSON with --json, else the human rendering."""
    print(to_json(value) if wants_json(args) else human())


def timestamp(text: str) -> datetime:
    """An ISO 8601 argument (a trailing Z is fine)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from error
