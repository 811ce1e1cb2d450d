"""The job endpoints through `whet serve` over real HTTP, with API tokens per organization."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support.apigw import multipart
from support.http import request

from whetstone.api.app import OPENAPI_PATH
from whetstone.cli.server import DEFAULT_MAX_BODY_BYTES, make_server
from whetstone.cli.tokens import TokenFile, create_token, tokens_path
from whetstone.core.job import Caller
from whetstone.runtime import get_platform
from whetstone.settings import get_settings

API = "/api/v1/fine-tuning"


def dataset(count: int = 120) -> bytes:
    rows = [{"prompt": f"Say {i}", "completion": f"{i}"} for i in range(count)]
    return "\n".join(json.dumps(row) for row in rows).encode()


def create(server_url: str, token: str | None) -> tuple[int, Any]:
    config = {"base_model": "qwen2.5-0.5b-instruct", "method": "lora"}
    body, content_type = multipart(
        {"config": json.dumps(config)}, {"file": ("data.jsonl", dataset())}
    )
    return request(
        "POST", f"{server_url}{API}/jobs", token=token, body=body, content_type=content_type
    )


def test_a_multipart_upload_over_http_creates_a_job(
    server_url: str, tokens: dict[str, str]
) -> None:
    status, job = create(server_url, tokens["alice"])

    assert status == 201 and job["org_id"] == "acme" and job["user_id"] == "alice"
    assert job["dataset"]["format"] == "jsonl" and job["dataset"]["num_examples"] == 120


def test_while_no_token_exists_this_machine_acts_as_the_local_user(server_url: str) -> None:
    status, job = create(server_url, None)
    assert status == 201 and job["org_id"] == "local"


def test_once_a_token_exists_a_request_from_this_machine_needs_one(
    server_url: str, tokens: dict[str, str]
) -> None:
    # Given a server on loopback and a token created for alice
    # When this machine sends a request without a token
    status, body = create(server_url, None)

    # Then it is refused, saying a token is now required
    assert status == 401 and body["code"] == "unauthenticated"
    assert "requires a token" in body["message"]


def test_a_bad_token_is_refused_saying_it_is_not_valid(server_url: str) -> None:
    status, body = request("GET", f"{server_url}{API}/jobs", token="whet_forged")
    assert status == 401 and body["code"] == "unauthenticated"
    assert "token is not valid" in body["message"]


def test_organizations_do_not_see_each_others_jobs_over_http(
    server_url: str, tokens: dict[str, str]
) -> None:
    _, job = create(server_url, tokens["alice"])
    job_url = f"{server_url}{API}/jobs/{job['job_id']}"

    bob_get, _ = request("GET", job_url, token=tokens["bob"])
    bob_stop, _ = request("POST", f"{job_url}/stop", token=tokens["bob"])
    bob_list = request("GET", f"{server_url}{API}/jobs", token=tokens["bob"])[1]
    alice_get, _ = request("GET", job_url, token=tokens["alice"])

    assert (bob_get, bob_stop, alice_get) == (404, 404, 200)
    assert bob_list["jobs"] == []


def test_stop_then_delete_over_http(server_url: str, tokens: dict[str, str]) -> None:
    _, job = create(server_url, tokens["alice"])
    job_url = f"{server_url}{API}/jobs/{job['job_id']}"

    stopped = request("POST", f"{job_url}/stop", token=tokens["alice"])[1]
    deleted, _ = request("DELETE", job_url, token=tokens["alice"])
    gone, _ = request("GET", job_url, token=tokens["alice"])

    assert stopped["status"] == "cancelled" and (deleted, gone) == (204, 404)


def test_an_oversized_body_is_refused_before_it_is_read(server_url: str) -> None:
    limit = DEFAULT_MAX_BODY_BYTES
    req = urllib.request.Request(f"{server_url}{API}/uploads/x", method="PUT", data=b"")
    req.add_header("content-length", str(limit + 1))
    try:
        urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as error:
        assert error.code == 413
        assert json.loads(error.read())["code"] == "request_too_large"
    else:
        raise AssertionError("the oversized body was accepted")


def test_serving_beyond_localhost_needs_a_token() -> None:
    with pytest.raises(ValueError, match="create an API token"):
        make_server("0.0.0.0", 0, None)


def test_a_token_created_while_the_server_runs_works_at_once(server_url: str) -> None:
    carol = create_token(get_settings().home, Caller(user_id="carol", org_id="initech"))

    status, job = create(server_url, carol)

    assert status == 201
    assert job["org_id"] == "initech"


def test_a_damaged_token_file_refuses_tokens_and_keeps_the_server_up(
    server_url: str, tokens: dict[str, str]
) -> None:
    tokens_path(get_settings().home).write_text("{not json")

    refused, body = request("GET", f"{server_url}{API}/jobs", token=tokens["alice"])
    local, _ = request("GET", f"{server_url}{API}/jobs")
    docs, _ = request("GET", f"{server_url}{OPENAPI_PATH}")

    assert refused == 401
    assert body["code"] == "unauthenticated"
    assert local == 401
    assert docs == 200


def test_a_damaged_token_file_stops_the_server_from_starting() -> None:
    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    tokens_path(home).write_text('{"whet_x": "not a caller"}')

    with pytest.raises(ValueError, match="is not a token file"):
        make_server("0.0.0.0", 0, TokenFile(home))


def test_concurrent_requests_of_two_organizations_never_mix(
    server_url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_platform().settings, "max_active_jobs", 1000)
    monkeypatch.setattr(get_platform().settings, "max_active_gpus", 1000)
    expected = {"alice": "acme", "bob": "globex"}

    def create_as(user: str) -> tuple[str, int, str]:
        status, job = create(server_url, tokens[user])
        return user, status, job.get("org_id", "")

    def list_as(user: str) -> tuple[str, int, set[str]]:
        status, body = request("GET", f"{server_url}{API}/jobs", token=tokens[user])
        return user, status, {job["org_id"] for job in body.get("jobs", [])}

    with ThreadPoolExecutor(12) as pool:
        created = pool.map(create_as, list(expected) * 20)
        listed = pool.map(list_as, list(expected) * 40)
        created, listed = list(created), list(listed)

    assert [status for _, status, _ in created] == [201] * len(created)
    assert all(org == expected[user] for user, _, org in created)
    assert [status for _, status, _ in listed] == [200] * len(listed)
    assert all(orgs <= {expected[user]} for user, _, orgs in listed)
