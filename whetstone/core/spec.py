"""The job spec: the one contract between the API, the workflow and the trainer.

Every default and range of product.md's tables lives here, once. The API, the
OpenAPI document, the CLI and the docs read them from these models.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from whetstone.core.catalog.hardware import GpuType, get_gpu
from whetstone.core.strict import StrictModel

SPEC_REFERENCE = "docs/job-spec.md"


class _Section(StrictModel):
    """A spec section: unknown fields are rejected so a typo never passes silently."""

    field_reference = SPEC_REFERENCE


class Method(StrEnum):
    LORA = "lora"
    QLORA = "qlora"
    FULL = "full"
    PROMPT_TUNING = "prompt_tuning"
    # Preference tuning: trains on chosen/rejected pairs, through the weights `dpo.tuning` names.
    DPO = "dpo"


LORA_METHODS = frozenset({Method.LORA, Method.QLORA})  # the methods `lora` settings apply to
# The methods whose output is an adapter over the base model (full fine-tuning saves every weight).
ADAPTER_METHODS = frozenset({Method.LORA, Method.QLORA, Method.PROMPT_TUNING})
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
ALL_LINEAR = "all-linear"
MAX_STORAGE_GB = 1000  # hardware.storage_gb's upper bound (GPU nodes' disks are sized for it)
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class LoraParams(_Section):
    """Adapter settings, used by the `lora` and `qlora` methods."""

    field_synonyms = {"rank": "r", "lora_alpha": "alpha", "lora_dropout": "dropout"}

    r: Annotated[
        int, Field(ge=1, le=256, description="Rank: dimensionality of adapter matrices.")
    ] = 16
    alpha: Annotated[int, Field(ge=1, le=512, description="Scaling factor, typically 2x rank.")] = (
        32
    )
    dropout: Annotated[
        float, Field(ge=0.0, le=0.5, description="Dropout on the adapter input.")
    ] = 0.1
    target_modules: Annotated[
        list[str],
        Field(
            min_length=1,
            description="Layers that get adapters, e.g. ['q_proj', 'v_proj'], "
            "or ['all-linear'] for every linear layer but the output head.",
        ),
    ] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    save_merged: Annotated[
        bool,
        Field(
            description="Also save the base model with the adapter merged in, in 16 bits "
            "(QLoRA merges into the unquantized base); download it with artifact=merged."
        ),
    ] = False

    @field_validator("target_modules", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        """`lora.target_modules` may be one name instead of a list."""
        return [value] if isinstance(value, str) else value

    @field_validator("target_modules")
    @classmethod
    def _valid_module_names(cls, value: list[str]) -> list[str]:
        """`lora.target_modules` are module names (letters, digits, `_`, `.`), each listed once;
        `all-linear` stands alone."""
        if ALL_LINEAR in value and len(value) > 1:
            raise ValueError("'all-linear' already covers every linear layer; give it alone")
        for name in value:
            if name != ALL_LINEAR and not _MODULE_NAME.match(name):
                raise ValueError(f"{name!r} is not a module name (letters, digits, '_' or '.')")
        if len(set(value)) != len(value):
            raise ValueError("target_modules lists a module twice")
        return value


QuantBits = Literal[2, 3, 4, 5, 6, 8]
QuantType = Literal["nf4", "int4", "fp4"]
ComputeDtype = Literal["float16", "bfloat16", "float32"]


class QuantizationParams(_Section):
    """How the frozen base model is quantized, for the `qlora` method.

    `nf4` and `fp4` are 4-bit float formats; `int4` is integer (affine)
    quantization, which is the only kind at 2, 3, 5, 6 and 8 bits. Left at its
    default, the quant type follows the bit width (nf4 at 4 bits, integer
    otherwise).
    """

    bits: Annotated[QuantBits, Field(description="Quantization precision in bits.")] = 4
    quant_type: Annotated[QuantType, Field(description="Quantization algorithm.")] = "nf4"
    double_quant: Annotated[
        bool, Field(description="Quantize the quantization constants (4-bit nf4/fp4 only).")
    ] = True
    compute_dtype: Annotated[
        ComputeDtype, Field(description="Dtype of the matmuls on dequantized weights.")
    ] = "float16"

    @model_validator(mode="after")
    def _quant_type_fits_bits(self) -> Self:
        """`quantization.quant_type` `nf4` and `fp4` exist only at 4 bits; left unset, it becomes
        `int4` at other widths."""
        if self.quant_type in ("nf4", "fp4") and self.bits != 4:
            if "quant_type" in self.model_fields_set:
                raise ValueError(
                    f"quant_type {self.quant_type} exists only at 4 bits; with bits={self.bits} "
                    "use quant_type 'int4' (integer quantization), or set bits to 4"
                )
            self.quant_type = "int4"
        return self


PromptInit = Literal["random", "text"]


class PromptTuningParams(_Section):
    """Soft-prompt settings, for the `prompt_tuning` method."""

    num_virtual_tokens: Annotated[
        int, Field(ge=1, le=512, description="Soft prompt length in tokens.")
    ] = 20
    init: Annotated[
        PromptInit, Field(description="Start from random embeddings or from a text's tokens.")
    ] = "random"
    init_text: Annotated[
        str | None,
        Field(min_length=1, description="Text whose embeddings start the prompt (init 'text')."),
    ] = None

    @model_validator(mode="after")
    def _text_goes_with_text_init(self) -> Self:
        """`prompt_tuning.init_text` goes with `init: text` only, which needs it."""
        if self.init == "text" and self.init_text is None:
            raise ValueError("init 'text' needs init_text: the text to start the prompt from")
        if self.init == "random" and self.init_text is not None:
            raise ValueError("init_text is used only with init 'text'; set init to 'text'")
        return self


DpoTuning = Literal["lora", "qlora", "full"]


class DpoParams(_Section):
    """Preference tuning (Direct Preference Optimization), for the `dpo` method."""

    beta: Annotated[
        float,
        Field(gt=0, le=10, description="How far the tuned model may move from the base model."),
    ] = 0.1
    tuning: Annotated[
        DpoTuning,
        Field(description="Which weights DPO trains: an adapter (lora, qlora) or all (full)."),
    ] = "lora"


class EvaluationParams(_Section):
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


class DatasetFormat(StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"
    OPENAI = "openai"
    CSV = "csv"
    PARQUET = "parquet"
    # Preference pairs: prompt/chosen/rejected, or OpenAI's input/preferred_output/
    # non_preferred_output.
    PREFERENCE = "preference"


class ColumnMapping(StrictModel):
    """Which column (or JSON key) holds which field; unset fields are auto-detected."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_reference = SPEC_REFERENCE

    text: Annotated[str | None, Field(description="Column holding the text.")] = None
    label: Annotated[str | None, Field(description="Column holding the class label.")] = None
    prompt: Annotated[str | None, Field(description="Column holding the prompt.")] = None
    completion: Annotated[str | None, Field(description="Column holding the completion.")] = None
    chosen: Annotated[
        str | None, Field(description="Column holding the preferred answer (dpo).")
    ] = None
    rejected: Annotated[
        str | None, Field(description="Column holding the rejected answer (dpo).")
    ] = None

    def is_empty(self) -> bool:
        return all(
            value is None
            for value in (
                self.text,
                self.label,
                self.prompt,
                self.completion,
                self.chosen,
                self.rejected,
            )
        )


class SplitParams(_Section):
    """Train/validation/test percentages; they must sum to 100.

    Also accepted as a string such as "80/15/5".
    """

    train: Annotated[int, Field(ge=1, le=100, description="Percent for training.")] = 80
    validation: Annotated[int, Field(ge=0, le=99, description="Percent for validation.")] = 15
    test: Annotated[int, Field(ge=0, le=99, description="Percent for the final test.")] = 5

    @model_validator(mode="before")
    @classmethod
    def _from_slashed_string(cls, value: Any) -> Any:
        """`dataset.split` may be a string `train/validation/test`, e.g. `80/15/5`."""
        if not isinstance(value, str):
            return value
        parts = value.split("/")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(
                f"split {value!r} must look like 'train/validation/test', e.g. 80/15/5"
            )
        train, validation, test = (int(p) for p in parts)
        return {"train": train, "validation": validation, "test": test}

    @model_validator(mode="after")
    def _sums_to_100(self) -> Self:
        """The three `dataset.split` percentages sum to 100."""
        total = self.train + self.validation + self.test
        if total != 100:
            raise ValueError(
                f"split {self.train}/{self.validation}/{self.test} sums to {total}; "
                "the three percentages must sum to 100"
            )
        return self


class DatasetParams(_Section):
    """Which data to train on and how to cut it."""

    source: Annotated[
        str | None,
        Field(
            description="Where the data is: s3://bucket/key, hf://<dataset>[:config][@split], "
            "an uploaded dataset id, or a local path (local runtime). Set by the API "
            "when the file is uploaded with the job.",
        ),
    ] = None
    format: Annotated[
        DatasetFormat, Field(description="Dataset format; 'auto' detects it from the data.")
    ] = DatasetFormat.AUTO
    columns: Annotated[
        ColumnMapping,
        Field(description="Column mapping for CSV, Parquet and generic JSONL; auto if unset."),
    ] = Field(default_factory=ColumnMapping)
    split: Annotated[SplitParams, Field(description="Train/validation/test split in percent.")] = (
        Field(default_factory=SplitParams)
    )
    max_samples: Annotated[
        int | None, Field(ge=1, description="Use at most this many examples; unlimited if null.")
    ] = None
    cutoff_length: Annotated[
        int, Field(ge=128, le=4096, description="Maximum tokens per example.")
    ] = 2048
    streaming: Annotated[bool, Field(description="Stream large datasets from storage.")] = False


class TrainingParams(_Section):
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


class AdvancedParams(_Section):
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


class HardwareParams(_Section):
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


class JobSpec(_Section):
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
