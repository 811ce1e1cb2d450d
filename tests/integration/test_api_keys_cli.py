"""`whet api-keys` and the SDK's key methods over HTTP, against the API handler of the aws
runtime on moto (keys kept hashed in DynamoDB); a key created so passes the authorizer until
it is revoked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support.clients import whet_runner

from functions import authorizer
from whetstone.cli.server import make_server
from whetstone.client import WhetstoneAPIError, WhetstoneClient
from whetstone.service.platform import Platform

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/v1/GET/v1/fine_tuning/jobs"


@pytest.fixture
def aws_server_url(aws_platform: Platform, no_user_config: None) -> Iterator[str]:
    """`whet serve`'s HTTP in front of the aws runtime's handler, as a signed-in user."""
    authorizer.key_store.cache_clear()
    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def authorize(secret: str) -> dict[str, Any]:
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {secret}", "methodArn": METHOD_ARN}
    answer: dict[str, Any] = authorizer.handler(event)
    return answer


def test_whet_api_keys_creates_lists_and_revokes_a_key(
    aws_server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    whet = whet_runner(aws_server_url, capsys)

    # When a key is created, then its secret is printed once and it passes the authorizer
    created = whet("api-keys", "create", "ci", "--expires-in-days", "30")
    assert created.code == 0, created.err
    secret = created.out.strip()
    assert "shown this once" in created.err
    assert authorize(secret)["policyDocument"]["Statement"][0]["Effect"] == "Allow"

    # And it is listed by its prefix, never its secret
    (key,) = whet("api-keys", "list", "--json").json()
    assert key["name"] == "ci" and key["expires_at"] and secret.startswith(key["prefix"])
    listed = whet("api-keys", "list")
    assert key["key_id"] in listed.out and secret not in listed.out

    # When it is revoked, then it is gone and refused by the authorizer
    revoked = whet("api-keys", "revoke", key["key_id"])
    assert revoked.code == 0 and f"revoked {key['key_id']}" in revoked.out
    assert whet("api-keys", "list", "--json").json() == []
    with pytest.raises(PermissionError, match="^Unauthorized$"):
        authorize(secret)
    assert whet("api-keys", "revoke", key["key_id"]).code == 1  # no such key


def test_the_sdk_creates_lists_and_revokes_api_keys(aws_server_url: str) -> None:
    client = WhetstoneClient(aws_server_url)

    created = client.create_api_key("notebook")

    assert created.secret.startswith(created.prefix)
    assert [k.key_id for k in client.list_api_keys()] == [created.key_id]
    client.revoke_api_key(created.key_id)
    assert client.list_api_keys() == []
    with pytest.raises(WhetstoneAPIError) as missing:
        client.revoke_api_key(created.key_id)
    assert missing.value.status == 404
