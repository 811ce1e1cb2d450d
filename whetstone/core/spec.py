"""The job spec: the one contract between the API, the workflow and the trainer.

Every default and range of product.md's tables lives here, once. The API, the
OpenAPI document, the CLI and the docs read them from these models. The methods and their
own sections are in spec_methods.py, the dataset section in spec_dataset.py; this module
composes them into `JobSpec` and answers for the names the trainer and others import.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from whetstone.core.catalog.hardware import GpuType, get_gpu
from whetstone.core.spec_dataset import ColumnMapping as ColumnMapping
from whetstone.core.spec_dataset import DatasetFormat as DatasetFormat
from whetstone.core.spec_dataset import DatasetParams
from whetstone.core.spec_methods import ADAPTER_METHODS as ADAPTER_METHODS
from whetstone.core.spec_methods import ALL_LINEAR as ALL_LINEAR
from whetstone.core.spec_methods import LORA_METHODS as LORA_METHODS
from whetstone.core.spec_methods import DpoParams, PromptTuningParams
from whetstone.core.spec_methods import LoraParams as LoraParams
from whetstone.core.spec_methods import Method as Method
from whetstone.core.spec_methods import QuantBits as QuantBits
from whetstone.core.spec_methods import QuantizationParams as QuantizationParams
from whetstone.core.spec_section import SpecSection

# Learning rates: product.md's range tops out at 0.01, which suits methods that move trained
# weights. Prompt tuning learns a few new embeddings from scratch and needs far larger
# steps (PEFT's prompt-tuning guide trains at 3e-2); at 2e-4 its loss barely moves.
LEARNING_RATE_MAX = 1e-2
PROMPT_TUNING_LEARNING_RATE_MAX = 0.3
PROMPT_TUNING_LEARNING_RATE = 3e-2
# Ranges that depend on the method, as docs/job-spec.md shows them; a JobSpec rule checks them
# (a field's own bounds are method-blind: the widest of every method's).
METHOD_DEPENDENT_RANGES = {
    "training.learning_rate": f"≥ 1e-06, ≤ {LEARNING_RATE_MAX:g} "
    f"(prompt_tuning: ≤ {PROMPT_TUNING_LEARNING_RATE_MAX:g})",
}
MAX_STORAGE_GB = 1000  # hardware.storage_gb's upper bound (GPU nodes' disks are sized for it)


class EvaluationParams(SpecSection):
    """The evaluation step after training: generations scored against the test split."""

    enabled: Annotated[bool, Field(description="Run the evaluation step after training.")] = True
    max_samples: Annotated[
        int, Field(ge=1, le=1000, description="Test examples generated and scored, at most.")
    ] = 50
    max_new_tokens: Annotated[
        int, Field(ge=1, le=1024, description="Tokens generated per example, at most.")
    ] = 64
    prompts_source: Annotated[
        str | None,
        Field(
            description="Optional JSON-lines file of {prompt, expected} rows, scored instead "
            "of the test split: a local path or an s3:// URI the trainer can read."
        ),
    ] = None


class TrainingParams(SpecSection):
    """Optimization hyperparameters."""

    field_synonyms = {"lr": "learning_rate", "num_epochs": "epochs", "num_train_epochs": "epochs"}

    learning_rate: Annotated[
        float,
        Field(
            ge=1e-6,
            le=PROMPT_TUNING_LEARNING_RATE_MAX,
            description=f"Step size for weight updates: at most {LEARNING_RATE_MAX:g}, except "
            f"for prompt_tuning (at most {PROMPT_TUNING_LEARNING_RATE_MAX:g}, "
            f"{PROMPT_TUNING_LEARNING_RATE:g} when unset).",
        ),
    ] = 2e-4
    batch_size: Annotated[int, Field(ge=1, le=32, description="Examples per device step.")] = 4
    epochs: Annotated[int, Field(ge=1, le=50, description="Passes through the dataset.")] = 3
    gradient_accumulation_steps: Annotated[
        int, Field(ge=1, le=32, description="Steps accumulated before each optimizer update.")
    ] = 4
    warmup_steps: Annotated[
        int | None,
        Field(
            ge=0,
            description="Optimizer steps of linear learning-rate warmup. Null (the default): "
            "10% of the run's optimizer steps, rounded up, at most 100.",
        ),
    ] = None
    weight_decay: Annotated[
        float, Field(ge=0.0, le=1.0, description="Decoupled L2 regularization strength.")
    ] = 0.01
    max_sequence_length: Annotated[
        int, Field(ge=128, le=4096, description="Maximum tokens per training sequence.")
    ] = 2048


Strategy = Literal["steps", "epoch", "no"]
Optimizer = Literal["auto", "adamw_torch", "adamw_8bit", "adafactor"]


class AdvancedParams(SpecSection):
    """Checkpointing, evaluation, logging and precision settings."""

    early_stopping: Annotated[
        bool, Field(description="Stop training when validation loss plateaus.")
    ] = True
    early_stopping_patience: Annotated[
        int, Field(ge=1, le=100, description="Evaluations without improvement before stopping.")
    ] = 3
    save_strategy: Annotated[Strategy, Field(description="When to save checkpoints.")] = "steps"
    eval_strategy: Annotated[Strategy, Field(description="When to run evaluation.")] = "steps"
    logging_steps: Annotated[int, Field(ge=1, description="Steps between log entries.")] = 10
    save_steps: Annotated[int, Field(ge=1, description="Steps between checkpoint saves.")] = 500
    eval_steps: Annotated[int, Field(ge=1, description="Steps between evaluations.")] = 500
    dataloader_workers: Annotated[
        int | None,
        Field(
            ge=0,
            le=16,
            description="Parallel data loading workers. Null (the default): one fewer than "
            "the trainer's CPU cores, at most 4.",
        ),
    ] = None
    fp16: Annotated[
        bool,
        Field(
            description="Half-precision training. The trainer uses bfloat16 where the GPU "
            "supports it and float16 elsewhere; CPU runs use float32."
        ),
    ] = True
    bf16: Annotated[
        bool, Field(description="Require bfloat16 (Ampere or newer GPUs); overrides fp16.")
    ] = False
    gradient_checkpointing: Annotated[
        bool, Field(description="Recompute activations in backward: less memory, ~30% slower.")
    ] = True
    optimizer: Annotated[
        Optimizer,
        Field(
            description="'auto' is AdamW, with 8-bit states (bitsandbytes) for full "
            "fine-tuning on a GPU."
        ),
    ] = "auto"
    seed: Annotated[int, Field(ge=0, description="Seed for splitting, init and data order.")] = 42

    @model_validator(mode="after")
    def _early_stopping_needs_matching_evaluation(self) -> Self:
        """`advanced.early_stopping` needs evaluation (`eval_strategy` not `no`), `save_strategy`
        equal to `eval_strategy`, and with `steps`, `save_steps` a multiple of `eval_steps`."""
        if not self.early_stopping:
            return self
        if self.eval_strategy == "no":
            raise ValueError(
                "early_stopping needs evaluation: set eval_strategy to 'steps' or 'epoch', "
                "or set early_stopping to false"
            )
        if self.save_strategy != self.eval_strategy:
            raise ValueError(
                f"early_stopping keeps the best checkpoint, so save_strategy "
                f"({self.save_strategy}) must equal eval_strategy ({self.eval_strategy})"
            )
        if self.save_strategy == "steps" and self.save_steps % self.eval_steps:
            raise ValueError(
                f"early_stopping needs save_steps ({self.save_steps}) to be a multiple of "
                f"eval_steps ({self.eval_steps})"
            )
        return self


class HardwareParams(SpecSection):
    """The GPU node the job runs on."""

    gpu_type: Annotated[GpuType, Field(description="GPU for Karpenter node selection.")] = (
        GpuType.T4
    )
    gpu_count: Annotated[int, Field(ge=1, le=8, description="Number of GPUs.")] = 1
    max_run_hours: Annotated[
        float | None,
        Field(
            gt=0,
            le=720,
            description="Cap on training time; the trainer checkpoints and fails with "
            "run_time_exceeded when it is reached. Null: the estimate with a margin.",
        ),
    ] = None
    max_cost_usd: Annotated[
        float | None,
        Field(
            gt=0,
            description="Cap on this job's spend; reaching it pauses the job with a checkpoint "
            "(resume continues it). Null: no cap beyond the organization's budget.",
        ),
    ] = None
    storage_gb: Annotated[
        int, Field(ge=50, le=MAX_STORAGE_GB, description="Ephemeral storage in GB.")
    ] = 100
    instance_type: Annotated[
        str | None,
        Field(
            description="Legacy field, derived from gpu_type and gpu_count. When given it "
            "must match the derived EC2 instance type."
        ),
    ] = None

    @model_validator(mode="after")
    def _derive_instance_type(self) -> Self:
        """`hardware.instance_type` is derived from `gpu_type` and `gpu_count`; when given, it
        must match."""
        derived = get_gpu(self.gpu_type).instance_for(self.gpu_count).instance_type
        if self.instance_type is not None and self.instance_type != derived:
            raise ValueError(
                f"instance_type {self.instance_type} contradicts gpu_type {self.gpu_type} with "
                f"gpu_count {self.gpu_count}, which runs on {derived}; drop instance_type "
                "or set it to that"
            )
        self.instance_type = derived
        return self


class JobSpec(SpecSection):
    """Everything a fine-tuning job needs to run, with product.md's defaults."""

    base_model: Annotated[
        str,
        Field(
            min_length=1,
            description="Catalog model id (e.g. 'llama-3.1-8b-instruct'), hf://<repo>, "
            "s3://bucket/prefix, or a local folder path.",
        ),
    ]
    method: Annotated[Method, Field(description="Training method.")] = Method.LORA
    lora: Annotated[LoraParams, Field(description="Adapter settings (lora and qlora).")] = Field(
        default_factory=LoraParams
    )
    quantization: Annotated[
        QuantizationParams, Field(description="Base model quantization (qlora).")
    ] = Field(default_factory=QuantizationParams)
    prompt_tuning: Annotated[
        PromptTuningParams, Field(description="Soft prompt settings (prompt_tuning).")
    ] = Field(default_factory=PromptTuningParams)
    dpo: Annotated[DpoParams, Field(description="Preference tuning settings (dpo).")] = Field(
        default_factory=DpoParams
    )
    dataset: Annotated[DatasetParams, Field(description="Dataset settings.")] = Field(
        default_factory=DatasetParams
    )
    training: Annotated[TrainingParams, Field(description="Training hyperparameters.")] = Field(
        default_factory=TrainingParams
    )
    advanced: Annotated[AdvancedParams, Field(description="Advanced configuration.")] = Field(
        default_factory=AdvancedParams
    )
    hardware: Annotated[HardwareParams, Field(description="Hardware selection.")] = Field(
        default_factory=HardwareParams
    )
    evaluation: Annotated[EvaluationParams, Field(description="Evaluation after training.")] = (
        Field(default_factory=EvaluationParams)
    )

    @model_validator(mode="after")
    def _precision_fits_the_gpu(self) -> Self:
        """`advanced.bf16`, and `quantization.compute_dtype: bfloat16` with qlora, need a GPU with
        bfloat16 (not `nvidia-t4`)."""
        gpu = get_gpu(self.hardware.gpu_type)
        if gpu.bf16:
            return self
        if self.advanced.bf16:
            raise ValueError(
                f"{gpu.name} has no bfloat16; set advanced.bf16 to false (fp16 is used) "
                "or pick an Ampere or newer gpu_type such as nvidia-l4 or nvidia-a10g"
            )
        if self.tuning_method is Method.QLORA and self.quantization.compute_dtype == "bfloat16":
            raise ValueError(
                f"{gpu.name} has no bfloat16; set quantization.compute_dtype to float16 "
                "or pick an Ampere or newer gpu_type"
            )
        return self

    @model_validator(mode="after")
    def _cutoff_within_sequence_length(self) -> Self:
        """`dataset.cutoff_length` is at most `training.max_sequence_length`."""
        if self.dataset.cutoff_length > self.training.max_sequence_length:
            raise ValueError(
                f"dataset.cutoff_length ({self.dataset.cutoff_length}) exceeds "
                f"training.max_sequence_length ({self.training.max_sequence_length}); lower "
                "the cutoff or raise the maximum sequence length"
            )
        return self

    @model_validator(mode="after")
    def _learning_rate_fits_the_method(self) -> Self:
        """`training.learning_rate` is at most 0.01, except for `prompt_tuning`: at most 0.3,
        and 0.03 when unset (docs/trainer.md, "Learning rates")."""
        training = self.training
        if self.method is Method.PROMPT_TUNING:
            if "learning_rate" not in training.model_fields_set:
                training.learning_rate = PROMPT_TUNING_LEARNING_RATE
            return self
        if training.learning_rate > LEARNING_RATE_MAX:
            raise ValueError(
                f"training.learning_rate ({training.learning_rate:g}) exceeds "
                f"{LEARNING_RATE_MAX:g}, the most for {self.method.value}; only prompt_tuning "
                f"takes up to {PROMPT_TUNING_LEARNING_RATE_MAX:g}"
            )
        return self

    @property
    def tuning_method(self) -> Method:
        """Which weights train: the method itself, or for `dpo` the one `dpo.tuning` names.
        Everything about adapters, quantization and memory follows this, not `method`."""
        return Method(self.dpo.tuning) if self.method is Method.DPO else self.method

    @property
    def sequence_length(self) -> int:
        """Tokens per training example after truncation."""
        return min(self.dataset.cutoff_length, self.training.max_sequence_length)

    @property
    def effective_batch_size(self) -> int:
        return (
            self.training.batch_size
            * self.training.gradient_accumulation_steps
            * self.hardware.gpu_count
        )


Precision = Literal["bf16", "fp16", "fp32"]


def resolve_precision(spec: JobSpec, *, gpu_bf16: bool | None) -> Precision:
    """The training precision for this spec on a device.

    `gpu_bf16` is None on CPU, otherwise whether the GPU computes in bfloat16.
    """
    if gpu_bf16 is None:
        return "fp32"
    if spec.advanced.bf16 or spec.advanced.fp16:
        return "bf16" if gpu_bf16 else "fp16"
    return "fp32"
