"""The OpenAI-compatible /v1 routes through `whet serve` over real HTTP, driven by the
official `openai` client (jobs do not train here: the orchestrator records them)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.http import request
from support.jobs import make_job
from support.openai_jobs import (
    BASE,
    STEPS,
    chat_rows,
    complete,
    create_job,
    openai_client,
    succeeded_with_a_model,
    train,
    upload,
)
from support.platform import use_ports
from support.serving import ServingDeployer
from support.streaming import GatedModel, read_releasing

from whetstone.api.openai import chat
from whetstone.api.openai.jobs import new_job, to_openai
from whetstone.api.openai.schemas import (
    OpenAICreateJobRequest,
    OpenAIHyperparameters,
    OpenAIMethod,
    OpenAIMethodHyperparameters,
)
from whetstone.core.errors import ConflictError
from whetstone.core.job import Caller, Deployment, JobError, JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service import jobs as job_service
from whetstone.service.records import transition, update_job
from whetstone.settings import get_settings

openai = pytest.importorskip("openai")


def _alice() -> Caller:
    return Caller(user_id="alice", org_id="acme")


@pytest.fixture
def client(server_url: str, tokens: dict[str, str]) -> Any:
    return openai_client(server_url, tokens["alice"])


@pytest.fixture
def bob(server_url: str, tokens: dict[str, str]) -> Any:
    return openai_client(server_url, tokens["bob"])


def test_a_file_is_uploaded_listed_read_back_and_deleted(client: Any) -> None:
    # Given a training file uploaded with purpose fine-tune
    data = chat_rows()
    file = upload(client, data)

    # Then it is described as OpenAI does, listed, and its bytes come back whole
    assert file.object == "file" and file.id.startswith("file-")
    assert (file.filename, file.bytes, file.purpose) == ("train.jsonl", len(data), "fine-tune")
    assert (file.status, file.status_details) == ("processed", None)  # checked at upload
    assert [f.id for f in client.files.list()] == [file.id]
    assert client.files.retrieve(file.id).filename == "train.jsonl"
    assert client.files.content(file.id).read() == data

    # When it is deleted, it is gone
    deleted = client.files.delete(file.id)
    assert deleted.deleted and deleted.id == file.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file.id)


def test_a_file_for_another_purpose_is_refused_naming_the_field(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("batch.jsonl", chat_rows()), purpose="batch")
    assert refused.value.param == "purpose" and refused.value.code == "unsupported_purpose"


def test_a_created_job_reads_as_openais_fine_tuning_job(client: Any) -> None:
    # Given a file, when a job is created with hyperparameters, a seed and a suffix
    file = upload(client)
    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=file.id,
        hyperparameters={"n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 0.5},
        seed=7,
        suffix="greeter",
    )

    # Then it is shaped as OpenAI's, with its settings mapped to and from the job spec
    assert job.object == "fine_tuning.job" and job.id.startswith("ftjob-")
    assert (job.status, job.model, job.training_file) == ("validating_files", BASE, file.id)
    assert (job.seed, job.suffix, job.fine_tuned_model) == (7, "greeter", None)
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == 2
    assert job.hyperparameters.learning_rate_multiplier == pytest.approx(0.5)
    assert job.method is not None and job.method.type == "supervised"
    spec = job_service.get_job(get_platform(), _alice(), job.id).spec
    assert (spec.training.epochs, spec.training.batch_size, spec.advanced.seed) == (2, 2, 7)
    assert spec.training.learning_rate == pytest.approx(1e-4)
    assert client.fine_tuning.jobs.retrieve(job.id).id == job.id


def test_an_openai_model_name_trains_the_base_model_its_alias_names(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator who maps OpenAI's model name to a base model of this platform
    monkeypatch.setenv(
        "WHETSTONE_OPENAI_MODEL_ALIASES", json.dumps({"gpt-4o-mini-2024-07-18": BASE})
    )
    get_settings.cache_clear()
    get_platform.cache_clear()

    # When an unchanged OpenAI script creates a job for that name
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=upload(client).id
    )

    # Then the job trains the aliased base model
    assert job.model == BASE
    assert job_service.get_job(get_platform(), _alice(), job.id).spec.base_model == BASE


def test_a_dpo_method_becomes_a_dpo_job_with_its_beta_and_reads_back_so(client: Any) -> None:
    # Given a file (preference data is validated by the dpo method's own checks, not here)
    file = upload(client)
    request = OpenAICreateJobRequest(
        model=BASE,
        training_file=file.id,
        method=OpenAIMethod(
            type="dpo",
            dpo=OpenAIMethodHyperparameters(
                hyperparameters=OpenAIHyperparameters(beta=0.3, n_epochs=1)
            ),
        ),
    )

    # When the request is mapped to a Whetstone job
    spec = new_job(get_platform(), _alice(), request).spec

    # Then it is a dpo job with its beta, on preference data, and reads back as OpenAI's dpo
    assert (spec.method, spec.dpo.beta, spec.training.epochs) == ("dpo", 0.3, 1)
    assert spec.dataset.format == "preference"
    record = make_job("acme")
    method = to_openai(record.model_copy(update={"spec": spec})).method
    assert method.type == "dpo" and method.dpo is not None
    assert method.dpo.hyperparameters.beta == pytest.approx(0.3)


def test_a_file_failing_validation_is_kept_with_our_message_and_refuses_the_job(
    client: Any,
) -> None:
    # Given a file that is no dataset, uploaded
    file = upload(client, b"this is not json\nnor this\n")

    # Then it is kept, reading error with our report's message, as OpenAI's File says
    assert file.status == "error" and client.files.retrieve(file.id).status == "error"
    assert file.status_details.startswith("the dataset has ")

    # And a job on it is refused with that message
    with pytest.raises(openai.BadRequestError) as refused:
        client.fine_tuning.jobs.create(model=BASE, training_file=file.id)
    error = refused.value.body
    assert refused.value.status_code == 400 and error["type"] == "invalid_request_error"
    assert error["code"] == "dataset_invalid" and error["message"] == file.status_details


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"validation_file": "file-00000000000000000000"}, "validation_file"),
        ({"integrations": [{"type": "wandb", "wandb": {"project": "p"}}]}, "integrations"),
        ({"training_file": "file-00000000000000000000"}, "training_file"),
    ],
)
def test_what_whetstone_does_not_serve_is_refused_naming_the_field(
    client: Any, options: dict[str, Any], param: str
) -> None:
    file = upload(client)
    with pytest.raises(openai.BadRequestError) as refused:
        client.fine_tuning.jobs.create(model=BASE, **{"training_file": file.id, **options})
    assert refused.value.param == param


def test_jobs_are_listed_newest_first_a_page_after_another(client: Any) -> None:
    first, second, third = (create_job(client) for _ in range(3))

    page = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == [third.id, second.id] and page.has_more
    rest = client.fine_tuning.jobs.list(limit=2, after=second.id)
    assert [j.id for j in rest.data] == [first.id] and not rest.has_more


def test_a_trained_job_succeeds_with_events_checkpoints_and_a_model(client: Any) -> None:
    # Given a job that trained four steps, kept two checkpoints and completed
    job = create_job(client, suffix="demo")
    platform = get_platform()
    train(platform, job.id)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    complete(platform, job.id)

    # Then it has succeeded, naming its model
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded" and done.finished_at is not None
    assert done.fine_tuned_model == f"ft:{BASE}:acme:demo:{job.id}"

    # And its events hold the status changes and the loss of each step, newest first
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    metrics = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in metrics] == [4, 3, 2, 1]
    assert metrics[0].data["train_loss"] == pytest.approx(0.5)
    assert any("completed" in e.message for e in events)
    later = client.fine_tuning.jobs.list_events(job.id, limit=2, after=events[0].id)
    assert [e.id for e in later.data] == [e.id for e in events[1:3]]

    # And its checkpoints, newest first
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [STEPS, 2]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-4"

    # And its model is listed beside the catalog until deleted
    assert done.fine_tuned_model in [m.id for m in client.models.list()]
    assert client.models.retrieve(done.fine_tuned_model).owned_by == "acme"
    assert client.models.delete(done.fine_tuned_model).deleted
    assert done.fine_tuned_model not in [m.id for m in client.models.list()]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(done.fine_tuned_model)


class StartingDeployer:
    """A model server that never gets ready."""

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        now = utcnow()
        return Deployment(
            status="starting",
            model=job.job_id,
            endpoint="http://127.0.0.1:9/v1",
            max_lora_rank=max_lora_rank,
            created_at=now,
            updated_at=now,
            message="loading the model",
        )

    def status(self, job: JobRecord) -> Deployment:
        assert job.deployment is not None
        return job.deployment

    def stop(self, job: JobRecord) -> None:
        pass


def test_a_model_not_ready_within_the_wait_answers_503_and_keeps_starting(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a succeeded job, a model server that stays starting, and no time to wait
    use_ports(monkeypatch, deployer=StartingDeployer())
    monkeypatch.setattr(chat, "START_WAIT_S", 0)
    job, model = succeeded_with_a_model(client)

    # When the client asks the model, never deployed, for a chat completion
    with pytest.raises(openai.InternalServerError) as refused:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])

    # Then its deployment was started on first use, and the answer says it is still starting
    assert refused.value.status_code == 503 and "still starting" in refused.value.message
    deployment = job_service.get_job(get_platform(), _alice(), job.id).deployment
    assert deployment is not None and deployment.status == "starting"


def test_a_streamed_chat_completion_is_relayed_as_the_model_generates_it(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a succeeded job whose model streams its second piece only once the first is read
    deployer = ServingDeployer(GatedModel())
    use_ports(monkeypatch, deployer=deployer)
    _, model = succeeded_with_a_model(client)

    # When the client streams a chat completion through `whet serve`
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = read_releasing(stream, deployer.model)
    deployer.stop_all()

    # Then it had the first piece before the model generated the second, every chunk
    # answering with the fine-tuned model's name
    assert deployer.model.in_time is True
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello world"
    assert {c.model for c in chunks} == {model}


def test_a_model_neither_fine_tuned_nor_a_base_is_not_chatted_with(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert "fine-tuned models" in refused.value.message
    assert refused.value.body["code"] == "model_not_found"


def test_a_catalog_model_is_listed_and_cannot_be_deleted(client: Any) -> None:
    assert client.models.retrieve(BASE).id == BASE
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete(BASE)


def test_a_cancelled_job_reads_cancelled_and_cannot_be_cancelled_again(client: Any) -> None:
    job = create_job(client)

    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(job.id)


def test_a_failed_job_carries_its_error(client: Any) -> None:
    job = create_job(client)
    platform = get_platform()
    transition(platform, job.id, JobStatus.FAILED, "the dataset has no valid example")

    error = JobError(code="dataset_invalid", message="no valid example", step="preparing")
    update_job(platform, job.id, lambda j: j.model_copy(update={"error": error}))

    failed = client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.code, failed.error.message) == ("dataset_invalid", "no valid example")


def test_pause_and_resume_answer_the_job_as_the_service_leaves_it(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running job, and the pause service moving it to paused (the pause branch's)
    job = create_job(client)
    platform = get_platform()
    train(platform, job.id)

    def pause(platform: Any, caller: Any, job_id: str) -> Any:
        transition(platform, job_id, JobStatus.PAUSING)
        return transition(platform, job_id, JobStatus.PAUSED)

    def resume(platform: Any, caller: Any, job_id: str, **options: Any) -> Any:
        return transition(platform, job_id, JobStatus.DEPLOYING)

    monkeypatch.setattr(job_service, "pause_job", pause)
    monkeypatch.setattr(job_service, "resume_job", resume)

    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    assert client.fine_tuning.jobs.resume(job.id).status == "queued"


def test_a_refusal_of_the_service_keeps_its_status_and_message(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(platform: Any, caller: Any, job_id: str) -> Any:
        raise ConflictError("only a training job can pause", code="illegal_transition")

    monkeypatch.setattr(job_service, "pause_job", refuse)
    job = create_job(client)
    with pytest.raises(openai.ConflictError) as refused:
        client.fine_tuning.jobs.pause(job.id)
    assert refused.value.body == {
        "message": "only a training job can pause",
        "type": "invalid_request_error",
        "param": None,
        "code": "illegal_transition",
    }


def test_organizations_do_not_see_each_others_jobs_or_files(client: Any, bob: Any) -> None:
    job = create_job(client)
    with pytest.raises(openai.NotFoundError):
        bob.fine_tuning.jobs.retrieve(job.id)
    assert bob.fine_tuning.jobs.list().data == [] and bob.files.list().data == []


def test_a_wrong_api_key_is_refused_in_openais_shape(
    server_url: str, tokens: dict[str, str]
) -> None:
    forged = openai.OpenAI(base_url=f"{server_url}/v1", api_key="whet_forged", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        forged.fine_tuning.jobs.list()
    assert refused.value.body["type"] == "authentication_error"


def test_our_own_routes_keep_their_error_shape(server_url: str, tokens: dict[str, str]) -> None:
    status, body = request(
        "GET", f"{server_url}/api/v1/fine-tuning/jobs/ftjob-missing", token=tokens["alice"]
    )
    assert status == 404 and body["code"] == "job_not_found" and "error" not in body
