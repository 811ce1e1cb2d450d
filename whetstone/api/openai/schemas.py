"""The objects the /v1 routes answer and take, shaped as OpenAI's (the `openai` client's
types are the reference for every field name)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel

Auto = Literal["auto"]


class _Wire(DeferredModel):
    model_config = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)


class OpenAIFile(_Wire):
    id: Annotated[str, Field(description="File id (file-...).")]
    object: Annotated[Literal["file"], Field(description="Always 'file'.")] = "file"
    bytes: Annotated[int, Field(description="Size in bytes.")]
    created_at: Annotated[int, Field(description="Unix seconds.")]
    filename: Annotated[str, Field(description="The uploaded file's name.")]
    purpose: Annotated[str, Field(description="Always 'fine-tune' here.")]
    status: Annotated[str, Field(description="'processed' once stored.")] = "processed"
    expires_at: Annotated[int | None, Field(description="Never set: files do not expire.")] = None
    status_details: Annotated[str | None, Field(description="Unused.")] = None


class OpenAIFileList(_Wire):
    object: Annotated[Literal["list"], Field(description="Always 'list'.")] = "list"
    data: Annotated[list[OpenAIFile], Field(description="Newest first.")]
    has_more: Annotated[bool, Field(description="More follow the last one.")]
    first_id: Annotated[str | None, Field(description="Id of the first one.")] = None
    last_id: Annotated[str | None, Field(description="Id of the last one: the next `after`.")] = (
        None
    )


class OpenAIDeleted(_Wire):
    id: Annotated[str, Field(description="The deleted object's id.")]
    object: Annotated[str, Field(description="'file' or 'model'.")]
    deleted: Annotated[bool, Field(description="Always true.")] = True


class OpenAIHyperparameters(_Wire):
    n_epochs: Annotated[int | Auto | None, Field(description="Passes over the data.")] = "auto"
    batch_size: Annotated[int | Auto | None, Field(description="Examples per step.")] = "auto"
    learning_rate_multiplier: Annotated[
        float | Auto | None, Field(description="Times Whetstone's default learning rate.")
    ] = "auto"
    beta: Annotated[float | Auto | None, Field(description="DPO's beta (dpo only).")] = None


class OpenAIMethodHyperparameters(_Wire):
    hyperparameters: Annotated[
        OpenAIHyperparameters, Field(description="The method's hyperparameters.")
    ] = Field(default_factory=OpenAIHyperparameters)


class OpenAIMethod(_Wire):
    type: Annotated[Literal["supervised", "dpo", "reinforcement"], Field(description="Method.")]
    supervised: Annotated[
        OpenAIMethodHyperparameters | None, Field(description="With type supervised.")
    ] = None
    dpo: Annotated[OpenAIMethodHyperparameters | None, Field(description="With type dpo.")] = None
    reinforcement: Annotated[
        dict[str, Any] | None, Field(description="Refused: not supported.")
    ] = None


class OpenAIJobError(_Wire):
    code: Annotated[str, Field(description="Whetstone's error code.")]
    message: Annotated[str, Field(description="What went wrong and what to do.")]
    param: Annotated[str | None, Field(description="The field at fault, if one.")] = None


class OpenAIFineTuningJob(_Wire):
    id: Annotated[str, Field(description="Whetstone's job id (ftjob-...).")]
    object: Annotated[Literal["fine_tuning.job"], Field(description="Always so.")] = (
        "fine_tuning.job"
    )
    created_at: Annotated[int, Field(description="Unix seconds.")]
    finished_at: Annotated[int | None, Field(description="Unix seconds, once ended.")] = None
    error: Annotated[OpenAIJobError | None, Field(description="Why it failed.")] = None
    fine_tuned_model: Annotated[
        str | None, Field(description="ft:<base>:<org>:<suffix>:<id>, once succeeded.")
    ] = None
    hyperparameters: Annotated[OpenAIHyperparameters, Field(description="As run.")]
    method: Annotated[OpenAIMethod, Field(description="supervised or dpo.")]
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
    validation_file: Annotated[str | None, Field(description="Never set.")] = None
    estimated_finish: Annotated[int | None, Field(description="Unix seconds, while running.")] = (
        None
    )
    integrations: Annotated[list[Any] | None, Field(description="Never set.")] = None
    metadata: Annotated[dict[str, str] | None, Field(description="Never kept.")] = None


class OpenAIJobList(_Wire):
    object: Annotated[Literal["list"], Field(description="Always 'list'.")] = "list"
    data: Annotated[list[OpenAIFineTuningJob], Field(description="Newest first.")]
    has_more: Annotated[bool, Field(description="More follow the last one.")]


class OpenAIJobEvent(_Wire):
    id: Annotated[str, Field(description="Event id, for `after`.")]
    object: Annotated[Literal["fine_tuning.job.event"], Field(description="Always so.")] = (
        "fine_tuning.job.event"
    )
    created_at: Annotated[int, Field(description="Unix seconds.")]
    level: Annotated[Literal["info", "warn", "error"], Field(description="Severity.")]
    message: Annotated[str, Field(description="What happened.")]
    type: Annotated[Literal["message", "metrics"], Field(description="A message or metrics.")]
    data: Annotated[dict[str, Any] | None, Field(description="The metrics, for metrics.")] = None


class OpenAIEventList(_Wire):
    object: Annotated[Literal["list"], Field(description="Always 'list'.")] = "list"
    data: Annotated[list[OpenAIJobEvent], Field(description="Newest first.")]
    has_more: Annotated[bool, Field(description="More follow the last one.")]


class OpenAICheckpointMetrics(_Wire):
    step: Annotated[float, Field(description="The checkpoint's step.")]
    train_loss: Annotated[float | None, Field(description="Training loss there.")] = None
    valid_loss: Annotated[float | None, Field(description="Validation loss there.")] = None


class OpenAIJobCheckpoint(_Wire):
    id: Annotated[str, Field(description="ftckpt-<job id>-<step>.")]
    object: Annotated[Literal["fine_tuning.job.checkpoint"], Field(description="Always so.")] = (
        "fine_tuning.job.checkpoint"
    )
    created_at: Annotated[int, Field(description="Unix seconds.")]
    fine_tuned_model_checkpoint: Annotated[str, Field(description="<model name>:ckpt-step-<n>.")]
    fine_tuning_job_id: Annotated[str, Field(description="The job.")]
    metrics: Annotated[OpenAICheckpointMetrics, Field(description="Losses at the step.")]
    step_number: Annotated[int, Field(description="Global step.")]


class OpenAICheckpointList(_Wire):
    object: Annotated[Literal["list"], Field(description="Always 'list'.")] = "list"
    data: Annotated[list[OpenAIJobCheckpoint], Field(description="Newest first.")]
    has_more: Annotated[bool, Field(description="More follow the last one.")]
    first_id: Annotated[str | None, Field(description="Id of the first one.")] = None
    last_id: Annotated[str | None, Field(description="Id of the last one.")] = None


class OpenAIModel(_Wire):
    id: Annotated[str, Field(description="Catalog id, or a fine-tuned model's name.")]
    object: Annotated[Literal["model"], Field(description="Always 'model'.")] = "model"
    created: Annotated[int, Field(description="Unix seconds (0 for catalog models).")]
    owned_by: Annotated[str, Field(description="'whetstone', or the organization.")]


class OpenAIModelList(_Wire):
    object: Annotated[Literal["list"], Field(description="Always 'list'.")] = "list"
    data: Annotated[list[OpenAIModel], Field(description="Catalog, then fine-tuned.")]


class OpenAICreateJobRequest(DeferredModel):
    """What `client.fine_tuning.jobs.create` sends."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    model: Annotated[str, Field(description="Catalog id, hf://, s3:// or a local folder.")]
    training_file: Annotated[str, Field(description="A file id from POST /v1/files.")]
    validation_file: Annotated[str | None, Field(description="Refused when set.")] = None
    hyperparameters: Annotated[
        OpenAIHyperparameters | None, Field(description="Deprecated by OpenAI; as method's.")
    ] = None
    method: Annotated[OpenAIMethod | None, Field(description="supervised (default) or dpo.")] = None
    seed: Annotated[int | None, Field(ge=0, description="advanced.seed.")] = None
    suffix: Annotated[
        str | None, Field(max_length=64, description="Part of the fine-tuned model's name.")
    ] = None
    integrations: Annotated[list[Any] | None, Field(description="Refused when not empty.")] = None
    metadata: Annotated[dict[str, str] | None, Field(description="Accepted, not kept.")] = None
    whetstone: Annotated[
        dict[str, Any] | None,
        Field(
            description="Whetstone's extension (the client's extra_body): job spec fields "
            "laid over the mapped ones, e.g. {'method': 'qlora', 'hardware': {...}}."
        ),
    ] = None
