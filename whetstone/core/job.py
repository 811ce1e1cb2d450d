"""The job record: what the platform knows about one fine-tuning job."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.estimates import CostEstimate
from whetstone.core.events import TrainerStage, TrainingDevice
from whetstone.core.lifecycle import JobStatus, is_terminal
from whetstone.core.run_defaults import SpecWarning
from whetstone.core.serving import ServingProblem
from whetstone.core.spec import JobSpec, Method

JOB_ID_PREFIX = "ftjob-"
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase


def new_job_id(now: float | None = None) -> str:
    """A job id that sorts by creation time: 10 chars of milliseconds, 10 random."""
    millis = int((time.time() if now is None else now) * 1000)
    stamp = "".join(_ALPHABET[(millis >> shift) & 31] for shift in range(45, -5, -5))
    return JOB_ID_PREFIX + stamp + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Caller(DeferredModel):
    """Who makes a request: every read and write is scoped to the organization."""

    model_config = ConfigDict(frozen=True)

    user_id: Annotated[str, Field(min_length=1, description="The authenticated user.")]
    org_id: Annotated[str, Field(min_length=1, description="The user's organization.")]


class StatusChange(DeferredModel):
    status: Annotated[JobStatus, Field(description="The status entered.")]
    at: Annotated[datetime, Field(description="When (UTC).")]
    message: Annotated[str | None, Field(description="Why, when there is more to say.")] = None


class JobError(DeferredModel):
    code: Annotated[str, Field(description="Stable machine-readable error code.")]
    message: Annotated[str, Field(description="What went wrong and what to do about it.")]
    step: Annotated[str, Field(description="The workflow step where it happened.")]


class DatasetInfo(DeferredModel):
    source: Annotated[str, Field(description="Where the dataset was read from.")]
    blob_key: Annotated[
        str | None, Field(description="Storage key of the uploaded copy, when uploaded.")
    ] = None
    filename: Annotated[str | None, Field(description="Name of the uploaded file.")] = None
    format: Annotated[str | None, Field(description="Detected or declared format.")] = None
    num_examples: Annotated[int | None, Field(description="Examples in the dataset.")] = None
    mean_tokens: Annotated[float | None, Field(description="Mean tokens per example.")] = None
    warnings: Annotated[list[str], Field(description="Codes of the validation warnings.")] = Field(
        default_factory=list
    )
    splits: Annotated[
        dict[str, int], Field(description="Examples per split, once the dataset is prepared.")
    ] = Field(default_factory=dict)
    tokens: Annotated[
        int | None, Field(description="Tokens in all splits, once the dataset is prepared.")
    ] = None
    tokens_estimated: Annotated[
        bool | None,
        Field(description="Whether `tokens` is an estimate (~4 bytes a token), not a count."),
    ] = None


class Progress(DeferredModel):
    step: Annotated[int, Field(ge=0, description="Optimizer steps done.")] = 0
    max_steps: Annotated[int, Field(ge=0, description="Optimizer steps planned.")] = 0
    epoch: Annotated[float, Field(ge=0, description="Epochs done.")] = 0.0
    fraction: Annotated[float, Field(ge=0, le=1, description="Share of training done.")] = 0.0
    eta_seconds: Annotated[float | None, Field(description="Seconds left, estimated.")] = None


class CostInfo(DeferredModel):
    hourly_rate_usd: Annotated[float, Field(description="The job's rate, USD/h.")]
    estimated_total_usd: Annotated[float, Field(description="Projected final cost, USD.")]
    current_usd: Annotated[float, Field(description="Spent so far, USD.")] = 0.0
    compute_hours: Annotated[
        float, Field(description="GPU-hours used so far; a job on the CPU uses none.")
    ] = 0.0


class Checkpoint(DeferredModel):
    step: Annotated[int, Field(ge=0, description="Global step.")]
    epoch: Annotated[float, Field(ge=0, description="Epochs done.")]
    location: Annotated[str, Field(description="Where it lies.")]
    eval_loss: Annotated[float | None, Field(description="Validation loss there.")] = None
    at: Annotated[datetime, Field(description="When it was saved (UTC).")]


class Artifacts(DeferredModel):
    location: Annotated[str, Field(description="Folder or s3:// prefix of the output.")]
    files: Annotated[dict[str, int], Field(description="Relative path -> size in bytes.")] = Field(
        default_factory=dict
    )
    archives: Annotated[
        dict[str, int], Field(description="Download archive (name under the job) -> bytes.")
    ] = Field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


DeploymentStatus = Literal["starting", "ready", "failed", "deleted"]


class Deployment(DeferredModel):
    """The job's model served as an OpenAI-compatible endpoint."""

    status: Annotated[
        DeploymentStatus,
        Field(description="starting, ready (golden check passed), failed or deleted."),
    ]
    model: Annotated[str, Field(description="Model name to send in requests.")]
    base_model: Annotated[
        str | None,
        Field(
            description="The name the same server answers for the job's base model, the "
            "adapter off (adapter methods); None when it serves no base: a full fine-tune, "
            "or a deployment recorded before servers served bases."
        ),
    ] = None
    endpoint: Annotated[
        str | None, Field(description="OpenAI base URL (.../v1) while it runs.")
    ] = None
    pid: Annotated[int | None, Field(description="Server process id (local runtime).")] = None
    max_lora_rank: Annotated[int, Field(ge=1, description="The server's max LoRA rank.")]
    created_at: Annotated[datetime, Field(description="When the deploy was asked for (UTC).")]
    updated_at: Annotated[datetime, Field(description="Last change (UTC).")]
    message: Annotated[str | None, Field(description="Why it failed, or what it waits for.")] = None
    requests_answered: Annotated[
        int | None,
        Field(description="The server's request counter when the reconciler last read it."),
    ] = None
    last_request_at: Annotated[
        datetime | None,
        Field(
            description="When the reconciler first saw the counter move past its last "
            "reading: the latest request, to a reconciler pass (UTC)."
        ),
    ] = None
    problems: Annotated[
        list[ServingProblem], Field(description="What the compatibility checks found.")
    ] = Field(default_factory=list)
    generation: Annotated[
        str | None,
        Field(
            description="Which start of the job's server this is: it names the server's "
            "objects and files, so a deploy only ever removes its own. None on deployments "
            "recorded before generations."
        ),
    ] = None
    key_sha256: Annotated[
        str | None,
        Field(
            description="The sha256 of the key the server requires; the key itself is kept "
            "where only the platform reads it, never in answers."
        ),
    ] = None

    @property
    def is_live(self) -> bool:
        return self.status in ("starting", "ready")


class JobRecord(DeferredModel):
    """One job, as the job store keeps it. `version` guards every write."""

    job_id: Annotated[str, Field(description="Job id.")]
    org_id: Annotated[str, Field(description="Owning organization.")]
    user_id: Annotated[str, Field(description="User who created the job.")]
    name: Annotated[str | None, Field(description="Optional human name.")] = None
    spec: Annotated[JobSpec, Field(description="The job spec.")]
    status: Annotated[
        JobStatus,
        Field(
            description="Current status. `deploying` is the trainer starting (a node being "
            "provisioned, or the local process starting), not a model deployment (`/deployment`)."
        ),
    ] = JobStatus.PENDING
    status_history: Annotated[
        list[StatusChange], Field(description="Every status entered, oldest first.")
    ] = Field(default_factory=list)
    created_at: Annotated[datetime, Field(description="Creation time (UTC).")]
    updated_at: Annotated[datetime, Field(description="Last change (UTC).")]
    training_started_at: Annotated[
        datetime | None, Field(description="When compute started to be billed.")
    ] = None
    finished_at: Annotated[datetime | None, Field(description="When it ended.")] = None
    dataset: Annotated[DatasetInfo, Field(description="The dataset.")]
    estimate: Annotated[
        CostEstimate | None,
        Field(
            description="Time and cost estimate, from the dataset's real counts once prepared; "
            "null until then when the model's config could not be read at create."
        ),
    ]
    device: Annotated[
        TrainingDevice | None,
        Field(description="What the trainer ran on, as it reported; null until it trains."),
    ] = None
    required_gib: Annotated[
        float | None,
        Field(
            description="Estimated memory per GPU, GiB; null until the prepare stage read the "
            "model's config when the API could not."
        ),
    ]
    cost: Annotated[CostInfo, Field(description="Live cost.")]
    warnings: Annotated[
        list[SpecWarning],
        Field(description="Settings accepted that may not do what was meant, found at create."),
    ] = Field(default_factory=list)
    progress: Annotated[Progress, Field(description="Training progress.")] = Field(
        default_factory=Progress
    )
    latest_metrics: Annotated[
        dict[str, float], Field(description="Latest value of each metric.")
    ] = Field(default_factory=dict)
    checkpoints: Annotated[
        list[Checkpoint], Field(description="Checkpoints saved, oldest first.")
    ] = Field(default_factory=list)
    error: Annotated[JobError | None, Field(description="Why the job failed.")] = None
    artifacts: Annotated[Artifacts | None, Field(description="The job's output.")] = None
    stop_requested: Annotated[bool, Field(description="A stop was asked for.")] = False
    task_token: Annotated[
        str | None,
        Field(
            description="Step Functions task token of the trainer stage the workflow waits "
            "for (aws); null when it waits for none."
        ),
    ] = None
    task_stage: Annotated[
        TrainerStage | None,
        Field(description="The trainer stage `task_token` waits for; null with it."),
    ] = None
    deployment: Annotated[
        Deployment | None, Field(description="Where the trained model is served.")
    ] = None
    idempotency_key: Annotated[
        str | None, Field(description="The Idempotency-Key the job was created with.")
    ] = None
    event_credential_sha256: Annotated[
        str | None,
        Field(
            description="sha256 (hex) of the credential the job's trainer signs its events "
            "with (aws); null when its events need none."
        ),
    ] = None
    version: Annotated[int, Field(ge=0, description="Incremented by every write.")] = 0

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def is_stop_requested(self) -> bool:
        """A stop was asked for: the flag, or the stopping status a stop request sets."""
        return self.stop_requested or self.status is JobStatus.STOPPING

    def with_status(self, status: JobStatus, message: str | None = None) -> JobRecord:
        """A copy in `status`, with the change recorded (the caller checks the transition)."""
        now = utcnow()
        history = [*self.status_history, StatusChange(status=status, at=now, message=message)]
        update: dict[str, object] = {"status": status, "status_history": history, "updated_at": now}
        if is_terminal(status):
            update["finished_at"] = now
        return self.model_copy(update=update)


# Below this share of training done, the projection from progress is too noisy:
# the stored estimate stands.
_PROJECTION_MIN_PROGRESS = 0.05


def gpus_used(job: JobRecord) -> int:
    """The GPUs the trainer reported it ran on; the ones asked for until it reports."""
    return job.spec.hardware.gpu_count if job.device is None else job.device.gpu_count


def paused_seconds(job: JobRecord, now: datetime) -> float:
    """Time spent paused (compute released, not billed): from each entry into `paused` to the
    status after it, or to `now` while still paused."""
    total = 0.0
    history = job.status_history
    for index, change in enumerate(history):
        if change.status is JobStatus.PAUSED:
            until = history[index + 1].at if index + 1 < len(history) else now
            total += max(0.0, (until - change.at).total_seconds())
    return total


def live_cost(job: JobRecord, now: datetime) -> CostInfo:
    """Spend since compute started, less the time paused, and the projected total from
    progress so far."""
    start = job.training_started_at
    if start is None:
        return job.cost
    hours = max(0.0, ((now - start).total_seconds() - paused_seconds(job, now)) / 3600)
    current = hours * job.cost.hourly_rate_usd
    fraction = job.progress.fraction
    if job.is_terminal:
        projected = current
    elif fraction >= _PROJECTION_MIN_PROGRESS:
        projected = current / fraction
    else:
        estimated = job.estimate.estimated_cost_usd if job.estimate else 0.0
        projected = max(estimated, current)
    return job.cost.model_copy(
        update={
            "current_usd": round(current, 4),
            "estimated_total_usd": round(projected, 4),
            "compute_hours": round(hours * gpus_used(job), 4),
        }
    )


class JobFilter(DeferredModel):
    """Filters of a job listing; None means any."""

    status: Annotated[JobStatus | None, Field(description="Only jobs in this status.")] = None
    method: Annotated[Method | None, Field(description="Only jobs of this method.")] = None
    base_model: Annotated[str | None, Field(description="Only jobs of this base model.")] = None
    created_after: Annotated[
        datetime | None, Field(description="Only jobs created at or after this time.")
    ] = None
    created_before: Annotated[
        datetime | None, Field(description="Only jobs created before this time.")
    ] = None

    def matches(self, job: JobRecord) -> bool:
        return (
            (self.status is None or job.status == self.status)
            and (self.method is None or job.spec.method == self.method)
            and (self.base_model is None or job.spec.base_model == self.base_model)
            and (self.created_after is None or job.created_at >= self.created_after)
            and (self.created_before is None or job.created_at < self.created_before)
        )


class MetricPoint(DeferredModel):
    """One value of one metric series at one step."""

    model_config = ConfigDict(frozen=True)

    name: Annotated[str, Field(description="Series name, e.g. 'loss' or 'gpu0_util_pct'.")]
    step: Annotated[int, Field(ge=0, description="Global step.")]
    value: Annotated[float, Field(description="The value.")]
    time: Annotated[datetime, Field(description="When it was measured (UTC).")]


LogSource = Literal["build", "deployment", "training"]
LogLevelName = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[LogLevelName, ...] = ("debug", "info", "warning", "error", "critical")


class LogEntry(DeferredModel):
    """One log line of a job, from one of its three sources."""

    model_config = ConfigDict(frozen=True)

    time: Annotated[datetime, Field(description="When (UTC).")]
    source: Annotated[LogSource, Field(description="build, deployment or training.")]
    level: Annotated[LogLevelName, Field(description="Severity.")]
    message: Annotated[str, Field(description="The line.")]
    fields: Annotated[dict[str, Any], Field(description="Structured fields of the line.")] = Field(
        default_factory=dict
    )


def level_at_least(level: LogLevelName, minimum: LogLevelName) -> bool:
    return LOG_LEVELS.index(level) >= LOG_LEVELS.index(minimum)
