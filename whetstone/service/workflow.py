"""The steps of a job's workflow, called in order by Step Functions (aws) or the
in-process runner (local):

    begin → prepare → resolve image → [build] → launch → poll ... → finalize
    any step → fail          stop requested → cancel

Each step raises a named exception (`DatasetInvalid`, `ImageBuildFailed`,
`LaunchFailed`, `TrainingFailed`, `ArtifactsMissing`) that the state machine
catches by name; `fail` records the code, the message and the step.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from whetstone.core.catalog.base_models import BASE_MODELS_BY_ID
from whetstone.core.datasets.records import SplitManifest
from whetstone.core.errors import InvalidInputError, TransientError, WhetstoneError
from whetstone.core.estimates import estimate_cost, run_time_cap_hours
from whetstone.core.job import (
    Artifacts,
    JobError,
    JobRecord,
    LogEntry,
    LogSource,
    live_cost,
    utcnow,
)
from whetstone.core.layout import JobLayout, OutputNames
from whetstone.core.lifecycle import JobStatus, check_transition, is_terminal
from whetstone.core.plan import EventSinkSettings, TrainerOptions, TrainerPlan
from whetstone.core.spec import LORA_METHODS
from whetstone.ports import Compute, ComputeState, ImageBuilder
from whetstone.service.artifacts import (
    archive_checkpoints,
    archive_outputs,
    files_under,
    holds_loadable_model,
    output_files,
)
from whetstone.service.datasets import prepare_splits
from whetstone.service.event_credentials import issue_event_credential
from whetstone.service.models import resolve_base_model
from whetstone.service.platform import Platform
from whetstone.service.records import transition, update_job


class WorkflowError(WhetstoneError):
    """A step failed; the class name is what the state machine's Catch matches."""

    step = "workflow"

    # Each failure is a name, a code and a step: given in the class line, so the list below
    # reads as the table it is.
    def __init_subclass__(
        cls, *, code: str | None = None, step: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if step is not None:
            cls.step = step


class JobStopped(WorkflowError, code="stopped"):
    """A stop was asked for, or the job no longer exists."""


class DatasetInvalid(WorkflowError, code="dataset_invalid", step="prepare"):
    """The dataset could not be read, validated or split."""


class ImageBuildFailed(WorkflowError, code="image_build_failed", step="build"):
    """The trainer image could not be built."""


class LaunchFailed(WorkflowError, code="launch_failed", step="launch"):
    """The trainer could not be started."""


class TrainingFailed(WorkflowError, code="training_failed", step="train"):
    """The trainer failed or ended without finishing."""


class ArtifactsMissing(WorkflowError, code="artifacts_missing", step="finalize"):
    """The trainer left no loadable model."""


# Written once per job that ends, with what it used: the infra's metric filters sum these
# lines into GPU hours and spend (infra/constructs/job_metrics.py).
JOB_ENDED_LINE = "job ended"


def log(platform: Platform, job_id: str, source: LogSource, message: str, **fields: object) -> None:
    """One line in the job's build, deployment or training log."""
    level = "error" if fields.pop("error", False) else "info"
    entry = LogEntry(time=utcnow(), source=source, level=level, message=message, fields=fields)
    platform.logs.append(job_id, [entry])


def _log_ended(platform: Platform, job: JobRecord) -> None:
    log(
        platform,
        job.job_id,
        "deployment",
        JOB_ENDED_LINE,
        status=job.status.value,
        gpu_hours=job.cost.compute_hours,
        cost_usd=job.cost.current_usd,
    )


def _job(platform: Platform, job_id: str) -> JobRecord:
    job = platform.jobs.get(job_id)
    if job is None:
        raise JobStopped(f"job {job_id} no longer exists")
    return job


def _stop_requested(platform: Platform, job_id: str) -> bool:
    return _job(platform, job_id).is_stop_requested


def begin(platform: Platform, job_id: str) -> None:
    """pending → preparing."""
    if _stop_requested(platform, job_id):
        raise JobStopped("stop requested before the job started")
    transition(platform, job_id, JobStatus.PREPARING, "preparing the dataset and the plan")


class Prepared(BaseModel):
    plan_uri: Annotated[str, Field(description="Where the trainer plan lies.")]


def trainer_model_source(base_model: str) -> str:
    """What the trainer loads: a catalog id becomes its Hugging Face repo."""
    model = BASE_MODELS_BY_ID.get(base_model)
    return f"hf://{model.hf_repo}" if model else base_model


def prepare(platform: Platform, job_id: str, events: EventSinkSettings) -> Prepared:
    """Validate and split the dataset, write the normalized splits and the trainer plan."""
    job = _job(platform, job_id)
    spec = job.spec
    layout = JobLayout.of(job)
    log(platform, job_id, "build", "preparing dataset", dataset=job.dataset.source)
    source: str | bytes = job.dataset.source
    if job.dataset.blob_key is not None:
        with platform.blobs.open(job.dataset.blob_key) as stream:
            source = stream.read()
    try:
        prepared = prepare_splits(
            source,
            spec.dataset,
            cutoff_length=spec.sequence_length,
            seed=spec.advanced.seed,
            blobs=platform.blobs,
            prefix=layout.data,
            settings=platform.settings,
            org_id=job.org_id,
            filename=job.dataset.filename,
        )
    except InvalidInputError as error:
        raise DatasetInvalid(error.message, details=error.details) from error
    manifest = prepared.manifest
    log(platform, job_id, "build", "dataset split", counts=manifest.counts, sha256=manifest.sha256)

    update_job(platform, job_id, lambda current: _with_dataset_stats(current, manifest))
    return write_plan(platform, job_id, events)


def _with_dataset_stats(job: JobRecord, manifest: SplitManifest) -> JobRecord:
    dataset = job.dataset.model_copy(
        update={
            "format": manifest.format,
            "num_examples": sum(manifest.counts.values()),
            "mean_tokens": manifest.mean_tokens,
            "splits": manifest.counts,
        }
    )
    return job.model_copy(update={"dataset": dataset})


def write_plan(platform: Platform, job_id: str, events: EventSinkSettings) -> Prepared:
    """Write the trainer plan; it reads no data (the prepare stage splits the dataset)."""
    job = _job(platform, job_id)
    spec = job.spec
    layout = JobLayout.of(job)
    events = issue_event_credential(platform, job_id, events)
    plan = TrainerPlan(
        job_id=job_id,
        spec=spec,
        data=platform.blobs.uri(layout.data),
        model_source=trainer_model_source(spec.base_model),
        output=platform.blobs.uri(layout.output),
        events=events,
        options=TrainerOptions(
            merge_adapter=spec.method in LORA_METHODS and spec.lora.save_merged,
            max_run_hours=run_time_cap_hours(spec.hardware.max_run_hours, job.estimate),
        ),
    )
    platform.blobs.put(layout.plan, plan.model_dump_json(indent=2).encode())
    log(platform, job_id, "build", "trainer plan written", model=plan.model_source)
    return Prepared(plan_uri=platform.blobs.uri(layout.plan))


def record_prepared(platform: Platform, job_id: str) -> JobRecord:
    """Record what the prepare stage found (`prepared.json`: the split manifest) and the
    estimate recomputed from the real example and token counts."""
    job = _job(platform, job_id)
    key = JobLayout.of(job).prepared
    if not platform.blobs.exists(key):
        raise DatasetInvalid(f"the prepare stage wrote no {key}; see the training log")
    with platform.blobs.open(key) as stream:
        manifest = SplitManifest.model_validate_json(stream.read())
    num_examples = sum(manifest.counts.values())
    mean_tokens = round(manifest.mean_tokens) if manifest.mean_tokens else None
    model = resolve_base_model(job.spec.base_model, allow_local_paths=_is_local(platform))
    estimate = estimate_cost(model, job.spec, num_examples, mean_tokens)
    if _is_local(platform):
        estimate = estimate.at_rate(platform.settings.local_hourly_rate_usd)

    def record(current: JobRecord) -> JobRecord:
        cost = current.cost.model_copy(
            update={
                "hourly_rate_usd": estimate.hourly_rate_usd,
                "estimated_total_usd": estimate.estimated_cost_usd,
            }
        )
        recorded = _with_dataset_stats(current, manifest)
        return recorded.model_copy(update={"estimate": estimate, "cost": cost})

    recorded = update_job(platform, job_id, record)
    log(platform, job_id, "build", "dataset prepared", counts=manifest.counts)
    return recorded


def _is_local(platform: Platform) -> bool:
    return platform.settings.runtime == "local"


class ImageChoice(BaseModel):
    tag: Annotated[str, Field(description="Content-addressed tag of the trainer image.")]
    image: Annotated[str | None, Field(description="The image, or null if it must be built.")]


def resolve_image(platform: Platform, job_id: str, builder: ImageBuilder, tag: str) -> ImageChoice:
    image = builder.find(tag)
    if image is None:
        log(platform, job_id, "build", "trainer image must be built", tag=tag)
    else:
        log(platform, job_id, "build", "trainer image found", tag=tag, image=image)
    return ImageChoice(tag=tag, image=image)


def build_image(platform: Platform, job_id: str, builder: ImageBuilder, tag: str) -> str:
    """preparing → building, then build (local runtime; aws runs CodeBuild from the ASL)."""
    transition(platform, job_id, JobStatus.BUILDING, f"building trainer image {tag}")
    try:
        image = builder.build(tag)
    except TransientError:
        raise
    except Exception as error:
        raise ImageBuildFailed(f"building the trainer image failed: {error}") from error
    log(platform, job_id, "build", "trainer image built", image=image)
    return image


def launch(platform: Platform, job_id: str, compute: Compute, plan_uri: str, image: str) -> None:
    """→ deploying, and start the trainer."""
    if _stop_requested(platform, job_id):
        raise JobStopped("stop requested before launch")

    def deploying(job: JobRecord) -> JobRecord:
        if job.status is not JobStatus.DEPLOYING:  # a resumed job may be deploying already
            check_transition(job.status, JobStatus.DEPLOYING)
            job = job.with_status(JobStatus.DEPLOYING, "starting the trainer")
        return job.model_copy(update={"training_started_at": job.training_started_at or utcnow()})

    job = update_job(platform, job_id, deploying)
    try:
        compute.launch(job, plan_uri, image)
    except TransientError:
        raise
    except Exception as error:
        raise LaunchFailed(f"the trainer could not be started: {error}") from error
    log(platform, job_id, "deployment", "trainer launched", image=image)


class PollState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    STOP = "stop"


class Poll(BaseModel):
    state: PollState


def poll(platform: Platform, job_id: str, compute: Compute) -> Poll:
    """Where the trainer is. Raises TrainingFailed when it failed."""
    job = _job(platform, job_id)
    if job.is_stop_requested:
        return Poll(state=PollState.STOP)
    status = compute.status(job)
    if status.state in (ComputeState.PENDING, ComputeState.RUNNING):
        return Poll(state=PollState.RUNNING)
    if status.state is ComputeState.SUCCEEDED:
        return Poll(state=PollState.SUCCEEDED)
    reason = job.error.message if job.error else (status.message or "the trainer stopped")
    raise TrainingFailed(reason, code=job.error.code if job.error else "training_failed")


def finalize(platform: Platform, job_id: str) -> JobRecord:
    """Verify the artifacts, archive them for download, write the final cost → completed.

    One archive each: the model, the merged model when the trainer saved one, and every
    complete checkpoint (GET .../download?artifact=... serves them).
    """
    job = _job(platform, job_id)
    layout = JobLayout.of(job)
    files = output_files(platform, layout)
    model = files_under(files, OutputNames.MODEL)
    if not holds_loadable_model(model):
        raise ArtifactsMissing(
            f"the trainer wrote no loadable model under {layout.model} (found "
            f"{len(model)} files); see the training log"
        )
    archives = archive_outputs(platform, layout, files)
    log(platform, job_id, "deployment", "artifacts verified", files=len(files), archives=archives)
    return _completed(platform, job_id, files)


def complete(platform: Platform, job_id: str) -> JobRecord:
    """→ completed, after the finalize stage verified and archived the artifacts; refused
    (JobStopped) for a job that ended or was stopped meanwhile."""
    job = _job(platform, job_id)
    files = output_files(platform, JobLayout.of(job))
    return _completed(platform, job_id, files, only_running=True)


def _completed(
    platform: Platform, job_id: str, files: dict[str, int], *, only_running: bool = False
) -> JobRecord:
    layout = JobLayout.of(_job(platform, job_id))

    def complete(current: JobRecord) -> JobRecord:
        if only_running and (current.is_terminal or current.is_stop_requested):
            raise JobStopped(f"job {job_id} is {current.status}; not completed")
        done = current.with_status(JobStatus.COMPLETED, "training finished")
        done = done.model_copy(
            update={
                "artifacts": Artifacts(location=platform.blobs.uri(layout.output), files=files),
                "cost": live_cost(done, done.updated_at),
                "progress": done.progress.model_copy(update={"fraction": 1.0}),
                "task_token": None,
                "task_stage": None,
            }
        )
        return done

    completed = update_job(platform, job_id, complete)
    _log_ended(platform, completed)
    return completed


def fail(
    platform: Platform, job_id: str, compute: Compute, code: str, message: str, step: str
) -> None:
    """Record why the job failed, clean its compute up → failed (no-op once ended)."""
    job = platform.jobs.get(job_id)
    if job is None or is_terminal(job.status):
        return
    compute.stop(job)
    if job.status is JobStatus.STOPPING:
        _keep_checkpoints(platform, job)
    log(platform, job_id, "deployment", "job failed", code=code, step=step, error=True)

    def failed(current: JobRecord) -> JobRecord:
        if current.is_stop_requested:
            return current.with_status(JobStatus.CANCELLED, "stopped")
        error = current.error or JobError(code=code, message=message, step=step)
        moved = current.with_status(JobStatus.FAILED, message)
        return moved.model_copy(update={"error": error})

    _end(platform, job_id, failed)


def cancel(platform: Platform, job_id: str, compute: Compute) -> None:
    """Clean the compute up → cancelled."""
    job = platform.jobs.get(job_id)
    if job is None or is_terminal(job.status):
        return
    compute.stop(job)
    log(platform, job_id, "deployment", "compute released after stop")
    _keep_checkpoints(platform, job)

    def cancelled(current: JobRecord) -> JobRecord:
        if current.status is not JobStatus.STOPPING:
            current = current.with_status(JobStatus.STOPPING, "stop requested")
        return current.with_status(JobStatus.CANCELLED, "stopped by the user")

    _end(platform, job_id, cancelled)


def _keep_checkpoints(platform: Platform, job: JobRecord) -> None:
    """Archive the complete checkpoints a stopped trainer left, for download."""
    layout = JobLayout.of(job)
    try:
        archives = archive_checkpoints(platform, layout, output_files(platform, layout))
    # The stop must still end the job: the checkpoints stay in its output folder.
    except Exception as error:
        log(
            platform,
            job.job_id,
            "deployment",
            "checkpoints not archived",
            reason=str(error),
            error=True,
        )
        return
    if archives:
        log(platform, job.job_id, "deployment", "checkpoints kept", archives=archives)


def _end(platform: Platform, job_id: str, end: Callable[[JobRecord], JobRecord]) -> None:
    """Move an unfinished job to the terminal status `end` gives it, with its final cost
    (failed and stopped jobs are billed too), and write its `job ended` line once: not
    when the job had ended meanwhile."""
    ended_here = False  # set by the last (retried) call of `change`

    def change(current: JobRecord) -> JobRecord:
        nonlocal ended_here
        ended_here = not is_terminal(current.status)
        if not ended_here:
            return current
        ended = end(current)
        return ended.model_copy(update={"cost": live_cost(ended, ended.updated_at)})

    ended = update_job(platform, job_id, change)
    if ended_here:
        _log_ended(platform, ended)
