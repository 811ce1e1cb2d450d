"""/v1/chat/completions with a base model, through `whet serve` and the official `openai`
client: answered by a ready deployment of the caller's organization whose server also serves
that base, streamed or not; refused 409 when none does (never deployed for it), and never by
another organization's deployment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.openai_jobs import BASE, openai_client, succeeded_with_a_model
from support.platform import use_ports
from support.serving import ServingDeployer

from whetstone.api.openai import base_models
from whetstone.core.job import Caller, JobFilter
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
