"""A completed job's adapter served locally: deployed over the REST API, asked with the
official `openai` client, stopped by DELETE (of the deployment or of the job)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.http import is_running, request
from support.jobs import make_job
from support.platform import use_ports
from support.serving import build_base, completed_job, write_adapter

from whetstone.adapters.local.process_deployer import ProcessDeployer
from whetstone.cli.server import make_server
from whetstone.cli.tokens import TokenFile, create_token
from whetstone.core.job import Caller
from whetstone.core.layout import JobLayout
from whetstone.core.serving import GOLDEN_MAX_TOKENS
from whetstone.runtime import get_platform
from whetstone.settings import get_settings

pytest.importorskip("torch")
openai = pytest.importorskip("openai")

API = "/api/v1/fine-tuning"
ALICE = Caller(user_id="alice", org_id="acme")
READY_WAIT_S = 120


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="module")
def adapter(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_adapter(base, tmp_path_factory.mktemp("adapter"))


@pytest.fixture
def api() -> Iterator[tuple[str, str]]:
    """(base URL, alice's token) of a `whet serve` on a free port."""
    home = get_settings().home
    token = create_token(home, ALICE)
    server = make_server("127.0.0.1", 0, TokenFile(home))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}{API}", token
    server.shutdown()
    server.server_close()


def call(method: str, url: str, token: str) -> tuple[int, Any]:
    return request(method, url, token=token)


def wait_until_settled(url: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + READY_WAIT_S
    while True:
        status, deployment = call("GET", url, token)
        assert status == 200, deployment
        if deployment["status"] != "starting" or time.monotonic() > deadline:
            return dict(deployment)
        time.sleep(0.5)


def server_pid(job_id: str) -> int:
    """The model server's process id, a storage field the API does not show."""
    stored = get_platform().jobs.get(job_id)
    assert stored is not None and stored.deployment is not None and stored.deployment.pid
    return stored.deployment.pid


def test_a_deployed_adapter_answers_the_openai_client_until_its_deployment_is_deleted(
    api: tuple[str, str], adapter: Path
) -> None:
    url, token = api
    job = completed_job(get_platform(), ALICE.org_id, adapter)

    status, started = call("POST", f"{url}/jobs/{job.job_id}/deploy", token)
    assert status == 202 and started["status"] == "starting", started
    pid = server_pid(job.job_id)
    deployment = wait_until_settled(f"{url}/jobs/{job.job_id}/deployment", token)
    assert deployment["status"] == "ready", deployment

    with pytest.raises(openai.AuthenticationError):  # the server requires a key or a token
        openai.OpenAI(base_url=deployment["endpoint"], api_key="unused").models.list()
    client = openai.OpenAI(base_url=deployment["endpoint"], api_key=token, max_retries=0)
    assert [m.id for m in client.models.list()] == [job.job_id, job.spec.base_model]
    chat = client.chat.completions.create(
        model=job.job_id,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=5,
    )
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage is not None and 1 <= chat.usage.completion_tokens <= 5
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
    again = client.chat.completions.create(
        model=job.job_id,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=5,
    )
    assert again.choices[0].message.content == chat.choices[0].message.content  # greedy
    completion = client.completions.create(model=job.job_id, prompt="zero one two", max_tokens=3)
    assert completion.usage is not None and completion.usage.completion_tokens <= 3
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="another-model", messages=[{"role": "user", "content": "hi"}]
        )

    status, _ = call("DELETE", f"{url}/jobs/{job.job_id}/deployment", token)
    assert status == 204
    assert not is_running(pid)
    status, after = call("GET", f"{url}/jobs/{job.job_id}/deployment", token)
    assert status == 200 and after["status"] == "deleted" and after["endpoint"] is None


def test_a_deployed_adapter_answers_its_base_model_through_the_api(
    api: tuple[str, str], adapter: Path, base: Path
) -> None:
    # Given a deployed LoRA job, ready
    url, token = api
    job = completed_job(get_platform(), ALICE.org_id, adapter)
    call("POST", f"{url}/jobs/{job.job_id}/deploy", token)
    deployment = wait_until_settled(f"{url}/jobs/{job.job_id}/deployment", token)
    assert deployment["status"] == "ready" and deployment["base_model"] == job.spec.base_model

    # When the API's /v1 is asked for the job's base model
    client = openai.OpenAI(base_url=url.removesuffix(API) + "/v1", api_key=token, max_retries=0)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    as_base = client.chat.completions.create(
        model=job.spec.base_model,
        messages=messages,
        max_tokens=8,  # type: ignore[arg-type]
    )
    call("DELETE", f"{url}/jobs/{job.job_id}/deployment", token)

    # Then it answers in the base's name as the base model alone does, unlike the adapter
    from whetstone.inference.generation import ChatModel

    answers = []
    for folder in (base, adapter):
        alone = ChatModel.load(folder)
        answers.append(alone.generate(alone.chat_prompt(messages), max_tokens=8).text)
    assert as_base.model == job.spec.base_model
    assert as_base.choices[0].message.content == answers[0] != answers[1]


def test_a_server_that_answers_unlike_the_trainers_record_is_refused(
    api: tuple[str, str], adapter: Path
) -> None:
    url, token = api
    platform = get_platform()
    job = completed_job(platform, ALICE.org_id, adapter)
    record = {"messages": [], "max_tokens": GOLDEN_MAX_TOKENS, "answer": "not what it says"}
    platform.blobs.put(JobLayout.of(job).golden, json.dumps(record).encode())

    status, started = call("POST", f"{url}/jobs/{job.job_id}/deploy", token)
    assert status == 202, started
    pid = server_pid(job.job_id)
    deployment = wait_until_settled(f"{url}/jobs/{job.job_id}/deployment", token)

    assert deployment["status"] == "failed", deployment
    assert [p["code"] for p in deployment["problems"]] == ["golden_mismatch"]
    assert "not what it says" in deployment["message"]
    assert not is_running(pid)


def test_deleting_a_job_stops_its_model_server(api: tuple[str, str], adapter: Path) -> None:
    url, token = api
    job = completed_job(get_platform(), ALICE.org_id, adapter)
    status, started = call("POST", f"{url}/jobs/{job.job_id}/deploy", token)
    assert status == 202, started
    pid = server_pid(job.job_id)

    status, _ = call("DELETE", f"{url}/jobs/{job.job_id}", token)

    assert status == 204
    assert not is_running(pid)
    assert call("GET", f"{url}/jobs/{job.job_id}/deployment", token)[0] == 404


def test_a_job_that_has_not_completed_cannot_be_deployed(api: tuple[str, str]) -> None:
    url, token = api
    job = make_job(ALICE.org_id)
    get_platform().jobs.create(job)

    status, body = call("POST", f"{url}/jobs/{job.job_id}/deploy", token)

    assert status == 409 and body["code"] == "job_not_completed"


def test_an_adapter_above_the_max_lora_rank_is_refused_before_anything_starts(
    api: tuple[str, str], base: Path, tmp_path: Path
) -> None:
    url, token = api
    job = completed_job(get_platform(), ALICE.org_id, write_adapter(base, tmp_path, r=32))

    status, body = call("POST", f"{url}/jobs/{job.job_id}/deploy", token)

    assert status == 422 and body["code"] == "not_servable"
    assert "rank r=32" in body["message"] and "max_lora_rank=16" in body["message"]
    assert "retrain with lora.r <= 16, or deploy with max_lora_rank=32" in body["message"]
    assert [p["code"] for p in body["details"]] == ["lora_rank_too_high"]
    assert call("GET", f"{url}/jobs/{job.job_id}/deployment", token)[0] == 404


def test_an_endpoint_that_answers_unlike_the_saved_model_fails_with_a_report(
    api: tuple[str, str], adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = api
    platform = use_ports(
        monkeypatch,
        deployer=ProcessDeployer(
            tmp_path / "run", golden_answer=lambda model_dir, base: "an answer it will not give"
        ),
    )
    job = completed_job(platform, ALICE.org_id, adapter)

    status, started = call("POST", f"{url}/jobs/{job.job_id}/deploy", token)
    assert status == 202, started
    pid = server_pid(job.job_id)
    deployment = wait_until_settled(f"{url}/jobs/{job.job_id}/deployment", token)

    assert deployment["status"] == "failed"
    assert [p["code"] for p in deployment["problems"]] == ["golden_mismatch"]
    assert "'an answer it will not give'" in deployment["message"]
    assert not is_running(pid)
