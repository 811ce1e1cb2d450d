"""Waiting for a trainer stage by callback (aws).

The workflow runs each trainer stage (prepare, train, finalize) as a Kubernetes Job and
waits for it with a task token (`.waitForTaskToken`): `run_stage` stores the token on the
job, refused once a stop was asked for, and starts the stage. Then exactly one of these
answers it:

- the stage's terminal status event (`answer_stage`, from ingest): done → success,
  failed → failure with the trainer's error code; `interrupted` answers nothing (a pod
  taken away is retried by its Job);
- the reconciler finding the stage's Kubernetes Job gone, failed or finished with the
  token still stored (`settle_lost_stage`);
- a stop (the orchestrator's `stop` fails the task with `JobStopped`);
- a pause of the train stage (the orchestrator's `pause` fails it with `JobPaused`; a
  train stage asked for while pausing raises it at once).

Metrics and resources events of the train stage send heartbeats (`keep_alive`): a trainer
silent past the state's HeartbeatSeconds fails the job as `trainer_unresponsive`.
"""

from __future__ import annotations

from datetime import datetime

from whetstone.core.events import StatusDetail, TrainerErrorCode, TrainerPhase, TrainerStage
from whetstone.core.job import JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus, check_transition
from whetstone.observability import logger
from whetstone.ports import Compute, ComputeState, TaskCallbacks
from whetstone.service import workflow
from whetstone.service.platform import Platform
from whetstone.service.records import update_job

# Error names a stage's task fails with beside the trainer's own codes (TrainerErrorCode);
# the workflow's RecordFailure keeps them as the job's error code.
TRAINER_LOST = "trainer_lost"
TRAINER_UNRESPONSIVE = "trainer_unresponsive"
# Kubernetes' reason for a Job killed at its activeDeadlineSeconds.
DEADLINE_EXCEEDED = "DeadlineExceeded"


def _waiting_for(job: JobRecord, stage: TrainerStage, token: str) -> JobRecord:
    if job.is_terminal or job.is_stop_requested:
        raise workflow.JobStopped(f"stop requested before the {stage} stage")
    if stage is TrainerStage.TRAIN and job.status is JobStatus.PAUSING:
        raise workflow.JobPaused("pause requested before the train stage")
    if stage is TrainerStage.PREPARE and job.status is not JobStatus.DEPLOYING:
        check_transition(job.status, JobStatus.DEPLOYING)
        job = job.with_status(JobStatus.DEPLOYING, "preparing the dataset on the cluster")
    if stage is TrainerStage.TRAIN and job.training_started_at is None:
        job = job.model_copy(update={"training_started_at": utcnow()})
    return job.model_copy(update={"task_token": token, "task_stage": stage})


def run_stage(
    platform: Platform,
    job_id: str,
    compute: Compute,
    stage: TrainerStage,
    token: str,
    plan_uri: str,
    image: str,
) -> None:
    """Store the stage's task token on the job (JobStopped once a stop was asked for: the
    write is conditional, so a stop either sees the token or this sees the stop), then
    start the stage's Kubernetes Job."""
    job = update_job(platform, job_id, lambda current: _waiting_for(current, stage, token))
    workflow.start_stage(platform, job, compute, plan_uri, image, stage)


def _clear_token(platform: Platform, job_id: str, token: str) -> None:
    """Forget the token once answered; a newer stage's token stays."""

    def clear(job: JobRecord) -> JobRecord:
        if job.task_token != token:
            return job
        return job.model_copy(update={"task_token": None, "task_stage": None})

    update_job(platform, job_id, clear)


def _answer(
    platform: Platform,
    job: JobRecord,
    callbacks: TaskCallbacks,
    error: tuple[str, str] | None,
) -> None:
    token = job.task_token
    if token is None:
        return
    if error is None:
        callbacks.complete_task(token, {"stage": str(job.task_stage)})
    else:
        callbacks.fail_task(token, *error)
    # Answered first, cleared after: a lost clear only means a later duplicate is dropped.
    _clear_token(platform, job.job_id, token)


def answer_stage(
    platform: Platform, job: JobRecord, detail: StatusDetail, callbacks: TaskCallbacks
) -> None:
    """A terminal status event of the stage the workflow waits for answers its task."""
    if job.task_stage is not detail.stage:
        return  # a duplicate or late event of a stage already answered
    if detail.phase is TrainerPhase.DONE:
        _answer(platform, job, callbacks, None)
    elif detail.phase is TrainerPhase.FAILED and detail.error_code is not None:
        message = detail.message or f"the {detail.stage} stage failed"
        _answer(platform, job, callbacks, (detail.error_code.value, message))


def keep_alive(job: JobRecord, callbacks: TaskCallbacks) -> None:
    """A sign of life from the train stage restarts its heartbeat timeout."""
    if job.task_token is not None and job.task_stage is TrainerStage.TRAIN:
        callbacks.heartbeat(job.task_token)


def settle_lost_stage(
    platform: Platform,
    job: JobRecord,
    compute: Compute,
    callbacks: TaskCallbacks,
    *,
    now: datetime,
    grace_s: float,
) -> bool:
    """The reconciler's duty for a job waiting on a stage: when the stage's Kubernetes Job
    is gone or ended and its event never came, answer the task (a finished Job succeeds,
    any other fails). Whether it answered. A job changed within `grace_s` is left alone:
    its stage may only just have been started."""
    if job.task_token is None or job.task_stage is None:
        return False
    # Read on every pass: it also copies the stage's pod events into the deployment log.
    status = compute.status(job, job.task_stage)
    if status.state in (ComputeState.PENDING, ComputeState.RUNNING):
        return False
    if (now - job.updated_at).total_seconds() < grace_s:
        return False
    if status.state is ComputeState.SUCCEEDED:
        error = None
    elif status.message and status.message.startswith(DEADLINE_EXCEEDED):
        error = (TrainerErrorCode.RUN_TIME_EXCEEDED.value, status.message)
    else:
        cause = f"the {job.task_stage} stage's pod is gone ({status.message or status.state})"
        error = (TRAINER_LOST, cause)
    logger.warning("stage answered by the reconciler", job_id=job.job_id, state=status.state)
    _answer(platform, job, callbacks, error)
    return True
