"""An OpenAI fine-tuning script run against `whet serve`, changing only base_url and
api_key: a supervised job on a tiny model trains to succeeded with events and checkpoints,
another is cancelled, and the fine-tuned model answers chat completions, streamed too; a dpo
job on OpenAI's preference format succeeds; a paused job resumes from its step."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.openai_jobs import chat_rows, preference_rows

from whetstone.cli.server import make_server
from whetstone.cli.tokens import TokenFile, create_token
from whetstone.core.job import Caller
from whetstone.settings import get_settings

pytest.importorskip("torch")
openai = pytest.importorskip("openai")

pytestmark = pytest.mark.slow
WAIT_S = 420
ENDED = ("succeeded", "failed", "cancelled")
# Whetstone's extension (extra_body): a short run on CPU that keeps checkpoints.
SHORT_RUN = {
    "lora": {"target_modules": "all-linear"},
    "dataset": {"cutoff_length": 128},
    "training": {"learning_rate": 1e-3, "max_sequence_length": 128, "warmup_steps": 0},
    "advanced": {"logging_steps": 2, "eval_steps": 10, "save_steps": 10, "dataloader_workers": 0},
    "hardware": {"gpu_type": "nvidia-l4"},
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from whetstone.inference.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def client() -> Iterator[Any]:
    token = create_token(get_settings().home, Caller(user_id="alice", org_id="acme"))
    server = make_server("127.0.0.1", 0, TokenFile(get_settings().home))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=600)
    server.shutdown()
    server.server_close()


def wait_until_ended(client: Any, job_id: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ENDED:
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not end in {WAIT_S}s: {job}")


def test_an_openai_script_fine_tunes_and_chats_with_a_tiny_model(
    client: Any, tiny_model: Path
) -> None:
    # Given a training file uploaded as OpenAI's client does
    file = client.files.create(file=("train.jsonl", chat_rows()), purpose="fine-tune")

    # When a supervised job is created on it, and another is cancelled
    job = client.fine_tuning.jobs.create(
        model=str(tiny_model),
        training_file=file.id,
        hyperparameters={"n_epochs": 1, "batch_size": 4},
        suffix="tiny",
        extra_body={"whetstone": SHORT_RUN},
    )
    other = client.fine_tuning.jobs.create(
        model=str(tiny_model), training_file=file.id, extra_body={"whetstone": SHORT_RUN}
    )
    assert client.fine_tuning.jobs.cancel(other.id).status == "cancelled"

    # Then the first succeeds with its model, its events and its checkpoints
    done = wait_until_ended(client, job.id)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == f"ft:{tiny_model}:acme:tiny:{job.id}"
    assert done.trained_tokens and done.trained_tokens > 0
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    assert any(e.type == "metrics" and "train_loss" in e.data for e in events)
    assert any("completed" in e.message for e in events)
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoints and all(c.fine_tuning_job_id == job.id for c in checkpoints)
    assert wait_until_ended(client, other.id).status == "cancelled"

    # And the fine-tuned model answers: deployed on first use, then streamed alike
    question = [{"role": "user", "content": "Say 3"}]
    model = done.fine_tuned_model
    answer = client.chat.completions.create(model=model, messages=question, max_tokens=5)
    assert answer.model == model and answer.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(
        model=model, messages=question, max_tokens=5, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == answer.choices[0].message.content  # greedy: the same answer

    # And deleting the model stops its server and removes it from the list
    assert client.models.delete(model).deleted
    assert model not in [m.id for m in client.models.list()]


def test_a_dpo_job_on_openai_preference_pairs_trains_to_succeeded(
    client: Any, tiny_model: Path
) -> None:
    # Given a preference file in OpenAI's format
    file = client.files.create(file=("pairs.jsonl", preference_rows()), purpose="fine-tune")

    # When a dpo job is created on it with its beta
    dpo = {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 1}}}
    job = client.fine_tuning.jobs.create(
        model=str(tiny_model),
        training_file=file.id,
        method=dpo,
        suffix="pref",
        extra_body={"whetstone": SHORT_RUN},
    )

    # Then it succeeds as a dpo job, with its steps logged as events
    done = wait_until_ended(client, job.id)
    assert done.status == "succeeded", done.error
    assert done.method.type == "dpo" and done.method.dpo.hyperparameters.beta == 0.2
    assert done.fine_tuned_model == f"ft:{tiny_model}:acme:pref:{job.id}"
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    assert any(e.type == "metrics" and "train_loss" in e.data for e in events)


def paused_event(client: Any, job_id: str) -> Any:
    """The job's `Job paused` event, once its trainer has stopped and its checkpoint is kept."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        events = client.fine_tuning.jobs.list_events(job_id, limit=100).data
        found = [e for e in events if e.message.startswith("Job paused")]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not pause in {WAIT_S}s")


def test_a_job_paused_through_the_client_resumes_from_its_step_and_succeeds(
    client: Any, tiny_model: Path
) -> None:
    # Given a supervised job running with a checkpoint saved
    file = client.files.create(file=("train.jsonl", chat_rows(240)), purpose="fine-tune")
    advanced = {**SHORT_RUN["advanced"], "eval_steps": 4, "save_steps": 4}
    frequent_saves = {**SHORT_RUN, "advanced": advanced}
    job = client.fine_tuning.jobs.create(
        model=str(tiny_model),
        training_file=file.id,
        hyperparameters={"n_epochs": 1, "batch_size": 4},
        extra_body={"whetstone": frequent_saves},
    )
    deadline = time.monotonic() + WAIT_S
    while not client.fine_tuning.jobs.checkpoints.list(job.id).data:
        assert time.monotonic() < deadline, "no checkpoint saved"
        time.sleep(0.5)

    # When it is paused, then it reads paused with its checkpoint kept
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    paused_at = paused_event(client, job.id).created_at
    assert client.fine_tuning.jobs.retrieve(job.id).status == "paused"
    checkpoint_step = client.fine_tuning.jobs.checkpoints.list(job.id).data[0].step_number

    # When it is resumed, then it succeeds
    assert client.fine_tuning.jobs.resume(job.id).status in ("queued", "running")
    done = wait_until_ended(client, job.id)
    assert done.status == "succeeded", done.error
    # And the resumed trainer went on from the checkpoint's step, not from step 0
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    steps = [e.data for e in events if e.type == "metrics" and e.created_at > paused_at]
    assert steps and min(s["step"] for s in steps) > checkpoint_step
    assert max(s["step"] for s in steps) == steps[0]["total_steps"]
