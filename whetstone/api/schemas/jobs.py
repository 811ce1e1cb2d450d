"""Jobs as the API shows them: the record's fields a user acts on, without storage fields
(`version`, `idempotency_key`, `stop_requested`, `dataset.blob_key`, `deployment.pid`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from whetstone.api.schemas.base import WireModel, field_of
from whetstone.api.schemas.deployments import DeploymentResponse
from whetstone.core.deferred import DeferredModel
from whetstone.core.estimates import CostEstimate
from whetstone.core.events import TrainingDevice
from whetstone.core.job import (
    Artifacts,
    Checkpoint,
    CostInfo,
    DatasetInfo,
    JobError,
    JobRecord,
    LogEntry,
    MetricPoint,
    Progress,
    StatusChange,
)
from whetstone.core.lifecycle import JobStatus, is_terminal, success_rate
from whetstone.core.run_defaults import SpecWarning
from whetstone.core.spec import JobSpec


def split_job_config(config: Mapping[str, Any]) -> tuple[Any, Any]:
    """(name, spec) of a job config: `{name, spec}`, or a job spec with an optional `name`.

    The one rule the API, the SDK and the CLI read job configs by; the caller checks types.
    """
    if "spec" in config:
        return config.get("name"), config["spec"]
    spec = dict(config)
    return spec.pop("name", None), spec


class CreateJobRequest(DeferredModel):
    """A job config: the job spec plus an optional name."""

    name: Annotated[str | None, Field(max_length=200, description="A name for the job.")] = None
    spec: Annotated[JobSpec, Field(description="The job spec.")]
    allow_over_budget: Annotated[
        bool,
        Field(
            description="Create the job even when its estimate would pass the organization's "
            "monthly budget (which otherwise refuses it with 402 budget_exceeded)."
        ),
    ] = False


class JobDataset(WireModel):
    """The job's dataset: where it was read from and what validation found."""

    source: str = field_of(DatasetInfo, "source")
    filename: str | None = field_of(DatasetInfo, "filename")
    format: str | None = field_of(DatasetInfo, "format")
    num_examples: int | None = field_of(DatasetInfo, "num_examples")
    mean_tokens: float | None = field_of(DatasetInfo, "mean_tokens")
    warnings: list[str] = field_of(DatasetInfo, "warnings")


class JobResponse(WireModel):
    """One fine-tuning job."""

    job_id: str = field_of(JobRecord, "job_id")
    org_id: str = field_of(JobRecord, "org_id")
    user_id: str = field_of(JobRecord, "user_id")
    name: str | None = field_of(JobRecord, "name")
    spec: JobSpec = field_of(JobRecord, "spec")
    status: JobStatus = field_of(JobRecord, "status")
    status_history: list[StatusChange] = field_of(JobRecord, "status_history")
    created_at: datetime = field_of(JobRecord, "created_at")
    updated_at: datetime = field_of(JobRecord, "updated_at")
    training_started_at: datetime | None = field_of(JobRecord, "training_started_at")
    finished_at: datetime | None = field_of(JobRecord, "finished_at")
    dataset: JobDataset = field_of(JobRecord, "dataset")
    estimate: CostEstimate = field_of(JobRecord, "estimate")
    device: TrainingDevice | None = field_of(JobRecord, "device")
    required_gib: float = field_of(JobRecord, "required_gib")
    cost: CostInfo = field_of(JobRecord, "cost")
    warnings: list[SpecWarning] = field_of(JobRecord, "warnings")
    progress: Progress = field_of(JobRecord, "progress")
    latest_metrics: dict[str, float] = field_of(JobRecord, "latest_metrics")
    checkpoints: list[Checkpoint] = field_of(JobRecord, "checkpoints")
    error: JobError | None = field_of(JobRecord, "error")
    artifacts: Artifacts | None = field_of(JobRecord, "artifacts")
    deployment: DeploymentResponse | None = field_of(JobRecord, "deployment")

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.status)


class JobListResponse(DeferredModel):
    """One page of jobs, newest first."""

    jobs: Annotated[list[JobResponse], Field(description="The page's jobs.")]
    next_token: Annotated[str | None, Field(description="Pass back to get the next page.")]


class LogPageResponse(DeferredModel):
    """One page of a job's log lines, oldest first."""

    logs: Annotated[list[LogEntry], Field(description="The page's lines.")]
    next_token: Annotated[str | None, Field(description="Pass back to get the next page.")]


class MetricSeriesResponse(DeferredModel):
    """A job's metric series."""

    series: Annotated[
        dict[str, list[MetricPoint]], Field(description="Points of each metric, by step.")
    ]
    next_step: Annotated[
        int | None,
        Field(
            description="A series had more points than one request reads: every series stops "
            "before this step; ask again with min_step=next_step. Null on the last page."
        ),
    ] = None


class UserStatsResponse(WireModel):
    """The caller's own jobs, summed up."""

    total_jobs: Annotated[int, Field(description="Jobs the caller created.")]
    jobs_by_status: Annotated[dict[str, int], Field(description="How many are in each status.")]
    gpu_hours: Annotated[
        float, Field(description="GPU-hours used, all jobs together (time on the CPU is not).")
    ]
    spend_usd: Annotated[float, Field(description="Spent so far, USD.")]
    success_rate: Annotated[float | None, Field(description="completed / ended; null: none ended.")]
    next_token: Annotated[
        str | None,
        Field(
            description="More jobs remain: these stats cover one page of the organization's "
            "jobs; ask again with it and add the pages up (the SDK's stats() does). Null on "
            "the last page."
        ),
    ] = None

    def plus(self, other: UserStatsResponse) -> UserStatsResponse:
        """The stats of this page and `other` (the next one) together."""
        by_status = Counter(self.jobs_by_status) + Counter(other.jobs_by_status)
        return UserStatsResponse(
            total_jobs=self.total_jobs + other.total_jobs,
            jobs_by_status=dict(by_status),
            gpu_hours=round(self.gpu_hours + other.gpu_hours, 4),
            spend_usd=round(self.spend_usd + other.spend_usd, 2),
            success_rate=success_rate(by_status),
            next_token=other.next_token,
        )
