"""`whet token create/list/revoke`: the API tokens of the local runtime (this machine's
`$WHETSTONE_HOME`; they need no running server)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from typing import Any

from whetstone.cli.commands.common import EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from whetstone.cli.output import cell, table
from whetstone.settings import get_settings

_DURATION = re.compile(r"^(\d+)([dhms])$")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m` or `3600s` as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 90m or 3600s")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _create(args: argparse.Namespace) -> int:
    from whetstone.cli.tokens import create_token
    from whetstone.core.job import Caller

    try:
        expires_in = parse_duration(args.expires_in) if args.expires_in else None
    except ValueError as error:
        print(f"whet token create: {error}", file=sys.stderr)
        return EXIT_USAGE
    caller = Caller(user_id=args.user, org_id=args.org)
    print(create_token(get_settings().home, caller, expires_in))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from whetstone.cli.tokens import load_tokens

    rows = [
        [t.token_id, t.user_id, t.org_id, cell(t.created_at), cell(t.expires_at or "never")]
        for t in load_tokens(get_settings().home).values()
    ]
    print(table(["ID", "USER", "ORG", "CREATED", "EXPIRES"], rows))
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    from whetstone.cli.tokens import revoke_token

    try:
        revoked = revoke_token(get_settings().home, args.token_id)
    except LookupError as error:
        print(f"whet token revoke: {error.args[0]}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"revoked {revoked.token_id} ({revoked.user_id} of {revoked.org_id})")
    return EXIT_OK


def register(commands: Any) -> None:
    """Add `whet token` and its subcommands."""
    token = commands.add_parser("token", help="manage API tokens of the local runtime")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a token for a user")
    create.add_argument("--user", required=True, help="user id the token acts as")
    create.add_argument("--org", required=True, help="organization of that user")
    create.add_argument(
        "--expires-in", help="stop working after this long: 30d, 12h, 90m (default: never)"
    )
    create.set_defaults(run=_create)

    listing = token_commands.add_parser("list", help="list the tokens (ids, never the tokens)")
    listing.set_defaults(run=_list)

    revoke = token_commands.add_parser("revoke", help="remove a token: it stops working at once")
    revoke.add_argument("token_id", metavar="ID", help="the id `whet token list` shows")
    revoke.set_defaults(run=_revoke)
