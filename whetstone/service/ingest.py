"""Trainer events into the job: metric series, progress, live cost, logs, status, checkpoints;
a job whose live cost reaches its cap is paused.

The same function serves both runtimes: the local runner feeds it the JSON lines
the trainer prints, the aws ingest Lambda the events EventBridge routes to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from whetstone.core.events import (
    TERMINAL_PHASES,
    CheckpointDetail,
    Detail,
    LogDetail,
    MetricsDetail,
    ResourcesDetail,
    StatusDetail,
    TrainerEvent,
    TrainerPhase,
)
from whetstone.core.job import Checkpoint, JobError, JobRecord, LogEntry, MetricPoint, live_cost
from whetstone.core.lifecycle import JobStatus, can_transition
from whetstone.observability import logger
from whetstone.ports import TaskCallbacks
from whetstone.service.event_credentials import event_is_authentic
from whetstone.service.metric_names import METRIC_FIELDS
from whetstone.service.pausing import pause_at_cost_cap
from whetstone.service.platform import Platform
from whetstone.service.records import update_job
from whetstone.service.stage_tasks import answer_stage, keep_alive

# The job record lists the most recent checkpoints; the trainer keeps fewer on disk.
MAX_LISTED_CHECKPOINTS = 20

# Trainer phases that move the job, and the status each one moves it to.
PHASE_STATUS = {
    TrainerPhase.TRAINING: JobStatus.TRAINING,
    TrainerPhase.EVALUATING: JobStatus.EVALUATING,
}


def _finite(values: dict[str, float | None]) -> dict[str, float]:
    """NaN and infinity have no JSON form; the trainer reports them as an error instead."""
    return {k: v for k, v in values.items() if v is not None and math.isfinite(v)}


def ingest_event(platform: Platform, event: TrainerEvent) -> None:
    """Apply one trainer event to its job; events of a missing or ended job are dropped."""
    job = _authentic_job(platform, event)
    if job is None or job.is_terminal:
        return
    detail = event.detail
    if isinstance(detail, MetricsDetail):
        _metrics(platform, event, detail)
    elif isinstance(detail, ResourcesDetail):
        _resources(platform, event, detail, job.progress.step)
    elif isinstance(detail, StatusDetail):
        _status(platform, event, detail)
    elif isinstance(detail, CheckpointDetail):
        _checkpoint(platform, event, detail)
    elif isinstance(detail, LogDetail):
        platform.logs.append(
            event.job_id,
            [
                LogEntry(
                    time=event.time,
                    source="training",
                    level=detail.level,
                    message=detail.message,
                    fields=detail.fields,
                )
            ],
        )
    if isinstance(detail, MetricsDetail | ResourcesDetail):
        pause_at_cost_cap(platform, job, event.time)
    _answer_workflow(platform, job, detail)


def _answer_workflow(platform: Platform, job: JobRecord, detail: Detail) -> None:
    """aws: a stage's end answers the workflow's wait for it; its metrics keep it alive."""
    callbacks = platform.orchestrator
    if not isinstance(callbacks, TaskCallbacks):
        return  # the local runner waits on its subprocess
    if isinstance(detail, StatusDetail) and detail.phase in TERMINAL_PHASES:
        answer_stage(platform, job, detail, callbacks)
    elif isinstance(detail, MetricsDetail | ResourcesDetail):
        keep_alive(job, callbacks)


def _authentic_job(platform: Platform, event: TrainerEvent) -> JobRecord | None:
    """The event's job, or None when there is none or the event does not carry its
    credential (another job's trainer reporting under this job's id)."""
    job = platform.jobs.get(event.job_id)
    if job is None:
        return None
    if not event_is_authentic(job, event):
        logger.warning("trainer event dropped: not the job's credential", job_id=event.job_id)
        return None
    return job


def _update(platform: Platform, job_id: str, change: Callable[[JobRecord], JobRecord]) -> None:
    def guarded(job: JobRecord) -> JobRecord:
        return job if job.is_terminal else change(job)

    update_job(platform, job_id, guarded)


def _metrics(platform: Platform, event: TrainerEvent, detail: MetricsDetail) -> None:
    values = _finite({name: getattr(detail, name) for name in METRIC_FIELDS})
    platform.jobs.put_metrics(
        event.job_id,
        [
            MetricPoint(name=name, step=detail.step, value=value, time=event.time)
            for name, value in values.items()
        ],
    )

    def progress(job: JobRecord) -> JobRecord:
        moved = job.model_copy(
            update={
                "progress": job.progress.model_copy(
                    update={
                        "step": detail.step,
                        "max_steps": detail.max_steps,
                        "epoch": detail.epoch,
                        "fraction": detail.progress,
                        "eta_seconds": detail.eta_seconds,
                    }
                ),
                "latest_metrics": {**job.latest_metrics, **values},
            }
        )
        return moved.model_copy(update={"cost": live_cost(moved, event.time)})

    _update(platform, event.job_id, progress)


def _resources(platform: Platform, event: TrainerEvent, detail: ResourcesDetail, step: int) -> None:
    values: dict[str, float | None] = {
        "cpu_pct": detail.cpu_pct,
        "ram_used_mb": detail.ram_used_mb,
        "process_rss_mb": detail.process_rss_mb,
    }
    for gpu in detail.gpus:
        values[f"gpu{gpu.index}_util_pct"] = gpu.utilization_pct
        values[f"gpu{gpu.index}_memory_used_mb"] = gpu.memory_used_mb
        values[f"gpu{gpu.index}_temperature_c"] = gpu.temperature_c
    platform.jobs.put_metrics(
        event.job_id,
        [
            MetricPoint(name=name, step=step, value=value, time=event.time)
            for name, value in _finite(values).items()
        ],
    )


def _status(platform: Platform, event: TrainerEvent, detail: StatusDetail) -> None:
    level = "error" if detail.phase is TrainerPhase.FAILED else "info"
    message = f"trainer {detail.phase}" + (f": {detail.message}" if detail.message else "")
    platform.logs.append(
        event.job_id,
        [LogEntry(time=event.time, source="training", level=level, message=message)],
    )

    def apply(job: JobRecord) -> JobRecord:
        if detail.device is not None:
            job = job.model_copy(update={"device": detail.device})
        target = PHASE_STATUS.get(detail.phase)
        if target is not None:
            # A training job resumed after a restart passes through deploying again.
            if job.status is JobStatus.DEPLOYING and target is JobStatus.EVALUATING:
                job = job.with_status(JobStatus.TRAINING, "trainer resumed")
            if job.status is not target and can_transition(job.status, target):
                return job.with_status(target, detail.message)
            return job
        if detail.phase is TrainerPhase.FAILED and detail.error_code is not None:
            error = JobError(
                code=detail.error_code.value,
                message=detail.message or "the trainer failed",
                step=detail.stage.value,
            )
            return job.model_copy(update={"error": error})
        return job

    _update(platform, event.job_id, apply)


def _checkpoint(platform: Platform, event: TrainerEvent, detail: CheckpointDetail) -> None:
    checkpoint = Checkpoint(
        step=detail.step,
        epoch=detail.epoch,
        location=detail.location,
        eval_loss=detail.eval_loss,
        at=event.time,
    )

    def record(job: JobRecord) -> JobRecord:
        kept = [c for c in job.checkpoints if c.step != checkpoint.step]
        recent = [*kept, checkpoint][-MAX_LISTED_CHECKPOINTS:]
        return job.model_copy(update={"checkpoints": recent})

    _update(platform, event.job_id, record)
    platform.logs.append(
        event.job_id,
        [
            LogEntry(
                time=event.time,
                source="training",
                level="info",
                message="checkpoint saved",
                fields={"step": detail.step, "location": detail.location},
            )
        ],
    )
