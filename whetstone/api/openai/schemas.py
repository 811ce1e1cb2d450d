"""The objects the /v1 routes answer and take, shaped as OpenAI's (the `openai` client's
types are the reference for every field name). Named OpenAI*, so the OpenAPI document keeps
the names of Whetstone's own models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel

Auto = Literal["auto"]
UnixSeconds = Annotated[int, Field(description="Unix seconds.")]
ObjectId = Annotated[str, Field(description="The object's id; `after` takes it.")]
ListTag = Annotated[Literal["list"], Field(description="Always 'list'.")]
HasMore = Annotated[bool, Field(description="More follow the last one.")]
Unused = Annotated[Any, Field(description="Never set by Whetstone.")]


class _Wire(DeferredModel):
    model_config = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)


class _Page(_Wire):
    object: ListTag = "list"
    has_more: HasMore


class _CursorPage(_Page):
    first_id: Annotated[str | None, Field(description="Id of the first one.")] = None
    last_id: Annotated[str | None, Field(description="Id of the last one: the next `after`.")] = (
        None
    )

    def model_post_init(self, context: Any) -> None:
        data = getattr(self, "data", [])
        self.first_id = data[0].id if data else None
        self.last_id = data[-1].id if data else None


class OpenAIFile(_Wire):
    """An uploaded training file."""

    id: ObjectId
    object: Annotated[Literal["file"], Field(description="Always 'file'.")] = "file"
    bytes: Annotated[int, Field(description="Size in bytes.")]
    created_at: UnixSeconds
    filename: Annotated[str, Field(description="The uploaded file's name.")]
    purpose: Annotated[str, Field(description="Always 'fine-tune' here.")]
    status: Annotated[
        Literal["uploaded", "processed", "error"],
        Field(
            description="'processed': it passed Whetstone's checks (default dataset settings); "
            "'error': it failed them (status_details says why); 'uploaded': too large to check "
            "at upload, checked by the job."
        ),
    ] = "processed"
    expires_at: Unused = None
    status_details: Annotated[
        str | None, Field(description="Why the file failed the checks (status 'error').")
    ] = None


class OpenAIFileList(_CursorPage):
    """A page of files, newest first."""

    data: list[OpenAIFile]


class OpenAIDeleted(_Wire):
    """What a delete answers."""

    id: ObjectId
    object: Annotated[str, Field(description="'file' or 'model'.")]
    deleted: Annotated[bool, Field(description="Always true.")] = True


class OpenAIHyperparameters(_Wire):
    """A method's hyperparameters: numbers, or 'auto' for Whetstone's defaults."""

    n_epochs: Annotated[int | Auto | None, Field(description="Passes over the data.")] = "auto"
    batch_size: Annotated[int | Auto | None, Field(description="Examples per step.")] = "auto"
    learning_rate_multiplier: Annotated[
        float | Auto | None, Field(description="Times Whetstone's default learning rate.")
    ] = "auto"
    beta: Annotated[float | Auto | None, Field(description="DPO's beta (dpo only).")] = None


class OpenAIMethodHyperparameters(_Wire):
    """The settings of one method."""

    hyperparameters: Annotated[
        OpenAIHyperparameters, Field(description="The method's hyperparameters.")
    ] = Field(default_factory=OpenAIHyperparameters)


class OpenAIMethod(_Wire):
    """The fine-tuning method: supervised or dpo (reinforcement is refused)."""

    type: Annotated[Literal["supervised", "dpo", "reinforcement"], Field(description="Method.")]
    supervised: Annotated[
        OpenAIMethodHyperparameters | None, Field(description="With type supervised.")
    ] = None
    dpo: Annotated[OpenAIMethodHyperparameters | None, Field(description="With type dpo.")] = None
    reinforcement: Unused = None


class OpenAIJobError(_Wire):
    """Why a job failed."""

    code: Annotated[str, Field(description="Whetstone's error code.")]
    message: Annotated[str, Field(description="What went wrong and what to do.")]
    param: Annotated[str | None, Field(description="The field at fault, if one.")] = None


class OpenAIFineTuningJob(_Wire):
    """A Whetstone job as OpenAI's `fine_tuning.job` (docs/openai-api.md maps each field)."""

    id: ObjectId
    object: Annotated[Literal["fine_tuning.job"], Field(description="Always so.")] = (
        "fine_tuning.job"
    )
    created_at: UnixSeconds
    finished_at: Annotated[int | None, Field(description="Unix seconds, once ended.")] = None
    error: Annotated[OpenAIJobError | None, Field(description="Why it failed.")] = None
    fine_tuned_model: Annotated[
        str | None, Field(description="ft:<base>:<org>:<suffix>:<id>, once succeeded.")
    ] = None
    hyperparameters: Annotated[OpenAIHyperparameters, Field(description="As run.")]
    method: Annotated[OpenAIMethod, Field(description="supervised or dpo.")]
    integrations: Unused = None
    metadata: Unused = None
    model: Annotated[str, Field(description="The base model.")]
    organization_id: Annotated[str, Field(description="The owning organization.")]
    result_files: Annotated[list[str], Field(description="Always empty.")] = Field(
        default_factory=list
    )
    seed: Annotated[int, Field(description="The job's seed.")]
    status: Annotated[str, Field(description="OpenAI's status, mapped from Whetstone's.")]
    suffix: Annotated[str | None, Field(description="The name given at creation.")] = None
    trained_tokens: Annotated[int | None, Field(description="Tokens trained on, once ended.")] = (
        None
    )
    training_file: Annotated[str, Field(description="File id, or the dataset's source.")]
    validation_file: Unused = None
    estimated_finish: Annotated[int | None, Field(description="Unix seconds, while running.")] = (
        None
    )


class OpenAIJobList(_Page):
    """A page of jobs, newest first."""

    data: list[OpenAIFineTuningJob]


class OpenAIJobEvent(_Wire):
    """A status change, or the metrics of a logged step."""

    id: ObjectId
    object: Annotated[Literal["fine_tuning.job.event"], Field(description="Always so.")] = (
        "fine_tuning.job.event"
    )
    created_at: UnixSeconds
    level: Annotated[Literal["info", "warn", "error"], Field(description="Severity.")]
    message: Annotated[str, Field(description="What happened.")]
    type: Annotated[Literal["message", "metrics"], Field(description="A message or metrics.")]
    data: Annotated[dict[str, Any] | None, Field(description="The metrics, for metrics.")] = None


class OpenAIEventList(_Page):
    """A page of a job's events, newest first."""

    data: list[OpenAIJobEvent]


class OpenAICheckpointMetrics(_Wire):
    """The losses at a checkpoint's step."""

    step: Annotated[float, Field(description="The checkpoint's step.")]
    train_loss: Annotated[float | None, Field(description="Training loss there.")] = None
    valid_loss: Annotated[float | None, Field(description="Validation loss there.")] = None


class OpenAIJobCheckpoint(_Wire):
    """A kept checkpoint."""

    id: ObjectId
    created_at: UnixSeconds
    object: Annotated[Literal["fine_tuning.job.checkpoint"], Field(description="Always so.")] = (
        "fine_tuning.job.checkpoint"
    )
    fine_tuned_model_checkpoint: Annotated[str, Field(description="<model name>:ckpt-step-<n>.")]
    fine_tuning_job_id: Annotated[str, Field(description="The job.")]
    metrics: OpenAICheckpointMetrics
    step_number: Annotated[int, Field(description="Global step.")]


class OpenAICheckpointList(_CursorPage):
    """A page of a job's checkpoints, newest first."""

    data: list[OpenAIJobCheckpoint]


class OpenAIModel(_Wire):
    """A catalog model or a fine-tuned one."""

    id: Annotated[str, Field(description="Catalog id, or a fine-tuned model's name.")]
    object: Annotated[Literal["model"], Field(description="Always 'model'.")] = "model"
    created: Annotated[int, Field(description="Unix seconds (0 for catalog models).")]
    owned_by: Annotated[str, Field(description="'whetstone', or the organization.")]


class OpenAIModelList(_Wire):
    """The catalog's models, then the fine-tuned ones."""

    object: ListTag = "list"
    data: list[OpenAIModel]


class OpenAICreateJobRequest(DeferredModel):
    """What `client.fine_tuning.jobs.create` sends."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    model: Annotated[str, Field(description="Catalog id, hf://, s3:// or a local folder.")]
    suffix: Annotated[
        str | None, Field(max_length=64, description="Part of the fine-tuned model's name.")
    ] = None
    training_file: Annotated[str, Field(description="A file id from POST /v1/files.")]
    seed: Annotated[int | None, Field(ge=0, description="advanced.seed.")] = None
    method: Annotated[OpenAIMethod | None, Field(description="supervised (default) or dpo.")] = None
    hyperparameters: Annotated[
        OpenAIHyperparameters | None, Field(description="Deprecated by OpenAI; as method's.")
    ] = None
    # Refused when set: docs/openai-api.md says why.
    validation_file: Annotated[str | None, Field(description="Refused when set.")] = None
    integrations: Annotated[list[Any] | None, Field(description="Refused when not empty.")] = None
    metadata: Annotated[dict[str, str] | None, Field(description="Accepted, not kept.")] = None
    whetstone: Annotated[
        dict[str, Any] | None,
        Field(
            description="Whetstone's extension (the client's extra_body): job spec fields "
            "laid over the mapped ones, e.g. {'method': 'qlora', 'hardware': {...}}."
        ),
    ] = None
