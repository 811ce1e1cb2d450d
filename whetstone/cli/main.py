"""The `whet` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from whetstone.cli.commands import api_keys, datasets, jobs, planning, tokens
from whetstone.cli.commands.common import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    api_options,
)
from whetstone.cli.output import api_error_text
from whetstone.client import WhetstoneAPIError, WhetstoneConfigError, WhetstoneConnectionError
from whetstone.settings import get_settings


def _serve(args: argparse.Namespace) -> int:
    from whetstone.cli.server import make_server
    from whetstone.cli.tokens import TokenFile

    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    try:
        server = make_server(args.host, args.port, TokenFile(home), allowed_hosts=args.allowed_host)
    except ValueError as error:
        print(f"whet serve: {error}", file=sys.stderr)
        return 2
    from whetstone.adapters.local.runner import LocalRunner
    from whetstone.runtime import get_platform

    orchestrator = get_platform().orchestrator
    if isinstance(orchestrator, LocalRunner):
        resumed = orchestrator.reconcile()
        if resumed:
            print(f"whet serve: picked up {resumed} unfinished job(s)", flush=True)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"whet serve: listening on http://{host}:{port} (state in {home})", flush=True)
    print(f"API docs: http://{host}:{port}/api/v1/docs", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whet",
        description="Whetstone fine-tuning platform: run it (serve) and use its REST API.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[api_options()],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the local platform and its REST API")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name clients call this server by (repeatable; addresses always work)",
    )
    serve.set_defaults(run=_serve)

    tokens.register(commands)
    planning.register(commands)
    datasets.register(commands)
    jobs.register(commands)
    api_keys.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `whet` command; its exit code (see EXIT_CODES_HELP)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already explained
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return int(args.run(args))
    except WhetstoneAPIError as error:
        print(f"whet: {api_error_text(error.message, error.code, error.details)}", file=sys.stderr)
        return EXIT_UNAVAILABLE if error.status >= 500 else EXIT_REFUSED
    except BrokenPipeError:
        # `whet ... | head` closed the pipe: the reader has what it wanted. Point stdout at
        # nothing so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except WhetstoneConnectionError as error:
        print(f"whet: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (WhetstoneConfigError, OSError) as error:
        print(f"whet: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
