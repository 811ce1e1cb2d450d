"""The workflow's pause step: pausing → paused, the trainer stopped with its checkpoint;
and the pause of a job that reached its cost cap.

The trainer checkpoints on SIGTERM, so stopping its compute keeps where it was; the step
archives that checkpoint for download, releases the compute and records the cost up to now
(the time paused is not billed: core/job.py `live_cost`). A resumed job starts again at the
launch of the train stage, which resumes from the latest checkpoint with the same step,
optimizer, scheduler and data order.
"""

from __future__ import annotations

from datetime import datetime

from whetstone.core.errors import ConflictError
from whetstone.core.job import JobRecord, live_cost
from whetstone.core.lifecycle import PAUSABLE_STATUSES, JobStatus
from whetstone.observability import logger
from whetstone.ports import Compute
from whetstone.service.artifacts import keep_checkpoints
from whetstone.service.budgets import cap_message, cap_reached
from whetstone.service.job_log import log
from whetstone.service.jobs import request_pause
from whetstone.service.platform import Platform
from whetstone.service.records import update_job
from whetstone.service.workflow_errors import JobStopped


def pause(platform: Platform, job_id: str, compute: Compute) -> JobRecord:
    """pausing → paused, once the trainer has stopped. JobStopped when a stop came meanwhile
    (the workflow cancels the job); a job that is no longer pausing is left as it is."""
    job = platform.jobs.get(job_id)
    if job is None:
        raise JobStopped(f"job {job_id} no longer exists")
    if job.status is not JobStatus.PAUSING:
        return job
    compute.stop(job)
    keep_checkpoints(platform, job)

    def paused(current: JobRecord) -> JobRecord:
        if current.is_stop_requested:
            raise JobStopped(f"job {job_id} was asked to stop while pausing")
        if current.status is not JobStatus.PAUSING:
            return current
        moved = current.with_status(JobStatus.PAUSED, "checkpoint kept, compute released")
        return moved.model_copy(
            update={
                "cost": live_cost(moved, moved.updated_at),
                "task_token": None,
                "task_stage": None,
            }
        )

    result = update_job(platform, job_id, paused)
    checkpoint = result.checkpoints[-1].step if result.checkpoints else None
    log(
        platform,
        job_id,
        "deployment",
        "job paused",
        status=result.status.value,
        checkpoint_step=checkpoint,
        cost_usd=result.cost.current_usd,
    )
    return result


def pause_at_cost_cap(platform: Platform, job: JobRecord, now: datetime) -> bool:
    """Pause a deploying or training job whose spend up to `now` reached its
    `hardware.max_cost_usd`, saying why in its status history, its log and the service log.
    Whether it asked for the pause. Called on the trainer's metrics and resources events
    (both runtimes), by the local runner while it waits and by the aws reconciler."""
    if job.status not in PAUSABLE_STATUSES:
        return False
    spent = job.model_copy(update={"cost": live_cost(job, now)})
    if not cap_reached(spent):
        return False
    reason = cap_message(spent)
    try:
        request_pause(platform, job.job_id, reason)
    except ConflictError:
        return False  # it moved on meanwhile (stopped, paused, ended)
    logger.info("job paused at its cost cap", job_id=job.job_id, reason=reason)
    return True
