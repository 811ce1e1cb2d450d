"""The /v1 routes through the API Lambda's handler (aws runtime, on moto), driven by the
official `openai` client whose HTTP requests become API Gateway proxy events."""

from __future__ import annotations

import base64
from typing import Any

import httpx2 as httpx
import pytest
from support.openai_jobs import chat_rows, complete, train

from whetstone.api.app import handler
from whetstone.api.identity import claims_for
from whetstone.cli.server import build_proxy_event
from whetstone.core.job import Caller
from whetstone.service.platform import Platform

openai = pytest.importorskip("openai")

ALICE = Caller(user_id="alice", org_id="acme")
BASE = "qwen2.5-0.5b-instruct"


def through_lambda(request: httpx.Request) -> httpx.Response:
    """The request as API Gateway passes it to the handler, with the authorizer's claims."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    path = request.url.raw_path.decode()
    event = build_proxy_event(
        request.method, path, headers, request.read(), "127.0.0.1", claims_for(ALICE)
    )
    event["requestContext"]["stage"] = "prod"
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


def test_on_aws_a_model_not_deployed_is_refused_naming_the_deploy_command(
    client: Any, aws_platform: Platform
) -> None:
    # Given a completed job whose model nobody deployed

    job = client.fine_tuning.jobs.create(model=BASE, training_file=training_file(client))
    train(aws_platform, job.id)
    complete(aws_platform, job.id)
    model = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model

    # When the client asks it for a chat completion
    with pytest.raises(openai.ConflictError) as refused:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])

    # Then it is refused, saying how to deploy it
    assert f"whet jobs deploy {job.id}" in refused.value.message
    assert refused.value.code == "model_not_deployed"
