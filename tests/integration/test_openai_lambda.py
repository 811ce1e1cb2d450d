"""The /v1 routes through the API Lambda's handler (aws runtime, on moto), driven by the
official `openai` client whose HTTP requests become API Gateway proxy events; with an API key,
through the Lambda authorizer first."""

from __future__ import annotations

import base64
from typing import Any

import httpx2 as httpx
import pytest
from support.apigw import call_api
from support.openai_jobs import chat_rows, complete, train

from functions import authorizer
from whetstone.api.app import handler
from whetstone.api.identity import claims_for
from whetstone.api.paths import API_PREFIX
from whetstone.cli.server import build_proxy_event
from whetstone.core.job import Caller
from whetstone.service.platform import Platform

openai = pytest.importorskip("openai")

ALICE = Caller(user_id="alice", org_id="acme")
API_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod"
BASE = "qwen2.5-0.5b-instruct"


def through_lambda(request: httpx.Request) -> httpx.Response:
    """The request as API Gateway passes it to the handler, with the authorizer's claims."""
    return handled(request, {"claims": claims_for(ALICE)})


def through_the_authorizer(request: httpx.Request) -> httpx.Response:
    """The request as API Gateway passes it on with the Lambda authorizer: 401 when the
    authorizer refuses its key, else to the handler with the authorizer's context."""
    token = {
        "type": "TOKEN",
        "authorizationToken": request.headers.get("authorization", ""),
        "methodArn": f"{API_ARN}/{request.method}{request.url.path}",
    }
    try:
        allowed = authorizer.handler(token)
    except PermissionError:
        return httpx.Response(401, json={"message": "Unauthorized"})
    return handled(request, {**allowed["context"], "principalId": allowed["principalId"]})


def handled(request: httpx.Request, authorizer_context: dict[str, Any]) -> httpx.Response:
    headers = {name.lower(): value for name, value in request.headers.items()}
    path = request.url.raw_path.decode()
    event = build_proxy_event(request.method, path, headers, request.read(), "127.0.0.1")
    event["requestContext"]["stage"] = "prod"
    event["requestContext"]["authorizer"] = authorizer_context
    answer = handler(event, None)
    raw = answer.get("body") or ""
    body = base64.b64decode(raw) if answer.get("isBase64Encoded") else raw.encode()
    response_headers = dict(answer.get("headers") or {})
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        response_headers[name] = values[-1]
    return httpx.Response(answer["statusCode"], headers=response_headers, content=body)


@pytest.fixture
def client(aws_platform: Platform) -> Any:
    http = httpx.Client(transport=httpx.MockTransport(through_lambda))
    return openai.OpenAI(
        base_url="https://api.example.com/v1", api_key="key", http_client=http, max_retries=0
    )


def training_file(client: Any) -> str:
    return str(client.files.create(file=("train.jsonl", chat_rows()), purpose="fine-tune").id)


def test_on_aws_a_job_is_created_listed_retrieved_and_cancelled(client: Any) -> None:
    # Given a file uploaded through the Lambda
    file_id = training_file(client)

    # When a job is created on it
    job = client.fine_tuning.jobs.create(model=BASE, training_file=file_id, suffix="a")

    # Then it is listed and read back, and a cancel ends it
    assert job.status == "validating_files" and job.training_file == file_id
    assert [j.id for j in client.fine_tuning.jobs.list().data] == [job.id]
    assert client.fine_tuning.jobs.retrieve(job.id).suffix == "a"
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-00000000000000000000")


@pytest.mark.parametrize("asked", ["fine-tuned", "base"])
def test_on_aws_a_model_not_deployed_is_refused_naming_the_deploy_command(
    client: Any, aws_platform: Platform, asked: str
) -> None:
    # Given a completed LoRA job on BASE whose model nobody deployed
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training_file(client))
    train(aws_platform, job.id)
    complete(aws_platform, job.id)
    model = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model

    # When the client asks its fine-tuned model, or its base, for a chat completion
    with pytest.raises(openai.ConflictError) as refused:
        client.chat.completions.create(
            model=model if asked == "fine-tuned" else BASE,
            messages=[{"role": "user", "content": "hi"}],
        )

    # Then it is refused, saying how to deploy it (a deployment would serve the base too)
    assert f"whet jobs deploy {job.id}" in refused.value.message
    assert refused.value.code == "model_not_deployed"


def keyed_client(api_key: str) -> Any:
    http = httpx.Client(transport=httpx.MockTransport(through_the_authorizer))
    return openai.OpenAI(
        base_url="https://api.example.com/v1", api_key=api_key, http_client=http, max_retries=0
    )


def test_on_aws_an_api_key_reaches_v1_through_the_authorizer_and_a_wrong_one_is_401(
    aws_platform: Platform,
) -> None:
    # Given a key a signed-in user of acme created (kept hashed), and a job of acme
    authorizer.key_store.cache_clear()
    created = call_api("POST", f"{API_PREFIX}/api-keys", json_body={"name": "ci"}, caller=ALICE)
    assert created.status == 201, created.body
    client = keyed_client(created.body["secret"])
    file = client.files.create(file=("train.jsonl", chat_rows()), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=file.id)

    # When the official client sends the key, then the job is listed as acme's
    assert [j.id for j in client.fine_tuning.jobs.list().data] == [job.id]
    assert client.fine_tuning.jobs.retrieve(job.id).status == "validating_files"

    # When it sends a key that is no key, then API Gateway's 401 raises AuthenticationError
    with pytest.raises(openai.AuthenticationError):
        keyed_client("whet_" + "x" * 40).fine_tuning.jobs.list()
