"""API keys of the aws runtime under moto: the routes that manage them, the DynamoDB items
that keep them, and the Lambda authorizer that lets their requests in."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from support.apigw import call_api
from support.aws_workflow import CALLER, TABLE, new_job

from functions import authorizer
from whetstone.adapters.aws.cognito_tokens import CognitoTokenVerifier
from whetstone.api.paths import API_PREFIX
from whetstone.core.job import Caller
from whetstone.core.tokens import hash_token
from whetstone.service.platform import Platform

KEYS = f"{API_PREFIX}/api-keys"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/v1/GET/api/v1/fine-tuning/jobs"
OTHER_ORG = Caller(user_id="bob", org_id="globex")
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"


@pytest.fixture(autouse=True)
def platform(aws_platform: Platform) -> Platform:
    authorizer.key_store.cache_clear()
    return aws_platform


def create_key(caller: Caller = CALLER, **body: Any) -> dict[str, Any]:
    response = call_api("POST", KEYS, json_body={"name": "ci", **body}, caller=caller)
    assert response.status == 201, response.body
    created: dict[str, Any] = response.body
    return created


def authorize(credential: str) -> dict[str, Any]:
    event = {"type": "TOKEN", "authorizationToken": credential, "methodArn": METHOD_ARN}
    answer: dict[str, Any] = authorizer.handler(event)
    return answer


def test_a_created_key_authorizes_with_its_organizations_claims() -> None:
    # Given a key a signed-in user of acme created
    secret = create_key()["secret"]

    # When the authorizer is sent it the way the openai client sends it
    answer = authorize(f"Bearer {secret}")

    # Then it allows the whole API with the claims Cognito would have given
    assert answer["principalId"] == CALLER.user_id
    assert answer["context"] == {
        "sub": CALLER.user_id,
        "custom:organization": CALLER.org_id,
        "whetstone:credential": "api_key",
    }
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/v1/*/*"]


def test_the_stored_item_holds_the_hash_never_the_secret() -> None:
    # Given a created key
    created = create_key()

    # When the table is read whole
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]

    # Then the key's item holds its hash and nowhere the secret
    assert created["secret"] not in repr(items)
    (item,) = [i for i in items if i["SK"]["S"] == "APIKEY"]
    assert item["PK"]["S"] == f"APIKEY#{hash_token(created['secret'])}"
    assert created["prefix"] == created["secret"][:9]


@pytest.mark.parametrize("credential", ["Bearer whet_not-a-key", "whet_", "Bearer eyJhbGciOi.x.y"])
def test_a_wrong_key_is_refused_with_401(credential: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a user pool without keys, so no token could be valid either
    verifier = CognitoTokenVerifier(ISSUER, "client", fetch=lambda url: {"keys": []})
    monkeypatch.setattr(authorizer, "token_verifier", lambda: verifier)

    # When the authorizer is sent a credential that is no key of any organization
    # Then it answers Unauthorized, which API Gateway turns into 401
    with pytest.raises(PermissionError, match="^Unauthorized$"):
        authorize(credential)


def test_a_revoked_key_is_refused() -> None:
    # Given a key that authorized once, then was revoked
    created = create_key()
    authorize(created["secret"])
    revoked = call_api("DELETE", f"{KEYS}/{created['key_id']}", caller=CALLER)
    assert revoked.status == 204

    # When it is sent again
    # Then it is refused
    with pytest.raises(PermissionError, match="^Unauthorized$"):
        authorize(created["secret"])


def test_an_expired_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a key valid for one day, a day and a second later
    from datetime import timedelta

    from whetstone.service import api_keys

    created = create_key(expires_in_days=1)
    later = api_keys.utcnow() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(api_keys, "utcnow", lambda: later)

    # When it is sent
    # Then it is refused
    with pytest.raises(PermissionError, match="^Unauthorized$"):
        authorize(created["secret"])


def test_a_key_of_one_organization_never_sees_anothers_jobs(platform: Platform) -> None:
    # Given a job of acme, and a key of acme and one of globex
    job = new_job(platform)
    acme = authorize(create_key()["secret"])["context"]
    globex = authorize(create_key(OTHER_ORG)["secret"])["context"]

    # When each key lists the jobs and asks for acme's job
    acme_jobs = call_api("GET", f"{API_PREFIX}/jobs", caller=None, authorizer=acme)
    globex_jobs = call_api("GET", f"{API_PREFIX}/jobs", caller=None, authorizer=globex)
    globex_get = call_api("GET", f"{API_PREFIX}/jobs/{job.job_id}", caller=None, authorizer=globex)

    # Then acme's key sees it and globex's neither lists nor reads it
    assert [j["job_id"] for j in acme_jobs.body["jobs"]] == [job.job_id]
    assert globex_jobs.body["jobs"] == []
    assert globex_get.status == 404


def test_listing_shows_metadata_and_last_use_but_no_secret() -> None:
    # Given two keys of acme, one used once, and one of globex
    used = create_key(name="used")
    create_key(name="idle")
    create_key(OTHER_ORG, name="theirs")
    authorize(used["secret"])

    # When acme lists its keys
    listed = call_api("GET", KEYS, caller=CALLER).body["api_keys"]

    # Then it sees its two, newest first, with their prefixes and the use; no secret or hash
    assert [k["name"] for k in listed] == ["idle", "used"]
    assert listed[1]["prefix"] == used["secret"][:9]
    assert listed[1]["last_used_at"] is not None and listed[0]["last_used_at"] is None
    assert set(listed[0]) == {
        "key_id",
        "name",
        "prefix",
        "user_id",
        "created_at",
        "expires_at",
        "last_used_at",
    }


def test_a_key_of_another_organization_cannot_be_revoked() -> None:
    # Given a key of globex
    theirs = create_key(OTHER_ORG)

    # When acme's user revokes it by id
    response = call_api("DELETE", f"{KEYS}/{theirs['key_id']}", caller=CALLER)

    # Then it is not found, and it still works
    assert response.status == 404
    assert authorize(theirs["secret"])["principalId"] == OTHER_ORG.user_id


@pytest.mark.parametrize(
    ("method", "path"), [("POST", KEYS), ("GET", KEYS), ("DELETE", f"{KEYS}/x")]
)
def test_a_key_cannot_manage_keys(method: str, path: str) -> None:
    # Given the claims a key's request carries
    claims = authorize(create_key()["secret"])["context"]

    # When that request manages keys
    response = call_api(method, path, json_body={"name": "minted"}, caller=None, authorizer=claims)

    # Then it is forbidden
    assert response.status == 403
    assert response.body["code"] == "api_key_not_allowed"


def test_an_organization_has_a_bounded_number_of_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an organization at its limit of keys (two, for the test)
    from whetstone.service import api_keys

    monkeypatch.setattr(api_keys, "MAX_KEYS_PER_ORGANIZATION", 2)
    create_key()
    create_key()

    # When its user creates one more
    response = call_api("POST", KEYS, json_body={"name": "third"}, caller=CALLER)

    # Then it is refused with the limit, and another organization is not affected
    assert response.status == 429
    assert response.body["code"] == "too_many_api_keys"
    assert create_key(OTHER_ORG)["key_id"]
