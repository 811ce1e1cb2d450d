"""Job use cases: create, read, list, stop, delete, logs, metrics, download, stats.

Every read and write is scoped to the caller's organization: another
organization's job answers exactly like a missing one.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, BinaryIO

from pydantic import Field

from whetstone.core.datasets.options import ValidationOptions
from whetstone.core.datasets.report import ValidationReport
from whetstone.core.datasets.validator import validate_dataset
from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    StaleWriteError,
)
from whetstone.core.estimates import FitReport, check_fit, estimate_cost
from whetstone.core.job import (
    Caller,
    CostInfo,
    DatasetInfo,
    JobFilter,
    JobRecord,
    LogEntry,
    MetricPoint,
    new_job_id,
    utcnow,
)
from whetstone.core.lifecycle import ACTIVE_STATUSES, JobStatus, check_transition
from whetstone.core.logs import LogQuery
from whetstone.core.spec import JobSpec, Method
from whetstone.service.models import resolve_base_model
from whetstone.service.platform import Platform

DOWNLOAD_EXPIRY_S = 3600
UPLOAD_EXPIRY_S = 3600
MAX_SAVE_ATTEMPTS = 5
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def dataset_key(org_id: str, job_id: str, filename: str) -> str:
    return f"datasets/{org_id}/{job_id}/{_SAFE_NAME.sub('_', filename) or 'dataset'}"


def upload_key(org_id: str, upload_id: str) -> str:
    return f"uploads/{org_id}/{upload_id}/data"


# A job's keys under job_prefix: the trainer plan, the normalized splits, the
# trainer's output (the model under output/model/, a merged model under output/merged/,
# checkpoints under output/checkpoints/checkpoint-<step>/) and the archives downloads
# serve, built by the workflow's finalize step.
PLAN_NAME = "plan.json"
DATA_DIR = "data/"
OUTPUT_DIR = "output/"
MODEL_DIR = "model/"
MERGED_DIR = "merged/"
CHECKPOINTS_DIR = "checkpoints/"
CHECKPOINT_COMPLETE_MARKER = "whetstone-complete"
ARCHIVE_NAME = "model.tar.gz"
MERGED_ARCHIVE_NAME = "merged.tar.gz"
CHECKPOINT_ARCHIVES_DIR = "archives/checkpoints/"
_CHECKPOINT_ARCHIVE = re.compile(r"^checkpoint-(\d+)\.tar\.gz$")


def job_prefix(org_id: str, job_id: str) -> str:
    return f"jobs/{org_id}/{job_id}/"


def checkpoint_archive_name(step: int) -> str:
    """The checkpoint archive's key under job_prefix."""
    return f"{CHECKPOINT_ARCHIVES_DIR}checkpoint-{step}.tar.gz"


class NewJob(DeferredModel):
    """What a caller asks for; the dataset is either uploaded bytes or a source."""

    spec: JobSpec
    name: Annotated[str | None, Field(max_length=200)] = None


def get_job(platform: Platform, caller: Caller, job_id: str) -> JobRecord:
    job = platform.jobs.get(job_id)
    if job is None or job.org_id != caller.org_id:
        raise NotFoundError(f"no job {job_id!r}", code="job_not_found")
    return job


def update_job(
    platform: Platform, job_id: str, change: Callable[[JobRecord], JobRecord]
) -> JobRecord:
    """Read, change and conditionally write a job, again when another writer came first."""
    for _ in range(MAX_SAVE_ATTEMPTS):
        job = platform.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}", code="job_not_found")
        try:
            return platform.jobs.save(change(job), expected_version=job.version)
        except StaleWriteError:
            continue
    raise ConflictError(f"job {job_id} kept changing; try again", code="busy")


def transition(
    platform: Platform, job_id: str, target: JobStatus, message: str | None = None
) -> JobRecord:
    """Move a job to `target`; ConflictError (illegal_transition) when its status forbids it."""

    def change(job: JobRecord) -> JobRecord:
        check_transition(job.status, target)
        return job.with_status(target, message)

    return update_job(platform, job_id, change)


def _check_quotas(platform: Platform, caller: Caller, spec: JobSpec) -> None:
    active = [
        job
        for status in ACTIVE_STATUSES
        for job in _all_jobs(platform, caller, JobFilter(status=status))
    ]
    settings = platform.settings
    if len(active) >= settings.max_active_jobs:
        raise QuotaExceededError(
            f"your organization has {len(active)} jobs running, its limit; wait for one to end "
            "or stop one",
            code="quota_jobs",
        )
    gpus = sum(job.spec.hardware.gpu_count for job in active)
    if gpus + spec.hardware.gpu_count > settings.max_active_gpus:
        raise QuotaExceededError(
            f"this job's {spec.hardware.gpu_count} GPUs would bring your organization to "
            f"{gpus + spec.hardware.gpu_count}, above its limit of {settings.max_active_gpus}",
            code="quota_gpus",
        )


def _validate_dataset(spec: JobSpec, stream: BinaryIO, filename: str | None) -> ValidationReport:
    options = ValidationOptions(
        format=spec.dataset.format,
        columns=spec.dataset.columns,
        filename=filename,
        cutoff_length=spec.sequence_length,
        max_samples=spec.dataset.max_samples,
    )
    report = validate_dataset(stream, options)
    if not report.valid:
        raise InvalidInputError(
            f"the dataset has {len(report.errors)} error(s); the first: {report.errors[0].message}",
            code="dataset_invalid",
            details=report,
        )
    return report


def create_job(
    platform: Platform,
    caller: Caller,
    new: NewJob,
    *,
    dataset: bytes | None = None,
    filename: str | None = None,
    idempotency_key: str | None = None,
) -> JobRecord:
    """Check the spec, the hardware and the dataset, store the job and start its workflow.

    The dataset comes as uploaded bytes, or as `new.spec.dataset.source`: an
    upload id from `create_upload`, or an s3:// or hf:// source read later by the
    preparing step.
    """
    if idempotency_key:
        existing = platform.jobs.find_by_idempotency_key(caller.org_id, idempotency_key)
        if existing is not None:
            return existing
    spec = new.spec
    model = resolve_base_model(
        spec.base_model, allow_local_paths=platform.settings.runtime == "local"
    )
    fit = check_fit(model, spec)
    if not fit.fits:
        raise InvalidInputError(_does_not_fit_message(fit), code="does_not_fit", details=fit)
    _check_quotas(platform, caller, spec)

    job_id = new_job_id()
    report: ValidationReport | None = None
    blob_key: str | None = None
    if dataset is not None:
        report = _validate_dataset(spec, io.BytesIO(dataset), filename)
        blob_key = dataset_key(caller.org_id, job_id, filename or "dataset")
        platform.blobs.put(blob_key, dataset)
        source = platform.blobs.uri(blob_key)
    elif spec.dataset.source and spec.dataset.source.startswith("upload-"):
        blob_key = upload_key(caller.org_id, spec.dataset.source)
        if not platform.blobs.exists(blob_key):
            raise InvalidInputError(
                f"upload {spec.dataset.source} has no data; PUT the file to its upload URL first",
                code="upload_missing",
            )
        with platform.blobs.open(blob_key) as stream:
            report = _validate_dataset(spec, stream, filename)
        source = platform.blobs.uri(blob_key)
    elif spec.dataset.source:
        source = spec.dataset.source  # validated by the preparing step
    else:
        raise InvalidInputError(
            "the job names no dataset: upload a file, or set dataset.source to an upload id, "
            "an s3:// URI or hf://<dataset>",
            code="dataset_missing",
        )

    mean_tokens = report.stats.tokens.mean if report and report.stats.tokens else None
    num_examples = report.num_examples if report else None
    estimate = estimate_cost(
        model,
        spec,
        num_examples or 1000,
        round(mean_tokens) if mean_tokens else None,
    )
    now = utcnow()
    job = JobRecord(
        job_id=job_id,
        org_id=caller.org_id,
        user_id=caller.user_id,
        name=new.name,
        spec=spec.model_copy(
            update={"dataset": spec.dataset.model_copy(update={"source": source})}
        ),
        created_at=now,
        updated_at=now,
        dataset=DatasetInfo(
            source=source,
            blob_key=blob_key,
            filename=filename,
            format=report.format if report and report.format else None,
            num_examples=num_examples,
            mean_tokens=mean_tokens,
            warnings=[w.code for w in report.warnings] if report else [],
        ),
        estimate=estimate,
        required_gib=fit.required_gib,
        cost=CostInfo(
            hourly_rate_usd=estimate.hourly_rate_usd,
            estimated_total_usd=estimate.estimated_cost_usd,
        ),
        idempotency_key=idempotency_key,
    ).with_status(JobStatus.PENDING, "job created")
    try:
        platform.jobs.create(job)
    except ConflictError:
        if idempotency_key:  # a concurrent retry with the same key won the race
            existing = platform.jobs.find_by_idempotency_key(caller.org_id, idempotency_key)
            if existing is not None:
                return existing
        raise
    platform.orchestrator.start(job)
    return job


def _does_not_fit_message(fit: FitReport) -> str:
    message = (
        f"the job needs {fit.required_gib} GiB per GPU and the chosen GPU has "
        f"{fit.available_gib} GiB"
    )
    if fit.smallest_fitting is not None:
        choice = fit.smallest_fitting
        message += (
            f"; the smallest configuration that fits is {choice.gpu_count} x "
            f"{choice.gpu_type} ({choice.instance_type})"
        )
    if fit.setting_changes:
        change = fit.setting_changes[0]
        message += f", or set {change.setting} to {change.value}"
    return message


def _all_jobs(platform: Platform, caller: Caller, filters: JobFilter) -> list[JobRecord]:
    jobs: list[JobRecord] = []
    cursor: str | None = None
    while True:
        page, cursor = platform.jobs.list_jobs(caller.org_id, filters, limit=100, cursor=cursor)
        jobs.extend(page)
        if cursor is None:
            return jobs


def list_jobs(
    platform: Platform, caller: Caller, filters: JobFilter, *, limit: int, cursor: str | None
) -> tuple[list[JobRecord], str | None]:
    return platform.jobs.list_jobs(caller.org_id, filters, limit=limit, cursor=cursor)


def stop_job(platform: Platform, caller: Caller, job_id: str) -> JobRecord:
    """A pending job is cancelled at once; a running one goes to stopping and its
    workflow is told to clean up. An ended job cannot be stopped (409)."""
    job = get_job(platform, caller, job_id)
    if job.status is JobStatus.PENDING:
        return transition(platform, job_id, JobStatus.CANCELLED, "stopped before it started")

    def request_stop(current: JobRecord) -> JobRecord:
        check_transition(current.status, JobStatus.STOPPING)
        stopping = current.with_status(JobStatus.STOPPING, f"stop requested by {caller.user_id}")
        return stopping.model_copy(update={"stop_requested": True})

    stopped = update_job(platform, job_id, request_stop)
    platform.orchestrator.stop(stopped)
    return stopped


def delete_job(platform: Platform, caller: Caller, job_id: str) -> None:
    """Delete an ended job with its deployment, logs, metrics, dataset copy and artifacts.

    A job still running is refused (409): stop it first, so its compute is
    cleaned up before its records go. The record goes last, so a delete that
    fails half-way can be run again.
    """
    job = get_job(platform, caller, job_id)
    if not job.is_terminal:
        raise ConflictError(
            f"job {job_id} is {job.status}; stop it (POST .../stop) and delete it once it is "
            "cancelled",
            code="job_active",
        )
    if job.deployment is not None and platform.deployer is not None:
        platform.deployer.stop(job)  # the server reads the artifacts about to go
    platform.blobs.delete_prefix(job_prefix(job.org_id, job_id))
    platform.blobs.delete_prefix(f"datasets/{job.org_id}/{job_id}/")
    upload = _upload_only_this_job_uses(platform, caller, job)
    if upload is not None:
        platform.blobs.delete_prefix(upload)
    platform.logs.delete(job_id)
    platform.jobs.delete(job_id)


def _upload_only_this_job_uses(platform: Platform, caller: Caller, job: JobRecord) -> str | None:
    """The prefix of the upload holding the job's dataset, unless another job names it too."""
    key = job.dataset.blob_key
    if key is None or not key.startswith(f"uploads/{job.org_id}/"):
        return None
    others = (
        other
        for other in _all_jobs(platform, caller, JobFilter())
        if other.job_id != job.job_id and other.dataset.blob_key == key
    )
    if next(others, None) is not None:
        return None
    return key.rsplit("/", 1)[0] + "/"


def job_logs(
    platform: Platform, caller: Caller, job_id: str, query: LogQuery
) -> tuple[list[LogEntry], str | None]:
    get_job(platform, caller, job_id)
    return platform.logs.query(job_id, query)


def downsample(points: list[MetricPoint], max_points: int) -> list[MetricPoint]:
    """At most `max_points` per series: the mean of equal step buckets, keeping the last step."""
    if len(points) <= max_points:
        return points
    bucket = -(-len(points) // max_points)
    sampled = []
    for start in range(0, len(points), bucket):
        chunk = points[start : start + bucket]
        mean = sum(p.value for p in chunk) / len(chunk)
        sampled.append(chunk[-1].model_copy(update={"value": mean}))
    return sampled


def job_metrics(
    platform: Platform,
    caller: Caller,
    job_id: str,
    *,
    names: list[str] | None,
    min_step: int | None,
    max_step: int | None,
    max_points: int,
) -> dict[str, list[MetricPoint]]:
    get_job(platform, caller, job_id)
    series: dict[str, list[MetricPoint]] = {}
    for point in platform.jobs.query_metrics(
        job_id, names=names, min_step=min_step, max_step=max_step
    ):
        series.setdefault(point.name, []).append(point)
    return {name: downsample(points, max_points) for name, points in series.items()}


class ArtifactKind(StrEnum):
    """What a download holds."""

    MODEL = "model"  # the final model as trained: the adapter, or full weights for full
    ADAPTER = "adapter"  # LoRA, QLoRA and prompt tuning: the adapter (same files as model)
    MERGED = "merged"  # LoRA and QLoRA saved with the adapter merged into the base
    CHECKPOINT = "checkpoint"  # one of the checkpoints kept at the end of training


class DownloadLink(DeferredModel):
    url: Annotated[str | None, Field(description="Presigned URL (aws).")] = None
    key: Annotated[str, Field(description="Storage key of the artifact archive.")]
    expires_in_s: Annotated[int, Field(description="Seconds the URL stays valid.")]
    size_bytes: Annotated[int, Field(description="Size of the archive.")]
    artifact: Annotated[
        ArtifactKind,
        Field(description="What the archive holds: model, adapter, merged, checkpoint."),
    ] = ArtifactKind.MODEL
    step: Annotated[int | None, Field(description="The checkpoint's step (checkpoint only).")] = (
        None
    )
    filename: Annotated[str, Field(description="A file name for the archive.")] = "model.tar.gz"


def checkpoint_steps(platform: Platform, job: JobRecord) -> list[int]:
    """Steps of the checkpoints that can be downloaded, ascending."""
    prefix = job_prefix(job.org_id, job.job_id) + CHECKPOINT_ARCHIVES_DIR
    matches = (
        _CHECKPOINT_ARCHIVE.match(key.removeprefix(prefix)) for key in platform.blobs.list(prefix)
    )
    return sorted(int(match.group(1)) for match in matches if match)


def _steps_text(steps: list[int]) -> str:
    if not steps:
        return "it kept no checkpoints"
    if len(steps) == 1:
        return f"its only checkpoint is at step {steps[0]}"
    return "its checkpoints are at steps " + ", ".join(str(step) for step in steps)


def _no_merged_message(job: JobRecord) -> str:
    method = job.spec.method
    if method is Method.FULL:
        return (
            f"job {job.job_id} was trained with full fine-tuning: its model (artifact=model) "
            "already holds every weight, there is no adapter to merge"
        )
    if method is Method.PROMPT_TUNING:
        return (
            f"job {job.job_id} was trained with prompt tuning, whose soft prompt cannot be "
            "merged into the weights; download artifact=adapter and load it on the base model "
            "with peft"
        )
    return (
        f"job {job.job_id} saved no merged model: set lora.save_merged to true when creating "
        "a job, or download artifact=adapter and merge it with peft: "
        "PeftModel.from_pretrained(base, folder).merge_and_unload()"
    )


def _archive(
    platform: Platform, job: JobRecord, artifact: ArtifactKind, step: int | None
) -> tuple[str, str]:
    """(storage key, file name) of the archive asked for; the 4xx that says why not."""
    prefix = job_prefix(job.org_id, job.job_id)
    if artifact is ArtifactKind.CHECKPOINT:
        if step is None:
            steps = checkpoint_steps(platform, job)
            raise InvalidInputError(
                f"artifact=checkpoint needs step=N; {_steps_text(steps)}",
                code="step_required",
                details={"available_steps": steps},
            )
    elif step is not None:
        raise InvalidInputError(
            "step picks a checkpoint: ask for artifact=checkpoint&step=N, or drop step",
            code="step_not_allowed",
        )
    model_key = prefix + ARCHIVE_NAME
    if job.status is not JobStatus.COMPLETED or not platform.blobs.exists(model_key):
        raise ConflictError(
            f"job {job.job_id} is {job.status}; its model can be downloaded once it is completed",
            code="no_artifacts",
        )
    if artifact is ArtifactKind.MODEL:
        return model_key, f"{job.job_id}.tar.gz"
    if artifact is ArtifactKind.ADAPTER:
        if job.spec.method is Method.FULL:
            raise ConflictError(
                f"job {job.job_id} was trained with full fine-tuning and has no adapter; "
                "download artifact=model for its full weights",
                code="no_adapter",
            )
        return model_key, f"{job.job_id}-adapter.tar.gz"
    if artifact is ArtifactKind.MERGED:
        if not platform.blobs.exists(prefix + MERGED_ARCHIVE_NAME):
            raise ConflictError(_no_merged_message(job), code="no_merged_model")
        return prefix + MERGED_ARCHIVE_NAME, f"{job.job_id}-merged.tar.gz"
    steps = checkpoint_steps(platform, job)
    if step not in steps:
        raise NotFoundError(
            f"job {job.job_id} has no checkpoint at step {step}; {_steps_text(steps)}",
            code="checkpoint_not_found",
            details={"available_steps": steps},
        )
    return prefix + checkpoint_archive_name(step), f"{job.job_id}-checkpoint-{step}.tar.gz"


def download_link(
    platform: Platform,
    caller: Caller,
    job_id: str,
    *,
    artifact: ArtifactKind = ArtifactKind.MODEL,
    step: int | None = None,
) -> DownloadLink:
    """A link to one archive of a completed job: its model, adapter, merged model or a
    checkpoint; presigned (one hour) where the store can."""
    job = get_job(platform, caller, job_id)
    key, filename = _archive(platform, job, artifact, step)
    return DownloadLink(
        url=platform.blobs.presign_get(key, DOWNLOAD_EXPIRY_S),
        key=key,
        expires_in_s=DOWNLOAD_EXPIRY_S,
        size_bytes=platform.blobs.size(key),
        artifact=artifact,
        step=step,
        filename=filename,
    )


class Upload(DeferredModel):
    upload_id: Annotated[str, Field(description="Name it as dataset.source in jobs/json.")]
    url: Annotated[
        str | None, Field(description="Presigned PUT URL (aws); null: PUT to `path` instead.")
    ]
    path: Annotated[str, Field(description="API path that accepts the PUT in every runtime.")]
    expires_in_s: Annotated[int, Field(description="Seconds the URL stays valid.")]


def create_upload(platform: Platform, caller: Caller) -> Upload:
    upload_id = "upload-" + new_job_id().removeprefix("ftjob-")
    return Upload(
        upload_id=upload_id,
        url=platform.blobs.presign_put(upload_key(caller.org_id, upload_id), UPLOAD_EXPIRY_S),
        path=f"/api/v1/fine-tuning/uploads/{upload_id}",
        expires_in_s=UPLOAD_EXPIRY_S,
    )


def put_upload(platform: Platform, caller: Caller, upload_id: str, data: bytes) -> int:
    if not re.fullmatch(r"upload-[0-9a-z]{20}", upload_id):
        raise NotFoundError(f"no upload {upload_id!r}", code="upload_not_found")
    platform.blobs.put(upload_key(caller.org_id, upload_id), data)
    return len(data)


class UserStats(DeferredModel):
    total_jobs: int
    jobs_by_status: dict[str, int]
    gpu_hours: float
    spend_usd: float
    success_rate: Annotated[
        float | None, Field(description="completed / ended jobs; null before any ended.")
    ]


def user_stats(platform: Platform, caller: Caller) -> UserStats:
    jobs = [j for j in _all_jobs(platform, caller, JobFilter()) if j.user_id == caller.user_id]
    by_status = Counter(job.status.value for job in jobs)
    ended = sum(1 for job in jobs if job.is_terminal)
    return UserStats(
        total_jobs=len(jobs),
        jobs_by_status=dict(by_status),
        gpu_hours=round(sum(job.cost.compute_hours for job in jobs), 4),
        spend_usd=round(sum(job.cost.current_usd for job in jobs), 2),
        success_rate=round(by_status["completed"] / ended, 4) if ended else None,
    )
