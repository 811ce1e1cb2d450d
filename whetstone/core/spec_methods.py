"""The training methods of the job spec, and the settings sections each method reads:
`lora`, `quantization`, `prompt_tuning` and `dpo`."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from whetstone.core.spec_section import SpecSection


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
ALL_LINEAR = "all-linear"
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class LoraParams(SpecSection):
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


class QuantizationParams(SpecSection):
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


class PromptTuningParams(SpecSection):
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


class DpoParams(SpecSection):
    """Preference tuning (Direct Preference Optimization), for the `dpo` method."""

    beta: Annotated[
        float,
        Field(gt=0, le=10, description="How far the tuned model may move from the base model."),
    ] = 0.1
    tuning: Annotated[
        DpoTuning,
        Field(description="Which weights DPO trains: an adapter (lora, qlora) or all (full)."),
    ] = "lora"
