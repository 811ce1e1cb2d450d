"""Job statuses and the transitions allowed between them: one table, used everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from whetstone.core.errors import ConflictError


class JobStatus(StrEnum):
    PENDING = "pending"
    PREPARING = "preparing"
    BUILDING = "building"
    DEPLOYING = "deploying"
    TRAINING = "training"
    EVALUATING = "evaluating"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPING = "stopping"
    CANCELLED = "cancelled"
    PAUSING = "pausing"
    PAUSED = "paused"


STATUS_DESCRIPTIONS: dict[JobStatus, str] = {
    JobStatus.PENDING: "Job created, waiting to start",
    JobStatus.PREPARING: "Uploading dataset, building Docker image",
    JobStatus.BUILDING: "Docker image being built and pushed to ECR",
    JobStatus.DEPLOYING: "Kubernetes node provisioning",
    JobStatus.TRAINING: "Model training in progress",
    JobStatus.EVALUATING: "Running validation metrics",
    JobStatus.COMPLETED: "Training finished successfully",
    JobStatus.FAILED: "Error occurred (check logs)",
    JobStatus.STOPPING: "Stop requested, shutting down",
    JobStatus.CANCELLED: "Stopped by user",
    JobStatus.PAUSING: "Pause requested, saving a checkpoint",
    JobStatus.PAUSED: "Checkpoint kept, compute released; resume continues it",
}

# What people read: `deploying` starts the trainer, which `jobs deploy` (serving the trained
# model) is easily taken for. The status keeps product.md's name; its label says what it is.
STATUS_LABELS: dict[JobStatus, str] = {JobStatus.DEPLOYING: "deploying (starting trainer)"}


def status_label(status: str) -> str:
    """A status as the CLI and messages show it."""
    return STATUS_LABELS.get(JobStatus(status), str(status))


TERMINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
)

_S = JobStatus
# Every running status may fail or be asked to stop. Beyond that: preparing may
# skip the build when the image exists; training and evaluating may go back to
# deploying when their node (or the local server) disappears and the job resumes
# from a checkpoint; training goes straight to completed when there is no test
# split to evaluate; a pending job holds no compute, so stopping it cancels it
# at once. A deploying or training job may pause (asked, or at its cost cap): pausing
# checkpoints and releases the compute. A trainer that finishes before the pause reaches it
# completes the job (pausing -> completed); a stop while pausing wins. A paused job holds
# nothing: it resumes through deploying, and a stop cancels it at once.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    _S.PENDING: frozenset({_S.PREPARING, _S.STOPPING, _S.CANCELLED, _S.FAILED}),
    _S.PREPARING: frozenset({_S.BUILDING, _S.DEPLOYING, _S.STOPPING, _S.FAILED}),
    _S.BUILDING: frozenset({_S.DEPLOYING, _S.STOPPING, _S.FAILED}),
    _S.DEPLOYING: frozenset({_S.TRAINING, _S.PAUSING, _S.STOPPING, _S.FAILED}),
    _S.TRAINING: frozenset(
        {_S.EVALUATING, _S.COMPLETED, _S.DEPLOYING, _S.PAUSING, _S.STOPPING, _S.FAILED}
    ),
    _S.EVALUATING: frozenset({_S.COMPLETED, _S.DEPLOYING, _S.STOPPING, _S.FAILED}),
    _S.STOPPING: frozenset({_S.CANCELLED, _S.FAILED}),
    _S.PAUSING: frozenset({_S.PAUSED, _S.COMPLETED, _S.STOPPING, _S.FAILED}),
    _S.PAUSED: frozenset({_S.DEPLOYING, _S.CANCELLED, _S.FAILED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}

ACTIVE_STATUSES: frozenset[JobStatus] = frozenset(JobStatus) - TERMINAL_STATUSES
# The statuses a pause may be asked in: the trainer is starting or training.
PAUSABLE_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.DEPLOYING, JobStatus.TRAINING})


def is_terminal(status: JobStatus) -> bool:
    return status in TERMINAL_STATUSES


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: JobStatus, target: JobStatus) -> None:
    """Raise ConflictError unless `current -> target` is in the table."""
    if not can_transition(current, target):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal)"
        raise ConflictError(
            f"a job cannot go from {current} to {target}; from {current} it may go to: {allowed}",
            code="illegal_transition",
        )


def success_rate(jobs_by_status: Mapping[str, int]) -> float | None:
    """Completed jobs over ended ones, to 4 places; None before any ended."""
    ended = sum(jobs_by_status.get(status.value, 0) for status in TERMINAL_STATUSES)
    return round(jobs_by_status.get(JobStatus.COMPLETED.value, 0) / ended, 4) if ended else None
