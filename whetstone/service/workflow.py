"""The steps of a job's workflow, called in order by Step Functions (aws) or the
in-process runner (local):

    begin → write_plan → resolve image → [build] → prepare stage → record_prepared
          → launch (train stage) → finalize stage → complete
    any step → fail          stop requested → cancel
    pause requested during the train stage → pause (service/pausing.py), ended; resume
    starts again at launch

The stages are runs of the trainer program (`python -m trainer prepare|train|finalize`) on
the compute plane; the steps here only read and write the job record and small files.
`prepare` and `finalize`, which do the data work in the calling process, remain for the aws
state machine until it runs the stages.

Each step raises a named exception (`DatasetInvalid`, `ImageBuildFailed`,
`LaunchFailed`, `TrainingFailed`, `ArtifactsMissing`) that the state machine
catches by name; `fail` records the code, the message and the step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, Field

from whetstone.core.archives import files_under, holds_loadable_model, output_archives
from whetstone.core.catalog.base_models import BASE_MODELS_BY_ID
from whetstone.core.datasets.prepared import PreparedData
from whetstone.core.errors import InvalidInputError, NotFoundError, TransientError, WhetstoneError
from whetstone.core.estimates import check_fit, run_time_cap_hours
from whetstone.core.events import TrainerStage
from whetstone.core.job import Artifacts, JobError, JobRecord, live_cost, utcnow
from whetstone.core.layout import JobLayout, OutputNames
from whetstone.core.lifecycle import JobStatus, can_transition, check_transition, is_terminal
from whetstone.core.plan import EventSinkSettings, PlanDataset, TrainerOptions, TrainerPlan
from whetstone.core.spec import LORA_METHODS
from whetstone.ports import Compute, ImageBuilder
from whetstone.service.artifacts import archive_outputs, keep_checkpoints, output_files
from whetstone.service.datasets import check_source, local_source_path, prepare_splits
from whetstone.service.event_credentials import issue_event_credential
from whetstone.service.job_log import JOB_ENDED_LINE as JOB_ENDED_LINE
from whetstone.service.job_log import log as log
from whetstone.service.job_log import log_ended
from whetstone.service.jobs import does_not_fit_message, estimate_job
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


class JobPaused(WorkflowError, code="paused"):
    """A pause was asked for: the trainer is stopped with a checkpoint, the workflow ends."""


class DatasetInvalid(WorkflowError, code="dataset_invalid", step="prepare"):
    """The dataset could not be read, validated or split."""


class ImageBuildFailed(WorkflowError, code="image_build_failed", step="build"):
    """The trainer image could not be built."""


class LaunchFailed(WorkflowError, code="launch_failed", step="launch"):
    """The trainer could not be started."""


class TrainingFailed(WorkflowError, code="training_failed", step="train"):
    """The trainer failed or ended without finishing."""


class ModelDoesNotFit(WorkflowError, code="does_not_fit", step="prepare"):
    """The model, read by the prepare stage, needs more memory than the chosen GPU has."""


class ModelFactsUnknown(WorkflowError, code="model_facts_unknown", step="prepare"):
    """Neither the API nor the prepare stage could read the model's config.json."""


class ArtifactsMissing(WorkflowError, code="artifacts_missing", step="finalize"):
    """The trainer left no loadable model."""


def _job(platform: Platform, job_id: str) -> JobRecord:
    job = platform.jobs.get(job_id)
    if job is None:
        raise JobStopped(f"job {job_id} no longer exists")
    return job


def _stop_requested(platform: Platform, job_id: str) -> bool:
    return _job(platform, job_id).is_stop_requested


def begin(platform: Platform, job_id: str) -> None:
    """pending → preparing; a resumed job (deploying again) is left as it is."""
    if _stop_requested(platform, job_id):
        raise JobStopped("stop requested before the job started")
    if _job(platform, job_id).status is JobStatus.DEPLOYING:
        return
    transition(platform, job_id, JobStatus.PREPARING, "preparing the dataset and the plan")


class Prepared(BaseModel):
    plan_uri: Annotated[str, Field(description="Where the trainer plan lies.")]


def trainer_model_source(base_model: str) -> str:
    """What the trainer loads: a catalog id becomes its Hugging Face repo."""
    model = BASE_MODELS_BY_ID.get(base_model)
    return f"hf://{model.hf_repo}" if model else base_model


def _plan_dataset(platform: Platform, job: JobRecord) -> PlanDataset:
    """The dataset as the prepare stage reads it: checked against the job's organization
    again (the plan only ever names a source it may read), a local path resolved, not read."""
    source = job.dataset.source
    if job.dataset.blob_key is not None:
        source = platform.blobs.uri(job.dataset.blob_key)
    else:
        try:
            check_source(source, platform.settings, org_id=job.org_id)
            if not source.startswith(("s3://", "hf://")):
                source = str(local_source_path(source, platform.settings))
        except InvalidInputError as error:
            raise DatasetInvalid(error.message, details=error.details) from error
    return PlanDataset(
        source=source,
        filename=job.dataset.filename,
        max_file_bytes=platform.settings.max_upload_bytes,
        max_row_bytes=platform.settings.max_row_bytes,
    )


def write_plan(platform: Platform, job_id: str, events: EventSinkSettings) -> Prepared:
    """Write the trainer plan, which names the dataset's source; reads no data."""
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
        job_files=platform.blobs.uri(layout.prefix),
        dataset=_plan_dataset(platform, job),
        events=events,
        options=TrainerOptions(
            merge_adapter=spec.tuning_method in LORA_METHODS and spec.lora.save_merged,
            max_run_hours=run_time_cap_hours(spec.hardware.max_run_hours, job.estimate),
        ),
    )
    platform.blobs.put(layout.plan, plan.model_dump_json(indent=2).encode())
    log(platform, job_id, "build", "trainer plan written", model=plan.model_source)
    return Prepared(plan_uri=platform.blobs.uri(layout.plan))


def _read_prepared(platform: Platform, layout: JobLayout) -> PreparedData:
    try:
        with platform.blobs.open(layout.prepared) as stream:
            return PreparedData.model_validate_json(stream.read())
    except NotFoundError as error:
        raise DatasetInvalid("the prepare stage left no prepared.json; see the log") from error


def record_prepared(platform: Platform, job_id: str) -> JobRecord:
    """Record what the prepare stage found and re-estimate the job from the real counts;
    DatasetInvalid (with the report) when the dataset cannot be trained on."""
    job = _job(platform, job_id)
    prepared = _read_prepared(platform, JobLayout.of(job))
    if not prepared.valid:
        report = prepared.report
        raise DatasetInvalid(
            f"the dataset is not valid: {prepared.message}",
            details=report.model_dump(mode="json") if report else None,
        )
    spec = job.spec
    local = platform.settings.runtime == "local"
    try:  # a hub or S3 model outside the catalog: by the config the prepare stage read
        model = resolve_base_model(
            spec.base_model, allow_local_paths=local, config=prepared.base_model_config
        )
    except InvalidInputError as error:
        raise ModelFactsUnknown(
            f"the model's facts are unknown: {error.message}; the prepare stage could not "
            "read its config.json either (for a gated hub model, give the trainer a token)"
        ) from error
    required_gib = job.required_gib
    if required_gib is None:  # the API could not read the model: the fit is checked here
        fit = check_fit(model, spec)
        if not fit.fits:
            raise ModelDoesNotFit(does_not_fit_message(fit), details=fit.model_dump(mode="json"))
        required_gib = fit.required_gib
    estimate = estimate_job(platform, model, spec, prepared.examples, prepared.mean_tokens)
    warnings = [w.code.value for w in prepared.report.warnings] if prepared.report else []

    def record(current: JobRecord) -> JobRecord:
        dataset = current.dataset.model_copy(
            update={
                "format": prepared.format,
                "num_examples": prepared.examples,
                "mean_tokens": prepared.mean_tokens,
                "splits": {name: split.examples for name, split in prepared.splits.items()},
                "tokens": prepared.tokens,
                "tokens_estimated": prepared.tokens_estimated,
                "warnings": warnings,
            }
        )
        cost = current.cost.model_copy(
            update={
                "hourly_rate_usd": estimate.hourly_rate_usd,
                "estimated_total_usd": estimate.estimated_cost_usd,
            }
        )
        return current.model_copy(
            update={
                "dataset": dataset,
                "estimate": estimate,
                "cost": cost,
                "required_gib": required_gib,
            }
        )

    recorded = update_job(platform, job_id, record)
    _cap_run_time(platform, recorded)
    log(
        platform,
        job_id,
        "build",
        "dataset prepared",
        splits=recorded.dataset.splits,
        tokens=prepared.tokens,
        tokens_estimated=prepared.tokens_estimated,
        estimated_hours=estimate.estimated_hours,
    )
    return recorded


def _cap_run_time(platform: Platform, job: JobRecord) -> None:
    """The plan's run-time cap follows the estimate recomputed from the real counts."""
    key = JobLayout.of(job).plan
    with platform.blobs.open(key) as stream:
        plan = TrainerPlan.model_validate_json(stream.read())
    cap = run_time_cap_hours(job.spec.hardware.max_run_hours, job.estimate)
    options = plan.options.model_copy(update={"max_run_hours": cap})
    plan = plan.model_copy(update={"options": options})
    platform.blobs.put(key, plan.model_dump_json(indent=2).encode())


def prepare(platform: Platform, job_id: str, events: EventSinkSettings) -> Prepared:
    """Validate and split the dataset in this process, then write the trainer plan (the aws
    state machine's step until it runs the prepare stage)."""
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
            method=spec.method,
        )
    except InvalidInputError as error:
        raise DatasetInvalid(error.message, details=error.details) from error
    manifest = prepared.manifest
    log(platform, job_id, "build", "dataset split", counts=manifest.counts, sha256=manifest.sha256)

    def record_dataset(current: JobRecord) -> JobRecord:
        dataset = current.dataset.model_copy(
            update={
                "format": manifest.format,
                "num_examples": sum(manifest.counts.values()),
                "mean_tokens": manifest.mean_tokens,
                "splits": manifest.counts,
            }
        )
        return current.model_copy(update={"dataset": dataset})

    update_job(platform, job_id, record_dataset)
    return write_plan(platform, job_id, events)


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
    """→ deploying, and start the trainer; JobPaused when a pause came first."""
    if _stop_requested(platform, job_id):
        raise JobStopped("stop requested before launch")

    def deploying(job: JobRecord) -> JobRecord:
        if job.status is JobStatus.PAUSING:  # a resumed job paused again before its launch
            raise JobPaused("pause requested before launch")
        if job.status is not JobStatus.DEPLOYING:  # a resumed job may be deploying already
            check_transition(job.status, JobStatus.DEPLOYING)
            job = job.with_status(JobStatus.DEPLOYING, "starting the trainer")
        return job.model_copy(update={"training_started_at": job.training_started_at or utcnow()})

    job = update_job(platform, job_id, deploying)
    start_stage(platform, job, compute, plan_uri, image, TrainerStage.TRAIN)


def start_stage(
    platform: Platform,
    job: JobRecord,
    compute: Compute,
    plan_uri: str,
    image: str,
    stage: TrainerStage,
) -> None:
    """Start one run of the trainer program; LaunchFailed when it cannot start (transient
    errors pass through for a retry)."""
    what = "the trainer" if stage is TrainerStage.TRAIN else f"the {stage} stage"
    try:
        compute.launch(job, plan_uri, image, stage)
    except TransientError:
        raise
    except Exception as error:
        raise LaunchFailed(f"{what} could not be started: {error}") from error
    # "trainer launched" is what the JobsLaunched metric counts: once per job.
    started = "trainer launched" if stage is TrainerStage.TRAIN else f"{stage} stage started"
    log(platform, job.job_id, "deployment", started, image=image)


def finalize(platform: Platform, job_id: str) -> JobRecord:
    """Verify the artifacts and archive them in this process, then `complete` (the aws state
    machine's step until it runs the finalize stage)."""
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
    return complete(platform, job_id)


def complete(platform: Platform, job_id: str) -> JobRecord:
    """→ completed, with the output's files, the archives' sizes and the final cost.

    Only a job still training or evaluating completes: one the reconciler failed or that
    ended otherwise meanwhile is returned as it is; one asked to stop raises JobStopped (the
    workflow then cancels it).
    """
    job = _job(platform, job_id)
    layout = JobLayout.of(job)
    files = output_files(platform, layout)
    archives = {
        plan.name: platform.blobs.size(layout.key(plan.name))
        for plan in output_archives(files)
        if platform.blobs.exists(layout.key(plan.name))
    }
    completed_here = False  # set by the last (retried) call of `completed`

    def completed(current: JobRecord) -> JobRecord:
        nonlocal completed_here
        if current.is_stop_requested and not current.is_terminal:
            raise JobStopped(f"job {job_id} was asked to stop; not completed")
        completed_here = can_transition(current.status, JobStatus.COMPLETED)
        if not completed_here:
            return current
        done = current.with_status(JobStatus.COMPLETED, "training finished")
        artifacts = Artifacts(
            location=platform.blobs.uri(layout.output), files=files, archives=archives
        )
        return done.model_copy(
            update={
                "artifacts": artifacts,
                "cost": live_cost(done, done.updated_at),
                "progress": done.progress.model_copy(update={"fraction": 1.0}),
                "task_token": None,
                "task_stage": None,
            }
        )

    result = update_job(platform, job_id, completed)
    if completed_here:
        log_ended(platform, result)
    else:
        log(platform, job_id, "deployment", "not completed", status=result.status.value)
    return result


def fail(
    platform: Platform, job_id: str, compute: Compute, code: str, message: str, step: str
) -> None:
    """Record why the job failed, clean its compute up → failed (no-op once ended)."""
    job = platform.jobs.get(job_id)
    if job is None or is_terminal(job.status):
        return
    compute.stop(job)
    if job.status is JobStatus.STOPPING:
        keep_checkpoints(platform, job)
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
    keep_checkpoints(platform, job)

    def cancelled(current: JobRecord) -> JobRecord:
        if current.status is not JobStatus.STOPPING:
            current = current.with_status(JobStatus.STOPPING, "stop requested")
        return current.with_status(JobStatus.CANCELLED, "stopped by the user")

    _end(platform, job_id, cancelled)


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
        log_ended(platform, ended)
