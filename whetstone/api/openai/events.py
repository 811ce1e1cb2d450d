"""A job's OpenAI events and checkpoints: its status changes, its training loss per logged
step and its kept checkpoints, newest first."""

from __future__ import annotations

from whetstone.api.openai.jobs import fine_tuned_model
from whetstone.api.openai.schemas import (
    OpenAICheckpointMetrics,
    OpenAIJobCheckpoint,
    OpenAIJobEvent,
)
from whetstone.core.job import JobRecord
from whetstone.core.lifecycle import JobStatus
from whetstone.service.platform import Platform

_METRICS = ("loss", "eval_loss")


def _status_events(job: JobRecord) -> list[OpenAIJobEvent]:
    events = []
    for index, change in enumerate(job.status_history):
        failed = change.status is JobStatus.FAILED
        message = f"Job {change.status}" + (f": {change.message}" if change.message else "")
        if failed and job.error is not None:
            message = f"Job failed: {job.error.message}"
        events.append(
            OpenAIJobEvent(
                id=f"ftevent-{job.job_id}-s{index}",
                created_at=int(change.at.timestamp()),
                level="error" if failed else "info",
                message=message,
                type="message",
            )
        )
    return events


def _metric_events(platform: Platform, job: JobRecord) -> list[OpenAIJobEvent]:
    by_step: dict[int, dict[str, float]] = {}
    times: dict[int, int] = {}
    points = platform.jobs.query_metrics(job.job_id, names=_METRICS, min_step=None, max_step=None)
    for point in points:
        name = "train_loss" if point.name == "loss" else "valid_loss"
        by_step.setdefault(point.step, {})[name] = point.value
        times[point.step] = int(point.time.timestamp())
    total = job.progress.max_steps
    return [
        OpenAIJobEvent(
            id=f"ftevent-{job.job_id}-m{step}",
            created_at=times[step],
            level="info",
            message=f"Step {step}/{total}: "
            + ", ".join(f"{name.replace('_', ' ')}={value:.4f}" for name, value in values.items()),
            type="metrics",
            data={"step": step, "total_steps": total, **values},
        )
        for step, values in by_step.items()
    ]


def job_events(platform: Platform, job: JobRecord) -> list[OpenAIJobEvent]:
    """Every event of the job, newest first."""
    events = _status_events(job) + _metric_events(platform, job)
    order = {event.id: index for index, event in enumerate(events)}
    return sorted(events, key=lambda event: (event.created_at, order[event.id]), reverse=True)


def job_checkpoints(job: JobRecord) -> list[OpenAIJobCheckpoint]:
    """The job's kept checkpoints, newest first."""
    train_loss = job.latest_metrics.get("loss")
    return [
        OpenAIJobCheckpoint(
            id=f"ftckpt-{job.job_id}-{checkpoint.step}",
            created_at=int(checkpoint.at.timestamp()),
            fine_tuned_model_checkpoint=f"{fine_tuned_model(job)}:ckpt-step-{checkpoint.step}",
            fine_tuning_job_id=job.job_id,
            metrics=OpenAICheckpointMetrics(
                step=checkpoint.step,
                train_loss=train_loss if checkpoint.step == job.progress.step else None,
                valid_loss=checkpoint.eval_loss,
            ),
            step_number=checkpoint.step,
        )
        for checkpoint in reversed(job.checkpoints)
    ]
