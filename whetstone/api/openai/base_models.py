"""Chat with a base model: answered by the ready deployment of one of the organization's jobs
fine-tuned from it with an adapter method, whose server also answers as the base (the
adapter off; the deployment's `base_model` names it); one still starting is worth a retry.
A base model alone is never deployed, nor started on first use: docs/openai-api.md.
"""

from __future__ import annotations

from typing import NamedTuple

from whetstone.core.catalog.base_models import BASE_MODELS_BY_ID
from whetstone.core.errors import ConflictError, InvalidInputError, NotFoundError, TransientError
from whetstone.core.job import Caller, Deployment, JobFilter, JobRecord
from whetstone.core.lifecycle import JobStatus
from whetstone.core.serving_hardware import served_base_model
from whetstone.core.spec import ADAPTER_METHODS
from whetstone.service import deployments
from whetstone.service.platform import Platform

# The newest completed jobs a request looks through for a deployment serving the base; older
# ones are not read, so a request costs a bounded number of reads however many jobs exist.
MAX_JOBS_EXAMINED = 200
_PAGE = 50
# A sparse filter may answer short pages (each a bounded read of the store): so many at most.
_MAX_PAGES = 8


def base_names(job: JobRecord) -> set[str]:
    """The names a request may give the job's base model: its spec's, and its catalog id."""
    names = {job.spec.base_model}
    try:
        names.add(served_base_model(job.spec).id)
    except InvalidInputError:  # a base outside the catalog has its spec's name only
        pass
    return names


def _live(platform: Platform, caller: Caller, job: JobRecord) -> Deployment | None:
    # Refreshed from its server: one recorded starting may be ready by now, or failed.
    recorded = job.deployment
    if recorded is None or not recorded.is_live or recorded.base_model is None:
        return None
    current = deployments.get_deployment(platform, caller, job.job_id)
    return current if current.is_live else None


class BaseServer(NamedTuple):
    """A deployment that answers a base model (once ready), and the name its server answers
    it by."""

    job: JobRecord
    deployment: Deployment
    served_name: str


def base_deployment(platform: Platform, caller: Caller, name: str) -> BaseServer:
    """The newest of the organization's jobs whose ready deployment serves the base model
    `name`, and that deployment. NotFoundError when `name` is neither a catalog model nor the
    base of a job looked at; TransientError when none is ready but one is starting, as for a
    fine-tuned model; ConflictError (model_not_deployed) when no deployment serves it."""
    known = name in BASE_MODELS_BY_ID
    deployable: JobRecord | None = None
    starting: BaseServer | None = None
    examined = 0
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page, cursor = platform.jobs.list_jobs(
            caller.org_id,
            JobFilter(status=JobStatus.COMPLETED),
            limit=min(_PAGE, MAX_JOBS_EXAMINED - examined),
            cursor=cursor,
        )
        examined += len(page)
        for job in page:
            if name not in base_names(job):
                continue
            known = True
            deployment = _live(platform, caller, job)
            if deployment is not None and deployment.base_model is not None:
                server = BaseServer(job, deployment, deployment.base_model)
                if deployment.status == "ready" and deployment.endpoint:
                    return server
                starting = starting or server
            if deployable is None and job.spec.tuning_method in ADAPTER_METHODS:
                deployable = job
        if cursor is None or examined >= MAX_JOBS_EXAMINED:
            break
    if not known:
        raise NotFoundError(
            f"the model {name!r} is not served here: /v1/chat/completions answers with "
            "fine-tuned models (ft:..., see GET /v1/models) and with the catalog's base "
            "models their deployments serve",
            code="model_not_found",
        )
    if starting is not None:
        raise TransientError(
            f"the base model {name!r} is served by the deployment of job "
            f"{starting.job.job_id}, which is still starting "
            f"({starting.deployment.message or 'loading'})"
        )
    raise _not_deployed(name, deployable, capped=cursor is not None)


def _not_deployed(name: str, deployable: JobRecord | None, *, capped: bool) -> ConflictError:
    job_id = deployable.job_id if deployable is not None else "JOB"
    message = (
        f"no ready deployment serves the base model {name!r}: a base model answers through "
        "the deployment of a job fine-tuned from it with an adapter method (LoRA, QLoRA, "
        f"prompt tuning); deploy one with `whet jobs deploy {job_id}` "
        f"(POST /api/v1/fine-tuning/jobs/{job_id}/deploy) and retry once it is ready"
    )
    if capped:
        message += (
            f" (only your newest jobs were looked at, at most {MAX_JOBS_EXAMINED} completed ones)"
        )
    return ConflictError(message, code="model_not_deployed")
