"""/v1/chat/completions with a base model, through `whet serve` and the official `openai`
client: answered by a ready deployment of the caller's organization whose server also serves
that base, streamed or not; 503 to retry, as a fine-tuned model, while one only starts;
refused 409 when none does (never deployed for it), and never by another organization's
deployment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.openai_jobs import BASE, openai_client, succeeded_with_a_model
from support.platform import use_ports
from support.serving import ServingDeployer

from whetstone.api.openai import base_models, chat
from whetstone.core.job import Caller, Deployment, DeploymentStatus, JobFilter, utcnow
from whetstone.inference.generation import Generation
from whetstone.runtime import get_platform
from whetstone.service import deployments
from whetstone.service import jobs as job_service

openai = pytest.importorskip("openai")

ALICE = Caller(user_id="alice", org_id="acme")
HI = [{"role": "user", "content": "hi"}]


class _TwoFacedModel:
    """A stand-in for an adapter's ChatModel: says which weights answered."""

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return messages[-1]["content"]

    def generate(self, prompt: str, *, base: bool = False, **options: Any) -> Generation:
        return Generation("the base answers" if base else "the adapter answers", 1, 3, "stop")

    def stream(self, prompt: str, **options: Any) -> Iterator[str | Generation]:
        generation = self.generate(prompt, **options)
        yield generation.text
        yield generation


@pytest.fixture
def deployer(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServingDeployer]:
    serving = ServingDeployer(_TwoFacedModel())
    use_ports(monkeypatch, deployer=serving)
    yield serving
    serving.stop_all()


@pytest.fixture
def client(server_url: str, tokens: dict[str, str]) -> Any:
    return openai_client(server_url, tokens["alice"])


def _deployed(client: Any) -> tuple[Any, str]:
    job, model = succeeded_with_a_model(client)
    deployments.deploy(get_platform(), ALICE, job.id)
    return job, model


def _recorded(job_id: str, status: DeploymentStatus) -> None:
    """The job's deployment of BASE recorded in `status`, as its deployer left it."""
    now = utcnow()
    deployment = Deployment(
        status=status,
        model=job_id,
        base_model=BASE,
        endpoint="http://127.0.0.1:9/v1",
        max_lora_rank=8,
        created_at=now,
        updated_at=now,
        message="loading the model",
    )
    deployments.save_deployment(get_platform(), job_id, deployment)


def test_a_base_model_is_answered_by_a_deployment_that_serves_it(
    client: Any, deployer: ServingDeployer
) -> None:
    # Given a deployed LoRA job on BASE, its server answering its base too
    _, model = _deployed(client)
    deployment = job_service.all_jobs(get_platform(), ALICE, JobFilter())[0].deployment
    assert deployment is not None and deployment.base_model == BASE

    # When the client chats with the fine-tuned model, with the base, and streams the base
    tuned = client.chat.completions.create(model=model, messages=HI)
    base = client.chat.completions.create(model=BASE, messages=HI)
    chunks = list(client.chat.completions.create(model=BASE, messages=HI, stream=True))

    # Then each is answered by its own weights, in the name it was asked by
    assert (tuned.model, tuned.choices[0].message.content) == (model, "the adapter answers")
    assert (base.model, base.choices[0].message.content) == (BASE, "the base answers")
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == "the base answers" and {c.model for c in chunks} == {BASE}


def test_a_base_without_a_ready_deployment_is_409_saying_how_to_deploy_one(
    client: Any, deployer: ServingDeployer
) -> None:
    # Given a succeeded LoRA job on BASE, never deployed
    job, _ = succeeded_with_a_model(client)

    # When the client chats with BASE
    with pytest.raises(openai.ConflictError) as refused:
        client.chat.completions.create(model=BASE, messages=HI)

    # Then it is refused naming the job to deploy, and nothing was deployed for it
    assert refused.value.body["code"] == "model_not_deployed"
    assert f"whet jobs deploy {job.id}" in refused.value.message
    assert "adapter method" in refused.value.message
    assert job_service.get_job(get_platform(), ALICE, job.id).deployment is None
    assert deployer.servers == {}


def test_another_organizations_deployment_never_answers_its_base(
    client: Any, server_url: str, tokens: dict[str, str], deployer: ServingDeployer
) -> None:
    # Given alice's deployed job serving BASE
    _deployed(client)
    bob = openai_client(server_url, tokens["bob"])

    # When bob, of another organization, chats with BASE, then he is refused
    with pytest.raises(openai.ConflictError) as refused:
        bob.chat.completions.create(model=BASE, messages=HI)
    assert refused.value.body["code"] == "model_not_deployed"
    assert "whet jobs deploy JOB" in refused.value.message


def test_only_the_newest_jobs_are_looked_at_and_the_refusal_says_so(
    client: Any, deployer: ServingDeployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an older deployed job on BASE and a newer one not deployed, and one job looked at
    _deployed(client)
    newer, _ = succeeded_with_a_model(client)
    monkeypatch.setattr(base_models, "MAX_JOBS_EXAMINED", 1)

    # When the client chats with BASE
    with pytest.raises(openai.ConflictError) as refused:
        client.chat.completions.create(model=BASE, messages=HI)

    # Then the older deployment was not read, and the refusal says how many jobs were
    assert f"whet jobs deploy {newer.id}" in refused.value.message
    assert "only your newest jobs were looked at, at most 1 completed" in refused.value.message


def test_a_base_whose_only_deployment_is_starting_answers_as_a_starting_fine_tuned_model(
    client: Any, deployer: ServingDeployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a succeeded LoRA job on BASE whose deployment is still starting, and no wait
    job, model = succeeded_with_a_model(client)
    _recorded(job.id, "starting")
    monkeypatch.setattr(chat, "START_WAIT_S", 0)

    # When the client chats with BASE, and with the job's fine-tuned model
    with pytest.raises(openai.InternalServerError) as base:
        client.chat.completions.create(model=BASE, messages=HI)
    with pytest.raises(openai.InternalServerError) as tuned:
        client.chat.completions.create(model=model, messages=HI)

    # Then BASE gets the fine-tuned model's answer: 503, its code and Retry-After, starting
    assert base.value.status_code == tuned.value.status_code == 503
    assert base.value.body["code"] == tuned.value.body["code"]
    retry_after = base.value.response.headers["retry-after"]
    assert retry_after == tuned.value.response.headers["retry-after"]
    assert f"job {job.id}, which is still starting (loading the model)" in base.value.message
    assert "whet jobs deploy" not in base.value.message


def test_a_ready_deployment_of_a_base_wins_over_a_newer_starting_one(
    client: Any, deployer: ServingDeployer
) -> None:
    # Given an older job on BASE deployed and ready, and a newer one whose deployment starts
    _deployed(client)
    newer, _ = succeeded_with_a_model(client)
    _recorded(newer.id, "starting")

    # When the client chats with BASE, then the ready deployment answers
    base = client.chat.completions.create(model=BASE, messages=HI)
    assert (base.model, base.choices[0].message.content) == (BASE, "the base answers")


def test_a_base_whose_deployment_failed_is_still_409_not_deployed(
    client: Any, deployer: ServingDeployer
) -> None:
    # Given a succeeded LoRA job on BASE whose deployment failed
    job, _ = succeeded_with_a_model(client)
    _recorded(job.id, "failed")

    # When the client chats with BASE, then it is refused naming the job to deploy
    with pytest.raises(openai.ConflictError) as refused:
        client.chat.completions.create(model=BASE, messages=HI)
    assert refused.value.body["code"] == "model_not_deployed"
    assert f"whet jobs deploy {job.id}" in refused.value.message


def test_a_base_deployment_recorded_starting_but_ready_by_now_answers(
    client: Any, deployer: ServingDeployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed job on BASE whose record still says starting, its server ready by now
    job, _ = _deployed(client)
    served = job_service.get_job(get_platform(), ALICE, job.id).deployment
    assert served is not None
    starting = served.model_copy(update={"status": "starting"})
    deployments.save_deployment(get_platform(), job.id, starting)
    monkeypatch.setattr(deployer, "status", lambda job: served)

    # When the client chats with BASE
    base = client.chat.completions.create(model=BASE, messages=HI)

    # Then the deployment, found ready, answers and is recorded ready
    assert base.choices[0].message.content == "the base answers"
    recorded = job_service.get_job(get_platform(), ALICE, job.id).deployment
    assert recorded is not None and recorded.status == "ready"
