"""OpenAI models: the base catalog, and the organization's fine-tuned models.

A fine-tuned model is a completed job's output. Deleting it stops its deployment and
deletes the output (model, merged model, checkpoints, archives); the job stays, as OpenAI
keeps a job whose model was deleted, and its model is listed no more.
"""

from __future__ import annotations

from whetstone.api.openai.jobs import FINE_TUNED_PREFIX, fine_tuned_model, job_id_of_model
from whetstone.api.openai.schemas import OpenAIModel
from whetstone.core.catalog.base_models import BASE_MODELS, BASE_MODELS_BY_ID
from whetstone.core.errors import NotFoundError
from whetstone.core.job import Caller, JobFilter, JobRecord
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.service import deployments, jobs
from whetstone.service.platform import Platform
from whetstone.service.records import update_job

CATALOG_OWNER = "whetstone"


def _model(job: JobRecord) -> OpenAIModel:
    created = job.finished_at or job.updated_at
    return OpenAIModel(
        id=fine_tuned_model(job), created=int(created.timestamp()), owned_by=job.org_id
    )


def _has_model(job: JobRecord) -> bool:
    return job.status is JobStatus.COMPLETED and job.artifacts is not None


def list_models(platform: Platform, caller: Caller) -> list[OpenAIModel]:
    """The catalog's models, then the organization's fine-tuned ones, newest first."""
    catalog = [OpenAIModel(id=m.id, created=0, owned_by=CATALOG_OWNER) for m in BASE_MODELS]
    completed = jobs.all_jobs(platform, caller, JobFilter(status=JobStatus.COMPLETED))
    return catalog + [_model(job) for job in completed if _has_model(job)]


def fine_tuned_job(platform: Platform, caller: Caller, name: str) -> JobRecord:
    """The completed job whose model `name` is; NotFoundError when there is none (or it was
    deleted)."""
    try:
        job = jobs.get_job(platform, caller, job_id_of_model(name))
    except NotFoundError:
        job = None
    if job is None or not _has_model(job) or fine_tuned_model(job) != name:
        raise NotFoundError(f"no model {name!r}", code="model_not_found")
    return job


def get_model(platform: Platform, caller: Caller, name: str) -> OpenAIModel:
    if name in BASE_MODELS_BY_ID:
        return OpenAIModel(id=name, created=0, owned_by=CATALOG_OWNER)
    return _model(fine_tuned_job(platform, caller, name))


def is_fine_tuned(name: str) -> bool:
    return name.startswith(FINE_TUNED_PREFIX)


def delete_model(platform: Platform, caller: Caller, name: str) -> None:
    """Stop serving the fine-tuned model and delete its files; the job record stays."""
    job = fine_tuned_job(platform, caller, name)
    if job.deployment is not None and job.deployment.is_live:
        deployments.delete_deployment(platform, caller, job.job_id)
    layout = JobLayout.of(job)
    for prefix in (layout.output, layout.model_archive, layout.merged_archive):
        platform.blobs.delete_prefix(prefix)
    platform.blobs.delete_prefix(layout.checkpoint_archives)
    update_job(platform, job.job_id, lambda current: current.model_copy(update={"artifacts": None}))
