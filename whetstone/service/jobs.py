"""Job use cases: create, read, list, stop, delete, and read a job's logs and metrics.

Every read and write is scoped to the caller's organization: another
organization's job answers exactly like a missing one.
"""

from __future__ import annotations

import io
from typing import Annotated, BinaryIO

from pydantic import Field

from whetstone.core.catalog.hardware import get_gpu
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.datasets.report import ValidationReport
from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
)
from whetstone.core.estimates import CostEstimate, FitReport, check_fit, estimate_cost
from whetstone.core.job import (
    Caller,
    CostInfo,
    DatasetInfo,
    JobFilter,
    JobRecord,
    LogEntry,
    live_cost,
    new_job_id,
    utcnow,
)
from whetstone.core.layout import JobLayout, UploadLayout
from whetstone.core.lifecycle import (
    PAUSABLE_STATUSES,
    JobStatus,
    check_transition,
)
from whetstone.core.logs import LogQuery
from whetstone.core.quota import ActiveLimits, quota_refusal
from whetstone.core.run_defaults import run_steps, spec_warnings
from whetstone.core.spec import JobSpec
from whetstone.service.budgets import (
    cap_reached,
    check_monthly_budget,
    month_start,
    remaining_estimate,
)
from whetstone.service.datasets import check_from_params, check_source, require_valid_dataset
from whetstone.service.job_log import log, log_ended
from whetstone.service.models import find_base_model, require_reachable_model
from whetstone.service.platform import Platform
from whetstone.service.records import transition, update_job
from whetstone.service.uploads import UPLOAD_ID_PREFIX, require_upload_id

# Examples a job is estimated at until its dataset has been read.
GUESSED_EXAMPLES = 1000


class NewJob(DeferredModel):
    """What a caller asks for; the dataset is either uploaded bytes or a source."""

    spec: JobSpec
    name: Annotated[str | None, Field(max_length=200)] = None
    allow_over_budget: bool = False


def get_job(platform: Platform, caller: Caller, job_id: str) -> JobRecord:
    job = platform.jobs.get(job_id)
    if job is None or job.org_id != caller.org_id:
        raise NotFoundError(f"no job {job_id!r}", code="job_not_found")
    return with_spend_to_date(job)


def with_spend_to_date(job: JobRecord) -> JobRecord:
    """The job with its cost up to now: a launched trainer's node bills from the launch
    (provisioning, image pull), before any metrics event moves the stored cost."""
    if job.is_terminal or job.training_started_at is None:
        return job
    return job.model_copy(update={"cost": live_cost(job, utcnow())})


def _month_jobs(platform: Platform, caller: Caller) -> list[JobRecord]:
    """The organization's jobs created this month (UTC), each with its spend up to now."""
    month = JobFilter(created_after=month_start(utcnow()))
    return [with_spend_to_date(job) for job in all_jobs(platform, caller, month)]


def active_limits(platform: Platform) -> ActiveLimits:
    settings = platform.settings
    return ActiveLimits(max_jobs=settings.max_active_jobs, max_gpus=settings.max_active_gpus)


def _check_quotas(platform: Platform, caller: Caller, spec: JobSpec) -> None:
    """Refuse early, before a dataset is read or stored; the store checks again atomically
    as it stores the job (`JobStore.create`), so concurrent creates cannot pass the quota."""
    usage = platform.jobs.active_usage(caller.org_id)
    refusal = quota_refusal(usage, spec.hardware.gpu_count, active_limits(platform))
    if refusal is not None:
        raise refusal


def _validate_dataset(
    platform: Platform, spec: JobSpec, stream: BinaryIO, filename: str | None
) -> ValidationReport:
    check = check_from_params(spec.dataset, spec.sequence_length, method=spec.method)
    return require_valid_dataset(stream, check, filename, platform.settings)


def _validate_small(
    platform: Platform, spec: JobSpec, key: str, filename: str | None
) -> ValidationReport | None:
    if platform.blobs.size(key) > platform.settings.sync_validation_max_bytes:
        return None
    with platform.blobs.open(key) as stream:
        return _validate_dataset(platform, spec, stream, filename)


def estimate_job(
    platform: Platform,
    model: BaseModelInfo,
    spec: JobSpec,
    num_examples: int | None,
    mean_tokens: float | None,
) -> CostEstimate:
    """The job's estimate from its dataset's counts; before the dataset is read (a source
    prepared later) from a guessed 1,000 examples. The local runtime bills its own rate."""
    estimate = estimate_cost(
        model, spec, num_examples or GUESSED_EXAMPLES, round(mean_tokens) if mean_tokens else None
    )
    own_rate = runtime_rate(platform)
    return estimate if own_rate is None else estimate.at_rate(own_rate)


def runtime_rate(platform: Platform) -> float | None:
    """The hourly rate the runtime bills every job at whatever its hardware (the local
    runtime's own); None where a job pays its node's price."""
    if platform.settings.runtime == "local":
        return platform.settings.local_hourly_rate_usd
    return None


def hourly_rate(platform: Platform, spec: JobSpec) -> float:
    """What the job's compute costs an hour: the local runtime's own rate, or the node's."""
    own_rate = runtime_rate(platform)
    if own_rate is not None:
        return own_rate
    return round(get_gpu(spec.hardware.gpu_type).training_rate(spec.hardware.gpu_count), 4)


def create_job(
    platform: Platform,
    caller: Caller,
    new: NewJob,
    *,
    dataset: bytes | None = None,
    filename: str | None = None,
    idempotency_key: str | None = None,
    dataset_key: str | None = None,
) -> JobRecord:
    """Check the spec, the hardware and the dataset, store the job and start its workflow.

    `dataset_key` names a dataset already in the store (an S3 drop). A dataset up to
    `sync_validation_max_bytes` is validated here, so its errors come back at once; a larger
    one is validated by the trainer's prepare stage, never read whole here.

    The dataset comes as uploaded bytes, or as `new.spec.dataset.source`: an
    upload id from `create_upload`, or an s3://, hf:// or (local runtime) path source
    read later by the preparing step; a source that cannot be read is refused here.
    """
    if idempotency_key:
        existing = platform.jobs.find_by_idempotency_key(caller.org_id, idempotency_key)
        if existing is not None:
            return existing
    spec = new.spec
    if platform.settings.runtime == "local":  # elsewhere the trainer's own environment
        require_reachable_model(spec.base_model)  # reaches the hub, not this one's
    # None: a hub model the API cannot read the config of; the prepare stage checks the fit.
    model = find_base_model(spec.base_model, platform.settings, org_id=caller.org_id)
    fit = check_fit(model, spec) if model else None
    if fit and not fit.fits:
        raise InvalidInputError(does_not_fit_message(fit), code="does_not_fit", details=fit)
    _check_quotas(platform, caller, spec)

    job_id = new_job_id()
    report: ValidationReport | None = None
    blob_key: str | None = None
    if dataset is not None:
        if len(dataset) <= platform.settings.sync_validation_max_bytes:
            report = _validate_dataset(platform, spec, io.BytesIO(dataset), filename)
        blob_key = JobLayout(caller.org_id, job_id).dataset(filename or "dataset")
        platform.blobs.put(blob_key, dataset)
        source = platform.blobs.uri(blob_key)
    elif dataset_key is not None:
        blob_key = dataset_key
        report = _validate_small(platform, spec, blob_key, filename)
        source = platform.blobs.uri(blob_key)
    elif spec.dataset.source and spec.dataset.source.startswith(UPLOAD_ID_PREFIX):
        require_upload_id(spec.dataset.source)
        blob_key = UploadLayout(caller.org_id, spec.dataset.source).data
        if not platform.blobs.exists(blob_key):
            raise InvalidInputError(
                f"upload {spec.dataset.source} has no data; PUT the file to its upload URL first",
                code="upload_missing",
            )
        report = _validate_small(platform, spec, blob_key, filename)
        source = platform.blobs.uri(blob_key)
    elif spec.dataset.source:
        # Its data: the preparing step's, which checks it again.
        check_source(spec.dataset.source, platform.settings, org_id=caller.org_id)
        source = spec.dataset.source
    else:
        raise InvalidInputError(
            "the job names no dataset: upload a file, or set dataset.source to an upload id, "
            "an s3:// URI or hf://<dataset>",
            code="dataset_missing",
        )

    mean_tokens = report.stats.tokens.mean if report and report.stats.tokens else None
    num_examples = report.num_examples if report else None
    estimate = estimate_job(platform, model, spec, num_examples, mean_tokens) if model else None
    now = utcnow()
    check_monthly_budget(
        platform.settings.org_monthly_budget_usd.get(caller.org_id),
        _month_jobs(platform, caller),
        # A model only the prepare stage can read has no estimate yet: the spend so far counts.
        estimate.estimated_cost_usd if estimate else 0.0,
        allow_over_budget=new.allow_over_budget,
    )
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
        required_gib=fit.required_gib if fit else None,
        cost=CostInfo(
            hourly_rate_usd=estimate.hourly_rate_usd if estimate else hourly_rate(platform, spec),
            estimated_total_usd=estimate.estimated_cost_usd if estimate else 0.0,
        ),
        warnings=spec_warnings(spec, run_steps(spec, num_examples)) if num_examples else [],
        idempotency_key=idempotency_key,
    ).with_status(JobStatus.PENDING, "job created")
    try:
        platform.jobs.create(job, limits=active_limits(platform))
    except QuotaExceededError:
        if dataset is not None and blob_key is not None:  # the copy made for this job
            platform.blobs.delete_prefix(JobLayout(caller.org_id, job_id).datasets)
        raise
    except ConflictError:
        if idempotency_key:  # a concurrent retry with the same key won the race
            existing = platform.jobs.find_by_idempotency_key(caller.org_id, idempotency_key)
            if existing is not None:
                return existing
        raise
    platform.orchestrator.start(job)
    return job


def does_not_fit_message(fit: FitReport) -> str:
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


def all_jobs(platform: Platform, caller: Caller, filters: JobFilter) -> list[JobRecord]:
    """Every job of the caller's organization that `filters` admits, all pages read."""
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
    jobs, next_cursor = platform.jobs.list_jobs(caller.org_id, filters, limit=limit, cursor=cursor)
    return [with_spend_to_date(job) for job in jobs], next_cursor


def stop_job(platform: Platform, caller: Caller, job_id: str) -> JobRecord:
    """A pending or paused job is cancelled at once (it holds no compute); a running one
    goes to stopping and its workflow is told to clean up. An ended job cannot be stopped
    (409)."""
    job = get_job(platform, caller, job_id)
    if job.status is JobStatus.PENDING:
        return transition(platform, job_id, JobStatus.CANCELLED, "stopped before it started")
    if job.status is JobStatus.PAUSED:
        return _cancel_paused(platform, caller, job_id)

    def request_stop(current: JobRecord) -> JobRecord:
        if current.is_terminal or current.status is JobStatus.STOPPING:
            state = "already ended" if current.is_terminal else "is already stopping"
            raise ConflictError(
                f"the job {state} ({current.status}); there is nothing to stop",
                code="illegal_transition",
            )
        check_transition(current.status, JobStatus.STOPPING)
        stopping = current.with_status(JobStatus.STOPPING, f"stop requested by {caller.user_id}")
        return stopping.model_copy(update={"stop_requested": True})

    stopped = update_job(platform, job_id, request_stop)
    platform.orchestrator.stop(stopped)
    return stopped


def _cancel_paused(platform: Platform, caller: Caller, job_id: str) -> JobRecord:
    """paused → cancelled, billed up to the pause; its checkpoints were archived when it
    paused."""

    def cancel(current: JobRecord) -> JobRecord:
        check_transition(current.status, JobStatus.CANCELLED)
        cancelled = current.with_status(
            JobStatus.CANCELLED, f"stopped while paused by {caller.user_id}"
        )
        return cancelled.model_copy(
            update={"stop_requested": True, "cost": live_cost(cancelled, cancelled.updated_at)}
        )

    cancelled = update_job(platform, job_id, cancel)
    log_ended(platform, cancelled)
    return cancelled


def request_pause(platform: Platform, job_id: str, reason: str) -> JobRecord:
    """deploying or training → pausing (409 not_pausable otherwise); the workflow is told to
    checkpoint the job and release its compute."""

    def pausing(current: JobRecord) -> JobRecord:
        if current.status not in PAUSABLE_STATUSES:
            raise ConflictError(
                f"job {job_id} is {current.status}; only a deploying or training job can be paused",
                code="not_pausable",
            )
        return current.with_status(JobStatus.PAUSING, reason)

    job = update_job(platform, job_id, pausing)
    log(platform, job_id, "deployment", "pause requested", reason=reason)
    platform.orchestrator.pause(job)
    return job


def pause_job(platform: Platform, caller: Caller, job_id: str) -> JobRecord:
    """Checkpoint a training job and release its compute (pausing, then paused)."""
    get_job(platform, caller, job_id)
    return with_spend_to_date(
        request_pause(platform, job_id, f"pause requested by {caller.user_id}")
    )


def resume_job(
    platform: Platform,
    caller: Caller,
    job_id: str,
    *,
    max_cost_usd: float | None = None,
    allow_over_budget: bool = False,
) -> JobRecord:
    """Relaunch a paused job from its checkpoint (deploying, then training); 409 not_paused
    for a job that is not paused. A job paused at its cost cap needs a higher
    `max_cost_usd` (409 cost_cap_reached without one); the new cap replaces the old. Its
    remaining estimated cost is checked against the monthly budget as a new job's is."""
    job = with_spend_to_date(get_job(platform, caller, job_id))
    if job.status is JobStatus.PAUSED:
        check_monthly_budget(
            platform.settings.org_monthly_budget_usd.get(caller.org_id),
            _month_jobs(platform, caller),
            remaining_estimate(job),
            allow_over_budget=allow_over_budget,
            resuming=True,
        )

    def resuming(current: JobRecord) -> JobRecord:
        if current.status is not JobStatus.PAUSED:
            raise ConflictError(
                f"job {job_id} is {current.status}; only a paused job can be resumed",
                code="not_paused",
            )
        if max_cost_usd is not None:
            hardware = current.spec.hardware.model_copy(update={"max_cost_usd": max_cost_usd})
            spec = current.spec.model_copy(update={"hardware": hardware})
            current = current.model_copy(update={"spec": spec})
        if cap_reached(current):
            raise ConflictError(
                f"job {job_id} has spent ${current.cost.current_usd:.2f} of its max_cost_usd "
                f"${current.spec.hardware.max_cost_usd or 0:.2f}; resume it with a higher "
                "max_cost_usd",
                code="cost_cap_reached",
            )
        return current.with_status(JobStatus.DEPLOYING, f"resumed by {caller.user_id}")

    resumed = update_job(platform, job_id, resuming)
    log(platform, job_id, "deployment", "resume requested", user=caller.user_id)
    platform.orchestrator.resume(resumed)
    return with_spend_to_date(resumed)


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
    layout = JobLayout.of(job)
    platform.blobs.delete_prefix(layout.prefix)
    platform.blobs.delete_prefix(layout.datasets)
    upload = _upload_only_this_job_uses(platform, caller, job)
    if upload is not None:
        platform.blobs.delete_prefix(upload)
    platform.logs.delete(job_id)
    platform.jobs.delete(job_id)


def _upload_only_this_job_uses(platform: Platform, caller: Caller, job: JobRecord) -> str | None:
    """The prefix of the upload holding the job's dataset, unless another job names it too."""
    key = job.dataset.blob_key
    upload = UploadLayout.of_key(job.org_id, key) if key is not None else None
    if upload is None:
        return None
    others = (
        other
        for other in all_jobs(platform, caller, JobFilter())
        if other.job_id != job.job_id and other.dataset.blob_key == key
    )
    if next(others, None) is not None:
        return None
    return upload.prefix


def job_logs(
    platform: Platform, caller: Caller, job_id: str, query: LogQuery
) -> tuple[list[LogEntry], str | None]:
    get_job(platform, caller, job_id)
    return platform.logs.query(job_id, query)
