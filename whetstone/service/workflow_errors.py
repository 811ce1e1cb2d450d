"""The named failures of a job's workflow steps.

Each step raises one of these; the state machine catches it by its class name, and `fail`
records its code, its message and its step.
"""

from __future__ import annotations

from typing import Any

from whetstone.core.errors import WhetstoneError
from whetstone.core.job import JobRecord
from whetstone.service.platform import Platform


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


def require_job(platform: Platform, job_id: str) -> JobRecord:
    """The job; JobStopped when it no longer exists (a deleted job's workflow ends as stopped)."""
    job = platform.jobs.get(job_id)
    if job is None:
        raise JobStopped(f"job {job_id} no longer exists")
    return job
