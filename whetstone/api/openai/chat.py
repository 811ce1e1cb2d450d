"""Chat completions of a fine-tuned model, answered by the job's deployment, or of a base
model, answered by a deployment serving it too (base_models.py).

Local: a fine-tuned model not being served is deployed on its first request, which waits (at
most START_WAIT_S) until the server is ready. aws: a model is served only once deployed
(`whet jobs deploy`); a request before that is refused saying so. docs/openai-api.md.
"""

from __future__ import annotations

import json
import time
import urllib.error
from typing import Annotated, Any

from pydantic import Field

from whetstone.api.openai.base_models import base_deployment
from whetstone.api.openai.models import fine_tuned_job, is_fine_tuned
from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import ConflictError, InvalidInputError, TransientError
from whetstone.core.job import Caller, Deployment, JobRecord
from whetstone.service import deployments
from whetstone.service.platform import Platform
from whetstone.service.serving_requests import post_json

START_WAIT_S = 300.0
POLL_S = 1.0
BACKEND_TIMEOUT_S = 300.0


class BackendAnswer(Exception):
    """The deployment refused the request: its status and OpenAI-shaped body, passed on."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status, self.body = status, body


def _deployment(platform: Platform, caller: Caller, job: JobRecord) -> Deployment | None:
    if job.deployment is None or not job.deployment.is_live:
        return None
    return deployments.get_deployment(platform, caller, job.job_id)


def _not_deployed(job: JobRecord) -> ConflictError:
    return ConflictError(
        f"the model of job {job.job_id} is not deployed; deploy it with `whet jobs deploy "
        f"{job.job_id}` (POST /api/v1/fine-tuning/jobs/{job.job_id}/deploy) and retry once "
        "it is ready",
        code="model_not_deployed",
    )


def ready_deployment(platform: Platform, caller: Caller, job: JobRecord) -> Deployment:
    """The job's ready deployment; in the local runtime started now when there is none."""
    current = _deployment(platform, caller, job)
    if current is None:
        if platform.settings.runtime != "local":
            raise _not_deployed(job)
        try:
            deployments.deploy(platform, caller, job.job_id)
        except ConflictError as error:
            if error.code != "already_deployed":  # another first request started it: wait
                raise
    deadline = time.monotonic() + START_WAIT_S
    while True:
        current = deployments.get_deployment(platform, caller, job.job_id)
        if current.status == "ready" and current.endpoint:
            return current
        if not current.is_live:
            raise ConflictError(
                f"the model of job {job.job_id} could not be served: {current.message}",
                code="deployment_failed",
            )
        if platform.settings.runtime != "local" or time.monotonic() >= deadline:
            raise TransientError(
                f"the model of job {job.job_id} is still starting ({current.message or 'loading'})"
            )
        time.sleep(POLL_S)


def _post(backend: BackendRequest) -> dict[str, Any]:
    try:
        return post_json(backend.url, backend.body, backend.headers, timeout_s=BACKEND_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise BackendAnswer(error.code, error.read().decode(errors="replace")) from error
    except OSError as error:
        raise TransientError(f"the model's server did not answer: {error}") from error


class BackendRequest(DeferredModel):
    """The request to a model's server that answers a chat completion."""

    url: Annotated[str, Field(description="The ready deployment's chat completions URL.")]
    headers: Annotated[dict[str, str], Field(description="The headers to send it.")]
    body: Annotated[dict[str, Any], Field(description="The request with the served model's name.")]
    model: Annotated[str, Field(description="The model's name as asked for, to answer with.")]


def backend_request(platform: Platform, caller: Caller, body: dict[str, Any]) -> BackendRequest:
    """The request to the server of the model `body` names (a fine-tuned model's ready
    deployment, or a ready deployment serving the base model named), `body` as that server
    takes it."""
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(
            "model: name a fine-tuned model (ft:...) or a base model",
            code="invalid_value",
            details=[{"loc": "model", "message": "required"}],
        )
    if is_fine_tuned(name):
        job = fine_tuned_job(platform, caller, name)
        deployment = ready_deployment(platform, caller, job)
        served = deployment.model
    else:
        job, deployment, served = base_deployment(platform, caller, name)
    return BackendRequest(
        url=f"{deployment.endpoint}/chat/completions",
        headers={
            "content-type": "application/json",
            **deployments.request_headers(
                platform, job.model_copy(update={"deployment": deployment})
            ),
        },
        body={**body, "model": served},
        model=name,
    )


def complete(platform: Platform, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """The chat completion of `body` by the fine-tuned model it names (not streamed)."""
    backend = backend_request(platform, caller, body)
    backend.body.pop("stream", None)
    backend.body.pop("stream_options", None)
    answer = _post(backend)
    return {**answer, "model": backend.model}


def as_stream(completion: dict[str, Any]) -> str:
    """A completion as OpenAI's server-sent chunks, after the fact (where the answer cannot
    be relayed as it comes: the Lambda): the message's content in one chunk, then the finish
    reason with the usage, then [DONE]."""
    base = {key: completion[key] for key in ("id", "created", "model")}
    base["object"] = "chat.completion.chunk"
    chunks = []
    for choice in completion.get("choices", []):
        message = choice.get("message") or {}
        delta = {"role": "assistant", "content": message.get("content") or ""}
        chunks.append(
            {**base, "choices": [{"index": choice["index"], "delta": delta, "finish_reason": None}]}
        )
        last = {"index": choice["index"], "delta": {}, "finish_reason": choice["finish_reason"]}
        chunks.append({**base, "choices": [last]})
    chunks.append({**base, "choices": [], "usage": completion.get("usage")})
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
