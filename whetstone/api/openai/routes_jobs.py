"""/v1/fine_tuning/jobs: OpenAI's fine-tuning job routes over Whetstone's job service."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from whetstone.api.identity import current_caller
from whetstone.api.openai import schemas as wire
from whetstone.api.openai.events import job_checkpoints, job_events
from whetstone.api.openai.jobs import new_job, to_openai
from whetstone.api.openai.paging import page
from whetstone.core.job import JobFilter
from whetstone.runtime import get_platform
from whetstone.service import jobs

router = Router()

JobId = Annotated[str, Path(description="Job id (ftjob-...).", max_length=64)]
After = Annotated[str | None, Query(max_length=128, description="List after this id.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]


@router.post("/fine_tuning/jobs", summary="Create a fine-tuning job (OpenAI)")
def create_job(request: wire.OpenAICreateJobRequest) -> wire.OpenAIFineTuningJob:
    platform, caller = get_platform(), current_caller(router)
    job = jobs.create_job(platform, caller, new_job(platform, caller, request))
    return to_openai(job)


@router.get("/fine_tuning/jobs", summary="List fine-tuning jobs, newest first (OpenAI)")
def list_jobs(after: After = None, limit: Limit = 20) -> wire.OpenAIJobList:
    platform, caller = get_platform(), current_caller(router)
    every = [to_openai(job) for job in jobs.all_jobs(platform, caller, JobFilter())]
    chosen, has_more = page(every, after, limit)
    return wire.OpenAIJobList(data=chosen, has_more=has_more)


@router.get("/fine_tuning/jobs/<job_id>", summary="Get a fine-tuning job (OpenAI)")
def get_job(job_id: JobId) -> wire.OpenAIFineTuningJob:
    return to_openai(jobs.get_job(get_platform(), current_caller(router), job_id))


@router.post("/fine_tuning/jobs/<job_id>/cancel", summary="Cancel a fine-tuning job (OpenAI)")
def cancel_job(job_id: JobId) -> wire.OpenAIFineTuningJob:
    return to_openai(jobs.stop_job(get_platform(), current_caller(router), job_id))


@router.post("/fine_tuning/jobs/<job_id>/pause", summary="Pause a fine-tuning job (OpenAI)")
def pause_job(job_id: JobId) -> wire.OpenAIFineTuningJob:
    platform, caller = get_platform(), current_caller(router)
    jobs.get_job(platform, caller, job_id)  # a missing job is a 404 whatever pausing does
    return to_openai(jobs.pause_job(platform, caller, job_id))


@router.post("/fine_tuning/jobs/<job_id>/resume", summary="Resume a paused job (OpenAI)")
def resume_job(
    job_id: JobId,
    allow_over_budget: Annotated[
        bool,
        Query(
            description="Whetstone's extension (extra_query): resume even when the job's "
            "remaining estimated cost passes the organization's monthly budget."
        ),
    ] = False,
) -> wire.OpenAIFineTuningJob:
    platform, caller = get_platform(), current_caller(router)
    jobs.get_job(platform, caller, job_id)
    return to_openai(jobs.resume_job(platform, caller, job_id, allow_over_budget=allow_over_budget))


@router.get("/fine_tuning/jobs/<job_id>/events", summary="A job's events (OpenAI)")
def list_events(job_id: JobId, after: After = None, limit: Limit = 20) -> wire.OpenAIEventList:
    platform = get_platform()
    job = jobs.get_job(platform, current_caller(router), job_id)
    chosen, has_more = page(job_events(platform, job), after, limit)
    return wire.OpenAIEventList(data=chosen, has_more=has_more)


@router.get("/fine_tuning/jobs/<job_id>/checkpoints", summary="A job's checkpoints (OpenAI)")
def list_checkpoints(
    job_id: JobId, after: After = None, limit: Limit = 10
) -> wire.OpenAICheckpointList:
    job = jobs.get_job(get_platform(), current_caller(router), job_id)
    chosen, has_more = page(job_checkpoints(job), after, limit)
    return wire.OpenAICheckpointList(
        data=chosen,
        has_more=has_more,
    )
