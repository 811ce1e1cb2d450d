"""The trainer plan: everything the training program is given, as one JSON document.

The workflow's preparing step writes it (to a folder or S3) and starts the trainer with
`python -m trainer --spec <path or s3:// URI>`. The job spec inside is the user's contract;
the rest says where things are and how the trainer reports.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from whetstone.core.deferred import DeferredModel
from whetstone.core.spec import JobSpec, Method


class _Section(DeferredModel):
    model_config = ConfigDict(extra="forbid")


class EventSinkSettings(_Section):
    """Where the trainer's events go."""

    kind: Annotated[
        Literal["stdout", "eventbridge"],
        Field(description="JSON lines on stdout, or EventBridge PutEvents."),
    ] = "stdout"
    bus_name: Annotated[
        str | None, Field(min_length=1, description="EventBridge bus name or ARN.")
    ] = None
    region: Annotated[str | None, Field(min_length=1, description="AWS region of the bus.")] = None
    resources_interval_s: Annotated[
        float, Field(gt=0, le=3600, description="Seconds between resource samples.")
    ] = 10.0
    credential: Annotated[
        str | None,
        Field(
            repr=False,
            description="The job's event credential, put on every event (aws: ingest drops "
            "events whose credential is not the job's). Secret: never logged.",
        ),
    ] = None

    @model_validator(mode="after")
    def _bus_for_eventbridge(self) -> Self:
        if self.kind == "eventbridge" and self.bus_name is None:
            raise ValueError("an eventbridge sink needs bus_name")
        return self


Batching = Literal["auto", "length_grouped", "packed", "padded"]
LossOn = Literal["assistant", "all"]


class TrainerOptions(_Section):
    """How the trainer runs the spec; defaults suit every job."""

    batching: Annotated[
        Batching,
        Field(
            description="'length_grouped': batches of similar lengths, padded per batch; "
            "'packed': each batch flattened into one row with sequence boundaries kept "
            "(needs an attention kernel that honours them; not for prompt tuning); "
            "'padded': padding per batch in random order; 'auto': packed with "
            "flash-attention on a GPU that has it, with per-example SDPA on a CPU, "
            "length_grouped otherwise (and for prompt tuning)."
        ),
    ] = "auto"
    loss_on: Annotated[
        LossOn,
        Field(
            description="'assistant': loss on assistant tokens only (chat, completion and "
            "classification data); 'all': on every token."
        ),
    ] = "assistant"
    merge_adapter: Annotated[
        bool, Field(description="Also save the base model with the LoRA adapter merged in.")
    ] = False
    evaluate_at_start: Annotated[
        bool, Field(description="Evaluate on the validation split before the first step.")
    ] = False
    max_steps: Annotated[
        int | None,
        Field(ge=1, description="Stop after this many optimizer steps (smoke runs)."),
    ] = None
    save_total_limit: Annotated[
        int, Field(ge=1, le=100, description="Checkpoints kept, besides the best one.")
    ] = 2
    stream_buffer: Annotated[
        int, Field(ge=16, description="Examples held to shuffle and group a streamed split.")
    ] = 2048
    max_run_hours: Annotated[
        float | None,
        Field(
            gt=0,
            description="Training time after which the trainer saves a checkpoint and fails "
            "with run_time_exceeded: hardware.max_run_hours, or the estimate with a margin "
            "(run_time_cap_hours); null in plans written before the cap existed.",
        ),
    ] = None


class PlanDataset(_Section):
    """The dataset the prepare stage reads, and the limits it reads it under."""

    source: Annotated[
        str,
        Field(
            min_length=1,
            description="A file path, s3://bucket/key (an upload's key included) or "
            "hf://<dataset>[:config][@split].",
        ),
    ]
    filename: Annotated[
        str | None, Field(description="The file's name, used to detect the format.")
    ] = None
    max_file_bytes: Annotated[int, Field(ge=1, description="Largest source accepted, in bytes.")]
    max_row_bytes: Annotated[int, Field(ge=1, description="Largest line or row, in bytes.")]


class TrainerPlan(_Section):
    """What `python -m trainer --spec` reads."""

    job_id: Annotated[str, Field(min_length=1, description="The job this run belongs to.")]
    spec: Annotated[JobSpec, Field(description="The job spec.")]
    data: Annotated[
        str,
        Field(
            min_length=1,
            description="Folder or s3:// prefix holding train/validation/test .jsonl and "
            "manifest.json (whetstone.core.datasets.records).",
        ),
    ]
    model_source: Annotated[
        str | None,
        Field(
            min_length=1,
            description="Where to load the base model from: catalog id, hf://<repo>[@rev], "
            "s3://bucket/prefix or a local folder. Defaults to spec.base_model.",
        ),
    ] = None
    output: Annotated[
        str,
        Field(
            min_length=1,
            description="Folder or s3:// prefix for checkpoints, artifacts, metrics and the "
            "run manifest. A run restarted with the same output resumes.",
        ),
    ]
    job_files: Annotated[
        str | None,
        Field(
            min_length=1,
            description="Folder or s3:// prefix of the job's files (core.layout.JobLayout "
            "names under it): where prepare writes prepared.json and finalize the archives.",
        ),
    ] = None
    dataset: Annotated[
        PlanDataset | None, Field(description="What the prepare stage reads and splits.")
    ] = None
    events: Annotated[EventSinkSettings, Field(description="Event sink.")] = Field(
        default_factory=EventSinkSettings
    )
    options: Annotated[TrainerOptions, Field(description="Trainer options.")] = Field(
        default_factory=TrainerOptions
    )
    image_digest: Annotated[
        str | None, Field(description="Digest of the trainer image, when known.")
    ] = None
    source_revision: Annotated[
        str | None, Field(description="Revision of the Whetstone source the image was built from.")
    ] = None

    @model_validator(mode="after")
    def _packing_fits_method(self) -> Self:
        if self.options.batching == "packed" and self.spec.method is Method.PROMPT_TUNING:
            raise ValueError(
                "prompt tuning prepends a soft prompt to each row, which packing would share "
                "across examples; use batching 'length_grouped' or 'auto'"
            )
        if self.options.batching == "packed" and self.spec.method is Method.DPO:
            raise ValueError(
                "dpo scores each chosen and rejected answer as a sequence of its own, which "
                "packing would merge; use batching 'length_grouped' or 'auto'"
            )
        return self

    @property
    def resolved_model_source(self) -> str:
        return self.model_source or self.spec.base_model
