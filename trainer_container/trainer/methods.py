"""One small strategy per training method: how to load the base model and what to train.

LoRA and QLoRA add adapters (peft); QLoRA first quantizes the frozen base: 4-bit nf4/fp4
and 8-bit through bitsandbytes, integer 2/3/4/5/6-bit through torchao's IntxWeightOnly.
Full fine-tuning trains every weight; prompt tuning trains a soft prompt only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from whetstone.core.spec import ALL_LINEAR, JobSpec, LoraParams, Method, QuantizationParams

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
TORCHAO_GROUP_SIZE = 32


class ModelLoadError(Exception):
    """The base model could not be loaded as asked."""


@dataclass
class LoadContext:
    """What every strategy needs to know about the run."""

    model_path: str
    revision: str | None
    precision: str  # "bf16" | "fp16" | "fp32"
    on_gpu: bool
    device_map: dict[str, int] | None
    attn_implementation: str
    notes: list[str] = field(default_factory=list)

    @property
    def weight_dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)


def _from_pretrained(ctx: LoadContext, dtype: torch.dtype, **kwargs: Any) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            ctx.model_path,
            revision=ctx.revision,
            dtype=dtype,
            device_map=ctx.device_map,
            attn_implementation=ctx.attn_implementation,
            **kwargs,
        )
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load the base model from {ctx.model_path}: {exc}") from exc


def lora_config(params: LoraParams) -> Any:
    from peft import LoraConfig

    targets: str | list[str] = (
        ALL_LINEAR if params.target_modules == [ALL_LINEAR] else list(params.target_modules)
    )
    return LoraConfig(
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def compute_dtype(q: QuantizationParams, ctx: LoadContext) -> torch.dtype:
    """The QLoRA compute dtype; float16 becomes float32 on CPU, which has no fast fp16."""
    dtype = _DTYPES[q.compute_dtype]
    if dtype is torch.float16 and not ctx.on_gpu:
        ctx.notes.append("compute dtype float16 is not supported on cpu; using float32")
        return torch.float32
    return dtype


def uses_torchao(q: QuantizationParams) -> bool:
    """Integer widths other than 8 go through torchao; nf4, fp4 and int8 through bitsandbytes."""
    return q.bits != 8 and not (q.bits == 4 and q.quant_type in ("nf4", "fp4"))


def bitsandbytes_config(q: QuantizationParams, dtype: torch.dtype) -> tuple[Any, str]:
    """The transformers quantization config for nf4/fp4 4-bit or int8, and its name."""
    from transformers import BitsAndBytesConfig

    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True), "bitsandbytes int8"
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=dtype,
    )
    return config, f"bitsandbytes {q.quant_type}"


def quantize_with_torchao(model: Any, bits: int, device: str | None) -> str:
    """Quantize every linear layer but the output head to int<bits> weights, in place.

    Done after loading rather than through transformers' TorchAoConfig, whose Trainer
    check admits only 8-bit torchao models for training although LoRA on top of
    IntxWeightOnly layers trains (the base stays frozen; only adapters get gradients).
    `device` moves each layer there as it is quantized, so a GPU never holds the whole
    16-bit model.
    """
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    config = IntxWeightOnlyConfig(
        weight_dtype=getattr(torch, f"int{bits}"), granularity=PerGroup(TORCHAO_GROUP_SIZE)
    )

    def is_quantizable(module: torch.nn.Module, name: str) -> bool:
        return (
            isinstance(module, torch.nn.Linear)
            and not name.endswith("lm_head")
            and module.in_features % TORCHAO_GROUP_SIZE == 0
        )

    quantize_(model, config, filter_fn=is_quantizable, device=device)
    if device is not None:
        model.to(device)
    return f"torchao int{bits} weight-only (group {TORCHAO_GROUP_SIZE})"


class MethodStrategy(Protocol):
    method: Method
    trains_adapter: bool

    def load(self, spec: JobSpec, ctx: LoadContext) -> Any:
        """The model, ready to train: base loaded, method applied."""
        ...


class LoraStrategy:
    method = Method.LORA
    trains_adapter = True

    def load(self, spec: JobSpec, ctx: LoadContext) -> Any:
        from peft import get_peft_model

        from .fused_lora import use_fused_lora

        model = _from_pretrained(ctx, ctx.weight_dtype)
        return get_peft_model(model, use_fused_lora(lora_config(spec.lora)))


class QloraStrategy:
    method = Method.QLORA
    trains_adapter = True

    def load(self, spec: JobSpec, ctx: LoadContext) -> Any:
        from peft import get_peft_model, prepare_model_for_kbit_training

        q = spec.quantization
        dtype = compute_dtype(q, ctx)
        if uses_torchao(q):
            model = _from_pretrained(replace(ctx, device_map=None), dtype)
            device = f"cuda:{next(iter(ctx.device_map.values()))}" if ctx.device_map else None
            backend = quantize_with_torchao(model, q.bits, device)
        else:
            config, backend = bitsandbytes_config(q, dtype)
            model = _from_pretrained(ctx, dtype, quantization_config=config)
        ctx.notes.append(f"base model quantized with {backend}, compute dtype {dtype}")
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=spec.advanced.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
        return get_peft_model(model, lora_config(spec.lora))


class FullStrategy:
    method = Method.FULL
    trains_adapter = False

    def load(self, spec: JobSpec, ctx: LoadContext) -> Any:
        # bf16 trains pure 16-bit weights; fp16 mixed precision needs fp32 master weights.
        dtype = torch.bfloat16 if ctx.precision == "bf16" else torch.float32
        return _from_pretrained(ctx, dtype)


class PromptTuningStrategy:
    method = Method.PROMPT_TUNING
    trains_adapter = True

    def load(self, spec: JobSpec, ctx: LoadContext) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

        params = spec.prompt_tuning
        model = _from_pretrained(ctx, ctx.weight_dtype)
        text_init = params.init == "text"
        config = PromptTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=params.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT if text_init else PromptTuningInit.RANDOM,
            prompt_tuning_init_text=params.init_text if text_init else None,
            tokenizer_name_or_path=ctx.model_path if text_init else None,
        )
        return get_peft_model(model, config)


STRATEGIES: dict[Method, MethodStrategy] = {
    Method.LORA: LoraStrategy(),
    Method.QLORA: QloraStrategy(),
    Method.FULL: FullStrategy(),
    Method.PROMPT_TUNING: PromptTuningStrategy(),
}


def strategy_for(method: Method) -> MethodStrategy:
    return STRATEGIES[method]


def merge_adapter(adapter_dir: Path, base_path: str, revision: str | None, out_dir: Path) -> None:
    """Save the base model with a LoRA adapter merged in, in full precision.

    QLoRA adapters are merged into the unquantized base, which is what serving loads.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, revision=revision, dtype="auto")
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
