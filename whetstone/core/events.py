"""The events the trainer emits while a job runs, and how to read them back.

Every event is one `TrainerEvent`: an envelope (source, job id, time, detail type) around
one detail model per detail type. The trainer writes each event as one JSON line on stdout
(local runtime) or as the `Detail` of an EventBridge entry whose `DetailType` is the detail
type (aws runtime); in both cases the JSON is the whole envelope, so one parser,
`parse_trainer_event`, reads both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from whetstone.core.deferred import DeferredModel

EVENT_SOURCE: Literal["whetstone.trainer"] = "whetstone.trainer"


class DetailType(StrEnum):
    METRICS = "metrics"
    RESOURCES = "resources"
    STATUS = "status"
    CHECKPOINT = "checkpoint"
    LOG = "log"


class _Detail(DeferredModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsDetail(_Detail):
    """Training progress at one step: sent every logging step and after each evaluation."""

    step: Annotated[int, Field(ge=0, description="Optimizer steps done (global step).")]
    max_steps: Annotated[int, Field(ge=0, description="Optimizer steps the run will take.")]
    epoch: Annotated[float, Field(ge=0, description="Epochs done, fractional.")]
    progress: Annotated[float, Field(ge=0, le=1, description="step / max_steps.")]
    loss: Annotated[
        float | None, Field(description="Mean training loss since the previous report.")
    ] = None
    eval_loss: Annotated[float | None, Field(description="Validation loss, after an eval.")] = None
    learning_rate: Annotated[float | None, Field(ge=0, description="Current learning rate.")] = None
    grad_norm: Annotated[float | None, Field(description="Gradient norm before clipping.")] = None
    samples_per_second: Annotated[
        float | None, Field(ge=0, description="Training examples per second in this run.")
    ] = None
    tokens_per_second: Annotated[
        float | None, Field(ge=0, description="Non-padding tokens per second in this run.")
    ] = None
    eta_seconds: Annotated[
        float | None, Field(ge=0, description="Estimated seconds until training ends.")
    ] = None
    # Efficiency, counted from the batches trained on since this run began (docs/trainer.md).
    useful_tokens_per_second: Annotated[
        float | None,
        Field(ge=0, description="Non-padding tokens trained per second, all GPUs together."),
    ] = None
    padding_waste_pct: Annotated[
        float | None,
        Field(ge=0, le=100, description="Share of the batches' token slots that were padding."),
    ] = None
    mfu: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="Model FLOPs utilization: model FLOPs per second over the device's peak.",
        ),
    ] = None
    # Preference tuning (dpo) only, averaged since the previous report like loss.
    rewards_chosen: Annotated[
        float | None, Field(description="Implicit reward of the preferred answers (dpo).")
    ] = None
    rewards_rejected: Annotated[
        float | None, Field(description="Implicit reward of the rejected answers (dpo).")
    ] = None
    reward_margin: Annotated[
        float | None, Field(description="rewards_chosen - rewards_rejected (dpo).")
    ] = None
    reward_accuracy: Annotated[
        float | None,
        Field(ge=0, le=1, description="Share of pairs whose preferred answer wins (dpo)."),
    ] = None


class GpuSample(_Detail):
    """One GPU at one instant."""

    index: Annotated[int, Field(ge=0, description="Device index.")]
    name: Annotated[str | None, Field(description="Device name.")] = None
    utilization_pct: Annotated[
        float | None, Field(ge=0, le=100, description="Compute utilization in percent.")
    ] = None
    memory_used_mb: Annotated[float, Field(ge=0, description="Memory in use, MiB.")]
    memory_total_mb: Annotated[float | None, Field(ge=0, description="Memory size, MiB.")] = None
    temperature_c: Annotated[float | None, Field(description="Temperature in Celsius.")] = None


class ResourcesDetail(_Detail):
    """Resource use of the node, sampled every few seconds."""

    gpus: Annotated[list[GpuSample], Field(description="One sample per visible GPU.")] = Field(
        default_factory=list
    )
    cpu_pct: Annotated[float, Field(ge=0, description="CPU utilization of the node, percent.")]
    ram_used_mb: Annotated[float, Field(ge=0, description="Node memory in use, MiB.")]
    ram_total_mb: Annotated[float, Field(ge=0, description="Node memory size, MiB.")]
    process_rss_mb: Annotated[float, Field(ge=0, description="Trainer process RSS, MiB.")]


class TrainerPhase(StrEnum):
    LOADING = "loading"
    TRAINING = "training"
    EVALUATING = "evaluating"
    SAVING = "saving"
    DONE = "done"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class TrainerStage(StrEnum):
    """Which run of the trainer program an event comes from: `python -m trainer <stage>`."""

    PREPARE = "prepare"
    TRAIN = "train"
    FINALIZE = "finalize"


TERMINAL_PHASES = frozenset({TrainerPhase.DONE, TrainerPhase.INTERRUPTED, TrainerPhase.FAILED})


class TrainerErrorCode(StrEnum):
    """Why a run failed: stable codes the job record keeps."""

    INVALID_PLAN = "invalid_plan"
    DATA_ERROR = "data_error"
    MODEL_LOAD_ERROR = "model_load_error"
    OUT_OF_MEMORY = "out_of_memory"
    NON_FINITE_LOSS = "non_finite_loss"
    STORAGE_ERROR = "storage_error"
    RUN_TIME_EXCEEDED = "run_time_exceeded"
    ARTIFACTS_MISSING = "artifacts_missing"
    INTERNAL_ERROR = "internal_error"


class TrainingDevice(_Detail):
    """What the trainer runs on, as it found it."""

    gpu_count: Annotated[
        int, Field(ge=0, description="GPUs the trainer uses; 0 when it runs on the CPU.")
    ]
    gpu_name: Annotated[
        str | None, Field(description="The GPUs' name, e.g. 'NVIDIA A10G'; null on the CPU.")
    ] = None

    @property
    def label(self) -> str:
        """'cpu', or e.g. '2 x NVIDIA A10G'."""
        return f"{self.gpu_count} x {self.gpu_name or 'GPU'}" if self.gpu_count else "cpu"


class StatusDetail(_Detail):
    """A phase change. `failed` carries an error code and a message a person can act on."""

    phase: Annotated[TrainerPhase, Field(description="The phase the trainer entered.")]
    stage: Annotated[
        TrainerStage, Field(description="The trainer run (prepare, train, finalize) it belongs to.")
    ] = TrainerStage.TRAIN
    message: Annotated[str | None, Field(description="What happens, or what went wrong.")] = None
    error_code: Annotated[
        TrainerErrorCode | None, Field(description="Set when phase is failed.")
    ] = None
    step: Annotated[int | None, Field(ge=0, description="Global step at the change.")] = None
    device: Annotated[
        TrainingDevice | None, Field(description="What the trainer runs on (phase training).")
    ] = None

    @model_validator(mode="after")
    def _error_code_iff_failed(self) -> StatusDetail:
        if (self.phase is TrainerPhase.FAILED) != (self.error_code is not None):
            raise ValueError("error_code is set exactly when phase is 'failed'")
        return self


class CheckpointDetail(_Detail):
    """A checkpoint written and synced to the job's output location."""

    step: Annotated[int, Field(ge=0, description="Global step of the checkpoint.")]
    epoch: Annotated[float, Field(ge=0, description="Epochs done at the checkpoint.")]
    location: Annotated[str, Field(description="Where it lies: s3://... or a folder path.")]
    eval_loss: Annotated[
        float | None, Field(description="Validation loss at this step, if evaluated.")
    ] = None


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LogDetail(_Detail):
    """One log line of the training process."""

    level: Annotated[LogLevel, Field(description="Severity.")]
    message: Annotated[str, Field(description="What happened, lowercase.")]
    fields: Annotated[
        dict[str, Any], Field(description="Keyword fields of the line (JSON values).")
    ] = Field(default_factory=dict)


Detail = MetricsDetail | ResourcesDetail | StatusDetail | CheckpointDetail | LogDetail

DETAIL_MODELS: dict[DetailType, type[_Detail]] = {
    DetailType.METRICS: MetricsDetail,
    DetailType.RESOURCES: ResourcesDetail,
    DetailType.STATUS: StatusDetail,
    DetailType.CHECKPOINT: CheckpointDetail,
    DetailType.LOG: LogDetail,
}
_DETAIL_TYPES: dict[type[_Detail], DetailType] = {
    model: kind for kind, model in DETAIL_MODELS.items()
}


class TrainerEvent(DeferredModel):
    """The envelope of every trainer event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[Literal["whetstone.trainer"], Field(description="Event source.")] = (
        EVENT_SOURCE
    )
    job_id: Annotated[str, Field(min_length=1, description="The job the event belongs to.")]
    time: Annotated[datetime, Field(description="When it happened (UTC).")]
    detail_type: Annotated[DetailType, Field(description="Which detail model `detail` is.")]
    detail: Annotated[Detail, Field(description="The event's content.")]
    credential: Annotated[
        str | None,
        Field(
            repr=False,
            description="The job's event credential (from the plan); ingest compares its "
            "sha256 with the job record's.",
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _detail_follows_type(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("detail"), dict):
            return data
        try:
            model = DETAIL_MODELS[DetailType(str(data.get("detail_type")))]
        except ValueError:
            return data  # the field validator reports the bad detail_type
        return {**data, "detail": model.model_validate(data["detail"])}

    @model_validator(mode="after")
    def _detail_matches_type(self) -> TrainerEvent:
        if _DETAIL_TYPES[type(self.detail)] is not self.detail_type:
            raise ValueError(
                f"detail is a {type(self.detail).__name__}, not a {self.detail_type} detail"
            )
        return self


def make_event(
    job_id: str,
    detail: Detail,
    *,
    time: datetime | None = None,
    credential: str | None = None,
) -> TrainerEvent:
    """Wrap a detail in its envelope, stamped now unless `time` is given."""
    return TrainerEvent(
        job_id=job_id,
        time=time or datetime.now(UTC),
        detail_type=_DETAIL_TYPES[type(detail)],
        detail=detail,
        credential=credential,
    )


def parse_trainer_event(data: str | bytes | dict[str, Any]) -> TrainerEvent:
    """Read one event: a stdout JSON line, its parsed dict, or an EventBridge event.

    An EventBridge event (with `detail-type` and `detail` keys) carries the envelope as its
    detail. Raises pydantic.ValidationError (a ValueError) when the data is not an event.
    """
    parsed: Any = json.loads(data) if isinstance(data, str | bytes) else data
    if isinstance(parsed, dict) and "detail-type" in parsed and "detail" in parsed:
        inner = parsed["detail"]
        parsed = json.loads(inner) if isinstance(inner, str) else inner
    return TrainerEvent.model_validate(parsed)
