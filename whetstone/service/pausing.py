"""The workflow's pause step: pausing → paused, the trainer stopped with its checkpoint.

The trainer checkpoints on SIGTERM, so stopping its compute keeps where it was; the step
archives that checkpoint for download, releases the compute and records the cost up to now
(the time paused is not billed: core/job.py `live_cost`). A resumed job starts again at the
launch of the train stage, which resumes from the latest checkpoint with the same step,
optimizer, scheduler and data order.
"""

from __future__ import annotations

from whetstone.core.job import JobRecord, live_cost
from whetstone.core.lifecycle import JobStatus
from whetstone.ports import Compute
from whetstone.service.job_log import log
from whetstone.service.platform import Platform
from whetstone.service.records import update_job
from whetstone.service.workflow import JobStopped, keep_checkpoints


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
