"""Training files for /v1, and moving a job created there along its lifecycle as its trainer
would report it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from whetstone.core.job import Artifacts, Checkpoint, MetricPoint, Progress, utcnow
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.platform import Platform
from whetstone.service.records import transition, update_job

STEPS = 4
BASE = "qwen2.5-0.5b-instruct"


def chat_rows(count: int = 120) -> bytes:
    """A training file in OpenAI's chat format."""
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Say {i}"},
                {"role": "assistant", "content": f"{i}"},
            ]
        }
        for i in range(count)
    ]
    return "\n".join(json.dumps(row) for row in rows).encode()


def preference_rows(count: int = 120) -> bytes:
    """A preference file in OpenAI's format (input / preferred_output / non_preferred_output)."""
    rows = [
        {
            "input": {"messages": [{"role": "user", "content": f"Say {i}"}]},
            "preferred_output": [{"role": "assistant", "content": f"{i}"}],
            "non_preferred_output": [{"role": "assistant", "content": f"no {i + 1}"}],
        }
        for i in range(count)
    ]
    return "\n".join(json.dumps(row) for row in rows).encode()


def train(platform: Platform, job_id: str) -> None:
    """To training, with a loss at each of STEPS steps and a checkpoint at steps 2 and 4."""
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job_id, status)
    now = utcnow()
    points = [
        MetricPoint(name="loss", step=step, value=2.0 / step, time=now + timedelta(seconds=step))
        for step in range(1, STEPS + 1)
    ]
    platform.jobs.put_metrics(job_id, points)
    checkpoints = [
        Checkpoint(step=step, epoch=step / STEPS, location=f"checkpoint-{step}", at=now)
        for step in (2, STEPS)
    ]
    progress = Progress(step=STEPS, max_steps=STEPS, epoch=1.0, fraction=1.0)
    update_job(
        platform,
        job_id,
        lambda job: job.model_copy(
            update={
                "checkpoints": checkpoints,
                "progress": progress,
                "latest_metrics": {"loss": 0.5},
            }
        ),
    )


def complete(platform: Platform, job_id: str) -> None:
    """To completed, with its output recorded as the workflow records it."""
    job = transition(platform, job_id, JobStatus.COMPLETED, "training finished")
    location = platform.blobs.uri(JobLayout.of(job).output)
    update_job(
        platform,
        job_id,
        lambda current: current.model_copy(update={"artifacts": Artifacts(location=location)}),
    )


def upload(client: Any, data: bytes | None = None) -> Any:
    """A training file uploaded with the `openai` client."""
    return client.files.create(file=("train.jsonl", data or chat_rows()), purpose="fine-tune")


def create_job(client: Any, **options: Any) -> Any:
    """A job of the `openai` client on BASE."""
    file = upload(client)
    return client.fine_tuning.jobs.create(model=BASE, training_file=file.id, **options)


def succeeded_with_a_model(client: Any) -> tuple[Any, str]:
    """A job trained to succeeded whose model can be served, and its model's name."""
    job = create_job(client)
    train(get_platform(), job.id)
    complete(get_platform(), job.id)
    template = JobLayout("acme", job.id).model + "chat_template.jinja"
    get_platform().blobs.put(template, b"{{ messages }}")
    return job, str(client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model)


def openai_client(server_url: str, token: str) -> Any:
    """The official `openai` client of `whet serve`'s /v1 routes, signed in with `token`."""
    import openai

    return openai.OpenAI(base_url=f"{server_url}/v1", api_key=token, max_retries=0)
