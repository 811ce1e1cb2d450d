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
`LaunchFailed`, `TrainingFailed`, `ArtifactsMissing`: service/workflow_errors.py) that the
state machine catches by name; `fail` records the code, the message and the step. The steps
around the prepare stage (`write_plan`, `record_prepared`, `prepare`) are in
service/workflow_prepare.py; this module answers for them and the failures too, so every
step is called as `workflow.<step>`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, Field

from whetstone.core.archives import files_under, holds_loadable_model, output_archives
from whetstone.core.errors import TransientError
from whetstone.core.events import TrainerStage
from whetstone.core.job import Artifacts, JobError, JobRecord, live_cost, utcnow
from whetstone.core.layout import JobLayout, OutputNames
from whetstone.core.lifecycle import JobStatus, can_transition, check_transition, is_terminal
from whetstone.ports import Compute, ImageBuilder
from whetstone.service.artifacts import archive_outputs, keep_checkpoints, output_files
from whetstone.service.job_log import JOB_ENDED_LINE as JOB_ENDED_LINE
from whetstone.service.job_log import log as log
from whetstone.service.job_log import log_ended
from whetstone.service.platform import Platform
from whetstone.service.records import transition, update_job
from whetstone.service.workflow_errors import ArtifactsMissing as ArtifactsMissing
from whetstone.service.workflow_errors import DatasetInvalid as DatasetInvalid
from whetstone.service.workflow_errors import ImageBuildFailed as ImageBuildFailed
from whetstone.service.workflow_errors import JobPaused as JobPaused
from whetstone.service.workflow_errors import JobStopped as JobStopped
from whetstone.service.workflow_errors import LaunchFailed as LaunchFailed
from whetstone.service.workflow_errors import ModelDoesNotFit as ModelDoesNotFit
from whetstone.service.workflow_errors import ModelFactsUnknown as ModelFactsUnknown
from whetstone.service.workflow_errors import TrainingFailed as TrainingFailed
from whetstone.service.workflow_errors import WorkflowError as WorkflowError
from whetstone.service.workflow_errors import require_job
from whetstone.service.workflow_prepare import prepare as prepare
from whetstone.service.workflow_prepare import record_prepared as record_prepared
from whetstone.service.workflow_prepare import write_plan as write_plan


def _stop_requested(platform: Platform, job_id: str) -> bool:
    return require_job(platform, job_id).is_stop_requested


def begin(platform: Platform, job_id: str) -> None:
    """pending → preparing; a resumed job (deploying again) is left as it is."""
    if _stop_requested(platform, job_id):
        raise JobStopped("stop requested before the job started")
    if require_job(platform, job_id).status is JobStatus.DEPLOYING:
        return
    transition(platform, job_id, JobStatus.PREPARING, "preparing the dataset and the plan")


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
    job = require_job(platform, job_id)
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
    job = require_job(platform, job_id)
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
