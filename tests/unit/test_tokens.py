"""Tokens of the local runtime: stored hashed, listed, revoked, expiring."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from whetstone.cli.commands.tokens import parse_duration
from whetstone.cli.main import main
from whetstone.cli.tokens import (
    TokenFile,
    create_token,
    hash_token,
    load_tokens,
    revoke_token,
    tokens_path,
)
from whetstone.core.errors import UnauthenticatedError
from whetstone.core.job import Caller

ALICE = Caller(user_id="alice", org_id="acme")


def test_the_token_file_keeps_hashes_never_tokens(tmp_path: Path) -> None:
    # Given a created token
    token = create_token(tmp_path, ALICE)

    # When the file is read as text
    text = tokens_path(tmp_path).read_text()

    # Then the token is not in it, its sha256 is
    assert token not in text and hash_token(token) in text
    assert TokenFile(tmp_path).authenticate(token) == ALICE


def test_a_file_of_plain_tokens_is_rewritten_hashed_when_read(tmp_path: Path) -> None:
    # Given a token file written before tokens were hashed
    tokens_path(tmp_path).write_text(json.dumps({"whet_old": ALICE.model_dump()}))

    # When it is read
    tokens = load_tokens(tmp_path)

    # Then the token still works and the file no longer holds it
    assert tokens[hash_token("whet_old")].caller == ALICE
    assert "whet_old" not in tokens_path(tmp_path).read_text()
    assert TokenFile(tmp_path).authenticate("whet_old") == ALICE


def test_an_expired_token_is_refused_saying_it_expired(tmp_path: Path) -> None:
    token = create_token(tmp_path, ALICE, expires_in=timedelta(seconds=-1))

    with pytest.raises(UnauthenticatedError, match="expired at"):
        TokenFile(tmp_path).authenticate(token)


def test_a_revoked_token_stops_working_at_once(tmp_path: Path) -> None:
    # Given a token a running server has already accepted
    token = create_token(tmp_path, ALICE)
    tokens = TokenFile(tmp_path)
    assert tokens.authenticate(token) == ALICE

    # When it is revoked by its id
    revoke_token(tmp_path, hash_token(token)[:12])

    # Then the server refuses it, saying it is not valid
    with pytest.raises(UnauthenticatedError, match="not valid"):
        tokens.authenticate(token)


def test_revoking_an_unknown_id_is_a_lookup_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="whet token list"):
        revoke_token(tmp_path, "nope")


def test_durations_take_days_hours_minutes_and_seconds() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_token_list_shows_ids_and_revoke_removes_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a token created with an expiry
    assert main(["token", "create", "--user", "carol", "--org", "acme", "--expires-in", "1d"]) == 0
    token = capsys.readouterr().out.strip()

    # When the tokens are listed, then that one revoked by its id
    assert main(["token", "list"]) == 0
    listed = capsys.readouterr().out
    token_id = hash_token(token)[:12]
    revoked = main(["token", "revoke", token_id])

    # Then the list showed its id and user, never the token, and it is gone
    assert token_id in listed and "carol" in listed and token not in listed
    assert revoked == 0
    assert main(["token", "revoke", token_id]) == 1
