"""Deployment use cases: serve a completed job's model, report its readiness, stop it.

Before anything starts, the artifacts are checked against what the server can
serve (rank, target modules, chat template): a model that would serve unlike it
was trained is refused with what to change (422).
"""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from whetstone.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    TransientError,
)
from whetstone.core.job import Caller, Deployment, JobRecord, utcnow
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.serving import (
    GoldenRecord,
    ModelFacts,
    ServerRefused,
    ServingLimits,
    blocking,
    check_servable,
    vllm_limits,
)
from whetstone.observability import logger
from whetstone.ports import Deployer
from whetstone.service.jobs import get_job
from whetstone.service.platform import Platform
from whetstone.service.records import update_job
from whetstone.service.serving_requests import post_json

_TEMPLATE_FILE = "chat_template.jinja"
SERVER_TIMEOUT_S = 300.0
_TOKENIZER_CONFIG = "tokenizer_config.json"


def _deployer(platform: Platform) -> Deployer:
    if platform.deployer is None:
        raise ConflictError(
            f"the {platform.settings.runtime} runtime cannot serve models yet; download the "
            "model (GET .../download) and serve it yourself",
            code="deploy_unavailable",
        )
    return platform.deployer


@runtime_checkable
class KeyedServers(Protocol):
    """A deployer whose servers require a key on every request."""

    def request_headers(self, job: JobRecord) -> dict[str, str]:
        """The headers a request to the job's server carries (its key)."""


def request_headers(platform: Platform, job: JobRecord) -> dict[str, str]:
    """What the platform's own requests to the job's deployment must carry."""
    deployer = platform.deployer
    return deployer.request_headers(job) if isinstance(deployer, KeyedServers) else {}


@runtime_checkable
class ProxiedServers(Protocol):
    """A deployer whose servers the platform reaches through it, not at their endpoint
    (aws: through the Kubernetes API server's service proxy)."""

    def post(self, job: JobRecord, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to `path` under the server's /v1; its JSON answer."""


def post_to_server(
    platform: Platform, job: JobRecord, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST JSON to `path` under the /v1 of the job's deployment (job.deployment, ready),
    the way this runtime reaches it, with its key: the server's JSON answer.
    ServerRefused when the server refuses the request, TransientError when it does not answer."""
    deployer = platform.deployer
    if isinstance(deployer, ProxiedServers):
        return deployer.post(job, path, body)
    assert job.deployment is not None and job.deployment.endpoint is not None
    url, headers = job.deployment.endpoint + path, request_headers(platform, job)
    try:
        return post_json(url, body, headers, timeout_s=SERVER_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise ServerRefused(error.code, error.read().decode(errors="replace")) from error
    except OSError as error:
        raise TransientError(f"the model's server did not answer: {error}") from error


def _model_key(job: JobRecord) -> str:
    return JobLayout.of(job).model


def _read_json(platform: Platform, key: str) -> dict[str, Any] | None:
    if not platform.blobs.exists(key):
        return None
    with platform.blobs.open(key) as stream:
        data: dict[str, Any] = json.load(stream)
        return data


def _saved_template(platform: Platform, model_key: str) -> str | None:
    if platform.blobs.exists(model_key + _TEMPLATE_FILE):
        with platform.blobs.open(model_key + _TEMPLATE_FILE) as stream:
            return stream.read().decode()
    config = _read_json(platform, model_key + _TOKENIZER_CONFIG) or {}
    template = config.get("chat_template")
    return template if isinstance(template, str) else None


def _local_template(folder: Path) -> str | None:
    if (folder / _TEMPLATE_FILE).is_file():
        return (folder / _TEMPLATE_FILE).read_text()
    if (folder / _TOKENIZER_CONFIG).is_file():
        template = json.loads((folder / _TOKENIZER_CONFIG).read_text()).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def model_facts(platform: Platform, job: JobRecord) -> ModelFacts:
    """What the job's artifacts (and its base, when the base is a local folder) say."""
    model_key = _model_key(job)
    adapter = _read_json(platform, model_key + "adapter_config.json")
    base = str(adapter.get("base_model_name_or_path") or "") if adapter else job.spec.base_model
    base_folder = Path(base).expanduser() if base else None
    base_known = base_folder is not None and base_folder.is_dir()
    return ModelFacts(
        adapter_config=adapter,
        chat_template=_saved_template(platform, model_key),
        base_chat_template=_local_template(base_folder) if base_folder and base_known else None,
        base_known=base_known,
    )


def saved_golden_answer(platform: Platform, job: JobRecord) -> str | None:
    """The saved model's greedy answer to the golden prompt, as the trainer recorded it
    (beside the model); None when the trainer recorded none."""
    key = JobLayout.of(job).golden
    try:
        data = _read_json(platform, key)
        return GoldenRecord.model_validate(data).answer if data is not None else None
    except ValueError as error:  # a damaged record checks nothing, like a missing one
        logger.warning("golden record unreadable", job_id=job.job_id, error=str(error))
        return None


def save_deployment(platform: Platform, job_id: str, deployment: Deployment) -> JobRecord:
    """Record the job's deployment as it is now."""
    return update_job(
        platform, job_id, lambda job: job.model_copy(update={"deployment": deployment})
    )


def deploy(
    platform: Platform, caller: Caller, job_id: str, *, max_lora_rank: int | None = None
) -> Deployment:
    """Check the completed job's model, then start serving it (starting; ready once the
    golden prompt answers as the saved model does)."""
    job = get_job(platform, caller, job_id)
    deployer = _deployer(platform)
    if job.status is not JobStatus.COMPLETED:
        raise ConflictError(
            f"job {job_id} is {job.status}; only a completed job's model can be deployed",
            code="job_not_completed",
        )
    if job.deployment is not None and job.deployment.is_live:
        raise ConflictError(
            f"job {job_id} is already deployed ({job.deployment.status}); DELETE its "
            "deployment first to deploy it again",
            code="already_deployed",
        )
    rank = max_lora_rank or platform.settings.max_lora_rank
    # aws serves with vLLM; the local server loads what peft loads, within vLLM's other limits.
    limits = (
        vllm_limits(rank)
        if platform.settings.runtime == "aws"
        else ServingLimits(max_lora_rank=rank)
    )
    problems = check_servable(model_facts(platform, job), limits)
    errors = blocking(problems)
    if errors:
        raise InvalidInputError(
            "the model cannot be served as trained: " + "; ".join(p.message for p in errors),
            code="not_servable",
            details=[p.model_dump() for p in problems],
        )
    try:
        started = deployer.start(
            job,
            platform.blobs.uri(_model_key(job)),
            base_model=None,
            max_lora_rank=limits.max_lora_rank,
        )
    except Exception:
        deployer.stop(job)  # what a start that failed half-way created must not hold a GPU
        raise
    started = started.model_copy(update={"problems": problems})

    def record(current: JobRecord) -> JobRecord:
        if current.deployment is not None and current.deployment.is_live:
            raise ConflictError(f"job {job_id} was deployed meanwhile", code="already_deployed")
        return current.model_copy(update={"deployment": started})

    try:
        update_job(platform, job_id, record)
    except Exception:  # no record would point at the server: nothing could ever stop it
        deployer.stop(job.model_copy(update={"deployment": started}))
        raise
    return started


def _recorded(job: JobRecord) -> Deployment:
    if job.deployment is None:
        raise NotFoundError(f"job {job.job_id} has no deployment", code="deployment_not_found")
    return job.deployment


def get_deployment(platform: Platform, caller: Caller, job_id: str) -> Deployment:
    """The job's deployment, its readiness refreshed from the server."""
    job = get_job(platform, caller, job_id)
    recorded = _recorded(job)
    if not recorded.is_live:
        return recorded
    return refresh_deployment(platform, job, _deployer(platform))


def refresh_deployment(platform: Platform, job: JobRecord, deployer: Deployer) -> Deployment:
    """The job's live deployment as `deployer` finds it now (a failed server is cleaned up
    by the deployer), saved when its status or message moved."""
    recorded = _recorded(job)
    current = deployer.status(job)
    new = [p for p in current.problems if p not in recorded.problems]  # once, not per check
    current = current.model_copy(update={"problems": recorded.problems + new})
    if current.status != recorded.status or current.message != recorded.message:
        save_deployment(platform, job.job_id, current)
    return current


def delete_deployment(platform: Platform, caller: Caller, job_id: str) -> Deployment:
    """Stop serving the job's model; the record stays, deleted."""
    job = get_job(platform, caller, job_id)
    recorded = _recorded(job)
    if recorded.status == "deleted":
        return recorded
    return stop_deployment(platform, job, _deployer(platform), "deleted")


def stop_deployment(
    platform: Platform, job: JobRecord, deployer: Deployer, message: str
) -> Deployment:
    """Stop the job's server and record its deployment deleted, saying why."""
    deployer.stop(job)
    deleted = _recorded(job).model_copy(
        update={
            "status": "deleted",
            "pid": None,
            "endpoint": None,
            "updated_at": utcnow(),
            "message": message,
        }
    )
    save_deployment(platform, job.job_id, deleted)
    return deleted
