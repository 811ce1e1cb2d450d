"""Repair jobs whose workflow, Kubernetes Job or model server no longer matches their record.

Run on a schedule (aws). These mismatches are repaired:

- an unfinished job with no running execution: a pending job whose start was lost is
  started again (after a grace period); a stopping job is cancelled; a paused job holds
  none by design and is left alone, a pausing one is paused; any other is failed with
  `workflow_lost` (its compute cleaned up), since nothing will move it any more;
- a running job past its cost cap (`hardware.max_cost_usd`) is paused, also when its
  trainer sends no events;
- a running execution whose job has ended or vanished is stopped;
- a trainer Job on the cluster whose job has ended is deleted; one whose record was deleted
  too (with its service account);
- model servers, when the pass is given them: see whetstone/service/serving_reconcile.py.

Each job is repaired on its own: one whose repair raises is logged and counted under
`errors`, and the pass goes on with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Protocol

from pydantic import BaseModel, Field

from whetstone.core.job import JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.observability import logger
from whetstone.ports import Compute, TaskCallbacks
from whetstone.service import workflow
from whetstone.service.pausing import pause, pause_at_cost_cap
from whetstone.service.platform import Platform
from whetstone.service.serving_reconcile import (
    ServedModels,
    ServingRepairs,
    reconcile_deployments,
    record_or_remove,
)
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

    def restart(self, job: JobRecord) -> None:
        """Start a new execution for the job, under a name no earlier one used."""

    def abort(self, execution: str, reason: str) -> None: ...


class ClusterJobs(Compute, Protocol):
    def trainer_job_ids(self) -> list[str]: ...

    def remove_orphan(self, job_id: str) -> None:
        """Delete the trainer Jobs and service account of a job that has no record."""


class Repairs(BaseModel):
    restarted: Annotated[list[str], Field(description="Pending jobs started again.")] = []
    failed: Annotated[list[str], Field(description="Jobs failed as workflow_lost.")] = []
    cancelled: Annotated[list[str], Field(description="Stopping jobs cancelled.")] = []
    paused: Annotated[
        list[str], Field(description="Pausing jobs paused, and jobs paused at their cost cap.")
    ] = []
    aborted: Annotated[list[str], Field(description="Executions of ended jobs stopped.")] = []
    deleted: Annotated[list[str], Field(description="Trainer Jobs of ended jobs deleted.")] = []
    orphans: Annotated[list[str], Field(description="Trainer Jobs of deleted jobs removed.")] = []
    serving: Annotated[
        ServingRepairs, Field(description="What the pass over model servers repaired.")
    ] = Field(default_factory=ServingRepairs)
    errors: Annotated[
        list[str], Field(description="Jobs whose repair raised (logged); the pass went on.")
    ] = []


def isolated(repairs: Repairs, job_id: str, what: str, repair: Callable[[], None]) -> None:
    """Run one job's repair; an error is logged and counted, not raised."""
    try:
        repair()
    except Exception:
        logger.exception("reconciling a job failed", job_id=job_id, what=what)
        repairs.errors.append(job_id)


def reconcile(
    platform: Platform,
    runs: WorkflowRuns,
    cluster: ClusterJobs,
    *,
    servers: ServedModels | None = None,
    now: datetime | None = None,
) -> Repairs:
    now = now or utcnow()
    repairs = Repairs()
    running = runs.running()
    for job in platform.jobs.list_unfinished():
        if job.job_id in running and pause_at_cost_cap(platform, job, now):
            repairs.paused.append(job.job_id)
        elif job.job_id in running:
            isolated(
                repairs,
                job.job_id,
                "waiting stage",
                partial(_settle_lost_stage, platform, job, runs, cluster, now),
            )
        else:
            isolated(
                repairs,
                job.job_id,
                "unfinished job",
                partial(_repair_unfinished, platform, runs, cluster, job, now, repairs),
            )
    for job_id, execution in running.items():
        isolated(
            repairs,
            job_id,
            "execution",
            partial(_repair_execution, platform, runs, job_id, execution, repairs),
        )
    for job_id in cluster.trainer_job_ids():
        isolated(
            repairs,
            job_id,
            "trainer job",
            partial(_repair_trainer_job, platform, cluster, job_id, repairs),
        )
    if servers is not None:
        repairs.serving = reconcile_deployments(
            platform,
            servers,
            now=now,
            isolate=lambda job_id, what, repair: isolated(repairs, job_id, what, repair),
        )
    logger.info("reconciled", errors_count=len(repairs.errors), **repairs.model_dump())
    return repairs


def _repair_unfinished(
    platform: Platform,
    runs: WorkflowRuns,
    cluster: ClusterJobs,
    job: JobRecord,
    now: datetime,
    repairs: Repairs,
) -> None:
    grace = timedelta(seconds=platform.settings.pending_grace_s)
    if job.status is JobStatus.PENDING:
        if now - job.updated_at >= grace:
            runs.restart(job)
            repairs.restarted.append(job.job_id)
    elif job.status is JobStatus.STOPPING:
        workflow.cancel(platform, job.job_id, cluster)
        repairs.cancelled.append(job.job_id)
    elif job.status is JobStatus.PAUSED:
        return  # it waits for a resume, which starts a new execution
    elif job.status is JobStatus.PAUSING and now - job.updated_at >= grace:
        pause(platform, job.job_id, cluster)  # its execution ended before its Pause step
        repairs.paused.append(job.job_id)
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


def _repair_execution(
    platform: Platform, runs: WorkflowRuns, job_id: str, execution: str, repairs: Repairs
) -> None:
    record = platform.jobs.get(job_id)
    if record is None or record.is_terminal:
        runs.abort(execution, f"job {job_id} has ended")
        repairs.aborted.append(job_id)


def _repair_trainer_job(
    platform: Platform, cluster: ClusterJobs, job_id: str, repairs: Repairs
) -> None:
    record = record_or_remove(platform, cluster, job_id, "trainer Job", repairs.orphans)
    if record is None or not record.is_terminal:
        return
    if record.deployment is not None and record.deployment.is_live:
        # Its model server runs under the job's service account: leave the finished
        # trainer Job to the cluster's TTL rather than take the account away.
        return
    cluster.stop(record)
    repairs.deleted.append(job_id)


def _settle_lost_stage(
    platform: Platform, job: JobRecord, runs: WorkflowRuns, cluster: ClusterJobs, now: datetime
) -> None:
    """A running workflow waiting on a trainer stage whose Kubernetes Job is gone or ended
    without its event: answer the wait (aws; a runner without callbacks has none)."""
    if isinstance(runs, TaskCallbacks):
        grace_s = platform.settings.pending_grace_s
        settle_lost_stage(platform, job, cluster, runs, now=now, grace_s=grace_s)
