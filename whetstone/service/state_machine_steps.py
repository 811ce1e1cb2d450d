"""The steps the aws state machine needs beside those of whetstone.service.workflow.

The state machine runs the image build itself (CodeBuild `.sync`), so the build
is split in two: `build_started` (→ building) and `build_finished` (copy the
build log, find the pushed image). Every step that starts new work first checks
the job's stop flag and raises JobStopped, which the state machine catches to
cancel. `record_failure` turns what a Catch caught (an error name and its cause)
into the job's error code, message and step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, Field

from whetstone.core.events import TrainerErrorCode
from whetstone.core.job import JobError, LogEntry
from whetstone.core.lifecycle import JobStatus
from whetstone.ports import Compute, ImageBuilder
from whetstone.service import stage_tasks, workflow
from whetstone.service.platform import Platform
from whetstone.service.records import transition

NAMED_ERRORS: dict[str, type[workflow.WorkflowError]] = {
    cls.__name__: cls
    for cls in (
        workflow.DatasetInvalid,
        workflow.ImageBuildFailed,
        workflow.LaunchFailed,
        workflow.TrainingFailed,
        workflow.ArtifactsMissing,
    )
}

# What a trainer stage's task fails with (SendTaskFailure by ingest or the reconciler): the
# error is the job's error code, the cause its message.
STAGE_ERRORS = frozenset({*(code.value for code in TrainerErrorCode), stage_tasks.TRAINER_LOST})
# Step Functions' own timeouts of a stage's wait: the train stage's heartbeat (its metrics
# stopped), the prepare and finalize stages' TimeoutSeconds.
TIMEOUTS = {
    "States.HeartbeatTimeout": stage_tasks.TRAINER_UNRESPONSIVE,
    "States.Timeout": TrainerErrorCode.RUN_TIME_EXCEEDED.value,
}
TIMEOUT_MESSAGES = {
    "States.HeartbeatTimeout": "the trainer sent no metrics for 30 minutes (hung, or its node "
    "lost its network); its last checkpoint is kept, start the job again to resume",
    "States.Timeout": "the {step} stage ran past its time limit; see the training log",
}


class BuildLogReader(Protocol):
    def read(self, group: str, stream: str) -> Sequence[LogEntry]: ...


class BuildRun(BaseModel):
    """What the state machine keeps of a CodeBuild run."""

    build_id: Annotated[str | None, Field(description="CodeBuild build id.")] = None
    status: Annotated[str | None, Field(description="CodeBuild build status.")] = None
    log_group: Annotated[str | None, Field(description="Its CloudWatch log group.")] = None
    log_stream: Annotated[str | None, Field(description="Its CloudWatch log stream.")] = None


def _check_stop(platform: Platform, job_id: str, where: str) -> None:
    job = platform.jobs.get(job_id)
    if job is None or job.is_terminal:
        raise workflow.JobStopped(f"job {job_id} ended before {where}")
    if job.is_stop_requested:
        raise workflow.JobStopped(f"stop requested before {where}")


def begin(platform: Platform, job_id: str) -> None:
    """pending → preparing; a job already ended (stopped while pending) is not started."""
    _check_stop(platform, job_id, "the job started")
    job = platform.jobs.get(job_id)
    if job is not None and job.status is JobStatus.PREPARING:
        return  # a retried invocation: the first one moved the job
    workflow.begin(platform, job_id)


def resolve_image(
    platform: Platform, job_id: str, images: ImageBuilder, tag: str
) -> workflow.ImageChoice:
    _check_stop(platform, job_id, "the image was resolved")
    return workflow.resolve_image(platform, job_id, images, tag)


def build_started(platform: Platform, job_id: str, tag: str) -> None:
    """preparing → building, just before the state machine starts CodeBuild."""
    _check_stop(platform, job_id, "the image build")
    job = platform.jobs.get(job_id)
    if job is not None and job.status in (JobStatus.BUILDING, JobStatus.DEPLOYING):
        return  # a retried invocation, or a resumed job whose image is gone
    transition(platform, job_id, JobStatus.BUILDING, f"building trainer image {tag}")
    workflow.log(platform, job_id, "build", "trainer image build started", tag=tag)


def copy_build_log(platform: Platform, job_id: str, reader: BuildLogReader, run: BuildRun) -> int:
    """The CodeBuild run's log lines into the job's build log; how many."""
    if not (run.log_group and run.log_stream):
        return 0
    entries = list(reader.read(run.log_group, run.log_stream))
    if entries:
        platform.logs.append(job_id, entries)
    return len(entries)


def build_finished(
    platform: Platform,
    job_id: str,
    images: ImageBuilder,
    reader: BuildLogReader,
    tag: str,
    run: BuildRun,
) -> str:
    """After a successful build: its log copied, the pushed image found (ImageBuildFailed
    if absent). A stop that came during the build is honoured now (JobStopped)."""
    copy_build_log(platform, job_id, reader, run)
    image = images.find(tag)
    if image is None:
        raise workflow.ImageBuildFailed(
            f"the build {run.build_id} succeeded but ECR has no image tagged {tag}; "
            "check the build log's push step"
        )
    workflow.log(platform, job_id, "build", "trainer image built", image=image, build=run.build_id)
    _check_stop(platform, job_id, "launch")
    return image


def _cause_message(cause: str | None) -> tuple[str | None, dict[str, Any]]:
    """A Lambda error's message, or a CodeBuild failure's build, from a Catch's Cause."""
    if not cause:
        return None, {}
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause, {}
    if not isinstance(parsed, dict):
        return cause, {}
    if "errorMessage" in parsed:
        return str(parsed["errorMessage"]), parsed
    return None, parsed


def failure_of(step: str, error: str, cause: str | None) -> JobError:
    """The job's error for what a Catch caught in `step`: a named step error keeps its own
    code and step; a failed build is image_build_failed; anything else is internal."""
    message, parsed = _cause_message(cause)
    if error in STAGE_ERRORS:
        return JobError(code=error, message=message or f"the {step} stage failed", step=step)
    if error in TIMEOUTS:
        return JobError(
            code=TIMEOUTS[error], message=TIMEOUT_MESSAGES[error].format(step=step), step=step
        )
    named = NAMED_ERRORS.get(error)
    if named is not None:
        return JobError(
            code=named.code,
            message=message or f"the {named.step} step failed",
            step=named.step,
        )
    if step == "build":
        build = parsed.get("Build") or parsed
        status = build.get("BuildStatus") or build.get("buildStatus") or error
        return JobError(
            code=workflow.ImageBuildFailed.code,
            message=f"building the trainer image failed ({status}); see the job's build log",
            step="build",
        )
    return JobError(
        code="internal_error",
        message=f"the {step} step failed unexpectedly ({error}: {message or 'no detail'}); "
        "the platform's operators have the details, retry the job later",
        step=step,
    )


def build_run_of_cause(cause: str | None) -> BuildRun:
    """The CodeBuild run a failed `startBuild.sync` reported in its Cause."""
    _, parsed = _cause_message(cause)
    build = parsed.get("Build") or {}
    logs = build.get("Logs") or {}
    return BuildRun(
        build_id=build.get("Id"),
        status=build.get("BuildStatus"),
        log_group=logs.get("GroupName"),
        log_stream=logs.get("StreamName"),
    )


def record_failure(
    platform: Platform,
    job_id: str,
    compute: Compute,
    reader: BuildLogReader,
    step: str,
    error: str,
    cause: str | None,
) -> JobError:
    """→ failed with the caught error (compute cleaned up); a failed build's log is kept."""
    failure = failure_of(step, error, cause)
    if step == "build":
        copy_build_log(platform, job_id, reader, build_run_of_cause(cause))
    workflow.fail(platform, job_id, compute, failure.code, failure.message, failure.step)
    return failure
