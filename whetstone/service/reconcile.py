"""Repair jobs whose workflow or Kubernetes Job no longer matches their status.

Run on a schedule (aws). Three mismatches are repaired:

- an unfinished job with no running execution: a pending job whose start was lost is
  started again (after a grace period); a stopping job is cancelled; any other is failed
  with `workflow_lost` (its compute cleaned up), since nothing will move it any more;
- a running execution whose job has ended or vanished is stopped;
- a trainer Job on the cluster whose job has ended or vanished is deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Protocol

from pydantic import BaseModel, Field

from whetstone.core.job import JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.observability import logger
from whetstone.ports import Compute, TaskCallbacks
from whetstone.service import workflow
from whetstone.service.platform import Platform
from whetstone.service.stage_tasks import settle_lost_stage

# The step a job was in, for the error of a job whose workflow is gone.
STATUS_STEP = {
    JobStatus.PREPARING: "prepare",
    JobStatus.BUILDING: "build",
    JobStatus.DEPLOYING: "launch",
    JobStatus.TRAINING: "train",
    JobStatus.EVALUATING: "train",
}


class WorkflowRuns(Protocol):
    def running(self) -> dict[str, str]:
        """job id → id of its running workflow execution."""

    def has_execution(self, job: JobRecord) -> bool: ...

    def restart(self, job: JobRecord, attempt: int) -> None: ...

    def abort(self, execution: str, reason: str) -> None: ...


class ClusterJobs(Compute, Protocol):
    def trainer_job_ids(self) -> list[str]: ...


class Repairs(BaseModel):
    restarted: Annotated[list[str], Field(description="Pending jobs started again.")] = []
    failed: Annotated[list[str], Field(description="Jobs failed as workflow_lost.")] = []
    cancelled: Annotated[list[str], Field(description="Stopping jobs cancelled.")] = []
    aborted: Annotated[list[str], Field(description="Executions of ended jobs stopped.")] = []
    deleted: Annotated[list[str], Field(description="Trainer Jobs of ended jobs deleted.")] = []


def reconcile(
    platform: Platform,
    runs: WorkflowRuns,
    cluster: ClusterJobs,
    *,
    now: datetime | None = None,
) -> Repairs:
    now = now or utcnow()
    grace = timedelta(seconds=platform.settings.pending_grace_s)
    repairs = Repairs()
    running = runs.running()
    for job in platform.jobs.list_unfinished():
        if job.job_id in running:
            _settle_lost_stage(platform, job, runs, cluster, now)
            continue
        if job.status is JobStatus.PENDING:
            if now - job.updated_at >= grace:
                runs.restart(job, attempt=1 if runs.has_execution(job) else 0)
                repairs.restarted.append(job.job_id)
        elif job.status is JobStatus.STOPPING:
            workflow.cancel(platform, job.job_id, cluster)
            repairs.cancelled.append(job.job_id)
        elif now - job.updated_at >= grace:  # a step may have only just handed over
            step = STATUS_STEP.get(job.status, "workflow")
            workflow.fail(
                platform,
                job.job_id,
                cluster,
                "workflow_lost",
                "the job's workflow ended without finishing it; start the job again",
                step,
            )
            repairs.failed.append(job.job_id)
    for job_id, execution in running.items():
        record = platform.jobs.get(job_id)
        if record is None or record.is_terminal:
            runs.abort(execution, f"job {job_id} has ended")
            repairs.aborted.append(job_id)
    for job_id in cluster.trainer_job_ids():
        record = platform.jobs.get(job_id)
        if record is not None and not record.is_terminal:
            continue
        if record is not None and record.deployment is not None and record.deployment.is_live:
            # Its model server runs under the job's service account: leave the finished
            # trainer Job to the cluster's TTL rather than take the account away.
            continue
        if record is not None:
            cluster.stop(record)
            repairs.deleted.append(job_id)
        else:
            logger.warning("trainer job of an unknown job left on the cluster", job_id=job_id)
    logger.info("reconciled", **repairs.model_dump())
    return repairs


def _settle_lost_stage(
    platform: Platform, job: JobRecord, runs: WorkflowRuns, cluster: ClusterJobs, now: datetime
) -> None:
    """A running workflow waiting on a trainer stage whose Kubernetes Job is gone or ended
    without its event: answer the wait (aws; a runner without callbacks has none)."""
    if isinstance(runs, TaskCallbacks):
        grace_s = platform.settings.pending_grace_s
        settle_lost_stage(platform, job, cluster, runs, now=now, grace_s=grace_s)
