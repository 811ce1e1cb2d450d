"""Job routes: create, list, get, stop, pause, resume, delete, logs, metrics, download,
stats, uploads."""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import (
    File,
    Form,
    Header,
    Path,
    Query,
    UploadFile,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import AwareDatetime, ValidationError

from whetstone.api.identity import current_caller
from whetstone.api.paths import download_file_path, upload_path
from whetstone.api.schemas.jobs import (
    CreateJobRequest,
    JobListResponse,
    JobResponse,
    LogPageResponse,
    MetricSeriesResponse,
    UserStatsResponse,
    split_job_config,
)
from whetstone.api.schemas.transfers import (
    ArtifactName,
    DownloadLinkResponse,
    UploadReceipt,
    UploadResponse,
)
from whetstone.core.errors import InvalidInputError
from whetstone.core.job import JobFilter, JobRecord, LogLevelName, LogSource
from whetstone.core.lifecycle import JobStatus
from whetstone.core.logs import LogQuery
from whetstone.core.metric_series import DEFAULT_MAX_POINTS
from whetstone.core.spec import Method
from whetstone.runtime import get_platform
from whetstone.service import artifacts, jobs, metric_pages, uploads
from whetstone.service.artifacts import ArtifactKind
from whetstone.service.jobs import NewJob
from whetstone.service.stats import user_stats

router = Router()

JobId = Annotated[str, Path(description="Job id.", max_length=64)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Retrying a create with the same key returns the same job.",
    ),
]


METRIC_NAMES_HELP = (
    f"Comma-separated series names (at most {metric_pages.MAX_SERIES}); all if unset."
)

CREATED_RESPONSES: dict[int, OpenAPIResponse] = {
    HTTPStatus.CREATED: {
        "description": "The job, created; or the job an earlier request with the same "
        "Idempotency-Key created.",
        "content": {"application/json": {"model": JobResponse}},
    },
    HTTPStatus.TOO_MANY_REQUESTS: {
        "description": "The organization's quota of running jobs or GPUs is reached."
    },
}


def _created(job: JobRecord) -> Response[JobResponse]:
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type=content_types.APPLICATION_JSON,
        body=JobResponse.from_record(job),
    )


def _new_job(request: CreateJobRequest) -> NewJob:
    return NewJob(spec=request.spec, name=request.name, allow_over_budget=request.allow_over_budget)


def _parse_config(config: str) -> CreateJobRequest:
    try:
        data = json.loads(config)
    except ValueError as error:
        raise InvalidInputError(
            f"the config field is not JSON: {error}", code="config_not_json"
        ) from error
    if isinstance(data, dict):
        allow_over_budget = data.pop("allow_over_budget", False)
        name, spec = split_job_config(data)
        data = {"name": name, "spec": spec, "allow_over_budget": allow_over_budget}
    try:
        return CreateJobRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidInputError(
            "the config field is not a valid job config",
            code="validation_error",
            details=[
                {"loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in error.errors(include_url=False)
            ],
        ) from error


@router.post(
    "/jobs",
    summary="Create a job from a config and an uploaded dataset",
    status_code=HTTPStatus.CREATED,
    responses=CREATED_RESPONSES,
)
def create_job_multipart(
    config: Annotated[str, Form(description="Job config JSON: a job spec, or {name, spec}.")],
    file: Annotated[UploadFile, File(description="The dataset file.")],
    idempotency_key: IdempotencyKey = None,
) -> Response[JobResponse]:
    request = _parse_config(config)
    job = jobs.create_job(
        get_platform(),
        current_caller(router),
        _new_job(request),
        dataset=file.content,
        filename=file.filename,
        idempotency_key=idempotency_key,
    )
    return _created(job)


@router.post(
    "/jobs/json",
    summary="Create a job naming its dataset (S3, HF or upload id)",
    status_code=HTTPStatus.CREATED,
    responses=CREATED_RESPONSES,
)
def create_job_json(
    request: CreateJobRequest, idempotency_key: IdempotencyKey = None
) -> Response[JobResponse]:
    job = jobs.create_job(
        get_platform(),
        current_caller(router),
        _new_job(request),
        idempotency_key=idempotency_key,
    )
    return _created(job)


@router.get("/jobs", summary="List jobs, newest first")
def list_jobs(
    status: Annotated[JobStatus | None, Query(description="Only this status.")] = None,
    method: Annotated[Method | None, Query(description="Only this method.")] = None,
    base_model: Annotated[str | None, Query(description="Only this base model.")] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description="Created at or after (ISO 8601 with a time zone).")
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description="Created before (ISO 8601 with a time zone).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    next_token: Annotated[
        str | None, Query(max_length=2048, description="From the previous page.")
    ] = None,
) -> JobListResponse:
    filters = JobFilter(
        status=status,
        method=method,
        base_model=base_model,
        created_after=created_after,
        created_before=created_before,
    )
    page, cursor = jobs.list_jobs(
        get_platform(), current_caller(router), filters, limit=limit, cursor=next_token
    )
    return JobListResponse(jobs=[JobResponse.from_record(job) for job in page], next_token=cursor)


@router.get("/jobs/<job_id>", summary="Get a job")
def get_job(job_id: JobId) -> JobResponse:
    return JobResponse.from_record(jobs.get_job(get_platform(), current_caller(router), job_id))


@router.post("/jobs/<job_id>/stop", summary="Stop a job")
def stop_job(job_id: JobId) -> JobResponse:
    return JobResponse.from_record(jobs.stop_job(get_platform(), current_caller(router), job_id))


@router.post(
    "/jobs/<job_id>/pause",
    summary="Pause a job: checkpoint it and release its compute (409 unless deploying or training)",
)
def pause_job(job_id: JobId) -> JobResponse:
    return JobResponse.from_record(jobs.pause_job(get_platform(), current_caller(router), job_id))


@router.post(
    "/jobs/<job_id>/resume",
    summary="Resume a paused job from its checkpoint (409 unless paused)",
)
def resume_job(
    job_id: JobId,
    max_cost_usd: Annotated[
        float | None,
        Query(
            gt=0,
            description="A new cost cap, replacing the job's; needed to resume a job paused "
            "at its cap.",
        ),
    ] = None,
    allow_over_budget: Annotated[
        bool,
        Query(
            description="Resume even when the job's remaining estimated cost passes what is "
            "left of the organization's monthly budget (402 budget_exceeded otherwise)."
        ),
    ] = False,
) -> JobResponse:
    job = jobs.resume_job(
        get_platform(),
        current_caller(router),
        job_id,
        max_cost_usd=max_cost_usd,
        allow_over_budget=allow_over_budget,
    )
    return JobResponse.from_record(job)


@router.delete(
    "/jobs/<job_id>",
    summary="Delete an ended job and everything it left",
    status_code=HTTPStatus.NO_CONTENT,
)
def delete_job(job_id: JobId) -> Response[str]:
    jobs.delete_job(get_platform(), current_caller(router), job_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")


@router.get("/jobs/<job_id>/logs", summary="Get a job's logs")
def job_logs(
    job_id: JobId,
    source: Annotated[
        LogSource | None,
        Query(alias="log_type", description="build, deployment or training; all if unset."),
    ] = None,
    min_level: Annotated[
        LogLevelName, Query(alias="level", description="Only this level and above.")
    ] = "debug",
    start: Annotated[
        AwareDatetime | None,
        Query(alias="start_time", description="From (ISO 8601 with a time zone)."),
    ] = None,
    end: Annotated[
        AwareDatetime | None,
        Query(alias="end_time", description="Until, excluded (ISO 8601 with a time zone)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    cursor: Annotated[str | None, Query(alias="next_token", max_length=4096)] = None,
) -> LogPageResponse:
    query = LogQuery(
        source=source, min_level=min_level, start=start, end=end, limit=limit, cursor=cursor
    )
    entries, after = jobs.job_logs(get_platform(), current_caller(router), job_id, query)
    return LogPageResponse(logs=entries, next_token=after)


@router.get("/jobs/<job_id>/metrics", summary="Get a job's metric series")
def job_metrics(
    job_id: JobId,
    names: Annotated[str | None, Query(description=METRIC_NAMES_HELP)] = None,
    min_step: Annotated[
        int | None, Query(ge=0, description="From this step (a previous page's next_step).")
    ] = None,
    max_step: Annotated[int | None, Query(ge=0, description="Up to this step.")] = None,
    max_points: Annotated[
        int, Query(ge=2, le=10_000, description="Downsample each series to at most this.")
    ] = DEFAULT_MAX_POINTS,
) -> MetricSeriesResponse:
    page = metric_pages.job_metrics(
        get_platform(),
        current_caller(router),
        job_id,
        names=[n for n in names.split(",") if n] if names else None,
        min_step=min_step,
        max_step=max_step,
        max_points=max_points,
    )
    return MetricSeriesResponse(series=page.series, next_step=page.next_step)


ArtifactChoice = Annotated[
    ArtifactName,
    Query(
        description="model (default): the final model as trained, the adapter or full weights; "
        "adapter: LoRA, QLoRA and prompt tuning only; merged: the base with the LoRA adapter "
        "merged in, when the job saved one; checkpoint: one of the kept checkpoints, with step."
    ),
]
CheckpointStep = Annotated[
    int | None,
    Query(ge=0, description="The checkpoint's step; with artifact=checkpoint only."),
]


@router.get("/jobs/<job_id>/download", summary="Get a download URL for the model or a checkpoint")
def download(
    job_id: JobId, artifact: ArtifactChoice = "model", step: CheckpointStep = None
) -> DownloadLinkResponse:
    link = artifacts.download_link(
        get_platform(), current_caller(router), job_id, artifact=ArtifactKind(artifact), step=step
    )
    if link.url is None:  # a folder store: this server hands the file out itself
        link = link.model_copy(update={"url": download_file_path(job_id, artifact, step)})
    return DownloadLinkResponse.from_record(link)


# No return annotation: the resolver would validate the binary body as JSON.
@router.get("/jobs/<job_id>/download/file", summary="An archive of the job (local runtime)")
def download_file(  # type: ignore[no-untyped-def]
    job_id: JobId, artifact: ArtifactChoice = "model", step: CheckpointStep = None
):
    platform = get_platform()
    link = artifacts.download_link(
        platform, current_caller(router), job_id, artifact=ArtifactKind(artifact), step=step
    )
    with platform.blobs.open(link.key) as stream:
        payload = stream.read()
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/gzip",
        body=payload,
        headers={"content-disposition": f'attachment; filename="{link.filename}"'},
    )


@router.get("/stats", summary="Get user statistics")
def stats(
    next_token: Annotated[
        str | None, Query(max_length=2048, description="From the previous page.")
    ] = None,
) -> UserStatsResponse:
    page = user_stats(get_platform(), current_caller(router), cursor=next_token)
    return UserStatsResponse.from_record(page)


@router.post("/uploads", summary="Start a large dataset upload")
def create_upload() -> UploadResponse:
    slot = uploads.create_upload(get_platform(), current_caller(router))
    return UploadResponse(**slot.model_dump(), path=upload_path(slot.upload_id))


@router.put("/uploads/<upload_id>", summary="Upload a dataset's bytes (local runtime)")
def put_upload(upload_id: Annotated[str, Path(max_length=64)]) -> UploadReceipt:
    event = router.current_event
    body = event.body or ""
    data = base64.b64decode(body) if event.is_base64_encoded else body.encode()
    size = uploads.put_upload(get_platform(), current_caller(router), upload_id, data)
    return UploadReceipt(upload_id=upload_id, size_bytes=size)
