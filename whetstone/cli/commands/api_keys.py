"""`whet api-keys create/list/revoke`: the API keys of your organization on aws, over the
API (`/api-keys`). Managing keys takes a signed-in user's token (`--token`, WHETSTONE_TOKEN),
never a key; the local runtime issues none (`whet token` makes its tokens)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from whetstone.cli.commands.common import EXIT_OK, api_options, connect, emit, wants_json
from whetstone.cli.output import cell, table


def _create(args: argparse.Namespace) -> int:
    key = connect(args).create_api_key(args.name, expires_in_days=args.expires_in_days)
    if not wants_json(args):
        print(
            f"created {key.key_id} ({key.name}); the key is shown this once, keep it now:",
            file=sys.stderr,
        )
    emit(args, key, lambda: key.secret)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    keys = connect(args).list_api_keys()
    rows = [
        [
            k.key_id,
            k.name,
            f"{k.prefix}...",
            k.user_id,
            cell(k.created_at),
            cell(k.expires_at or "never"),
            cell(k.last_used_at or "never"),
        ]
        for k in keys
    ]
    headers = ["ID", "NAME", "KEY", "CREATED BY", "CREATED", "EXPIRES", "LAST USED"]
    emit(args, keys, lambda: table(headers, rows))
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    connect(args).revoke_api_key(args.key_id)
    print(f"revoked {args.key_id}")
    return EXIT_OK


_COMMANDS = (
    ("create", _create, "create a key; its secret is printed this once"),
    ("list", _list, "list the keys (their prefixes, never the secrets)"),
    ("revoke", _revoke, "revoke a key: requests with it are refused at once"),
)


def register(commands: Any) -> None:
    """Add `whet api-keys` and its subcommands."""
    parent = api_options()
    summary = "manage your organization's API keys (aws)"
    group = commands.add_parser("api-keys", parents=[parent], help=summary)
    sub = group.add_subparsers(dest="api_keys_command", required=True, metavar="COMMAND")
    made = {}
    for name, run, text in _COMMANDS:
        made[name] = sub.add_parser(name, parents=[parent], help=text)
        made[name].set_defaults(run=run)
    made["create"].add_argument("name", help="what the key is for, e.g. ci")
    made["create"].add_argument(
        "--expires-in-days", type=int, help="stop working after this many days (default: never)"
    )
    made["revoke"].add_argument("key_id", metavar="ID", help="the id `whet api-keys list` shows")
