"""Memory, time and cost estimates for a job, from the model's architecture facts.

Memory is per GPU, in GiB (what GPU vendors call GB). Time comes from the
FLOPs the method spends per token, the GPU's dense peak and an efficiency
factor per GPU and method; cost from the job's share of its node's hourly rate.
The calibration against product.md's tables is described in docs/estimates.md.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from whetstone.core.catalog.hardware import GPUS, GpuInfo, GpuType, get_gpu
from whetstone.core.catalog.model_facts import BaseModelInfo, ModelArchitecture
from whetstone.core.deferred import DeferredModel
from whetstone.core.run_defaults import train_examples
from whetstone.core.spec import ALL_LINEAR, JobSpec, Method, resolve_precision

GIB = 1024**3

# Tokens in one example when the dataset has not been measured yet: about the
# mean length of instruction datasets such as Alpaca or Dolly with a Llama
# tokenizer, with the chat template's tokens added.
DEFAULT_TOKENS_PER_EXAMPLE = 256
# Setup (image pull, model download and load), evaluation and export, as a
# share of the training time: product.md gives 20-30%.
OVERHEAD_FRACTION = 0.25
# CUDA context, cuBLAS workspaces and allocator slack on every GPU.
CUDA_OVERHEAD_GIB = 1.0
# Each doubling of data-parallel GPUs keeps this share of linear scaling.
SCALING_PER_DOUBLING = 0.9

# Share of the datasheet peak a large 16-bit GEMM sustains on each GPU: the T4
# and L4 are 70 W cards that throttle well below their boost-clock peak.
GPU_EFFICIENCY: dict[GpuType, float] = {
    GpuType.T4: 0.30,
    GpuType.L4: 0.45,
    GpuType.A10G: 0.80,
    GpuType.A100_40GB: 0.80,
    GpuType.A100_80GB: 0.80,
    GpuType.H100: 0.70,
}
# Share of that a training loop reaches with each method (data loading, small
# adapter kernels, optimizer steps, for full fine-tuning the 8-bit optimizer and
# sharding). QLoRA is given LoRA's factor: its dequantization costs 20-40% more
# in practice, but product.md's QLoRA examples assume no such penalty.
METHOD_EFFICIENCY: dict[Method, float] = {
    Method.LORA: 0.45,
    Method.QLORA: 0.45,
    Method.FULL: 0.30,
    Method.PROMPT_TUNING: 0.45,
}


def sequences_per_example(spec: JobSpec) -> int:
    """Sequences the trainer runs per example: dpo's chosen and rejected, else one."""
    return 2 if spec.method is Method.DPO else 1


def _linear_shapes(arch: ModelArchitecture) -> dict[str, tuple[int, int, int]]:
    """(in, out, copies per layer) of each linear layer, by the usual module names."""
    q_out = arch.num_attention_heads * arch.head_dim
    kv_out = arch.num_key_value_heads * arch.head_dim
    h, i, experts = arch.hidden_size, arch.intermediate_size, arch.num_experts
    return {
        "q_proj": (h, q_out, 1),
        "k_proj": (h, kv_out, 1),
        "v_proj": (h, kv_out, 1),
        "o_proj": (q_out, h, 1),
        "qkv_proj": (h, q_out + 2 * kv_out, 1),
        "gate_proj": (h, i, experts),
        "up_proj": (h, i, experts),
        "down_proj": (i, h, experts),
        "gate_up_proj": (h, 2 * i, experts),
        # Mixtral's expert names.
        "w1": (h, i, experts),
        "w3": (h, i, experts),
        "w2": (i, h, experts),
    }


_ALL_LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_parameters(arch: ModelArchitecture, r: int, target_modules: list[str]) -> int:
    """Trainable parameters LoRA adds: r x (in + out) for every targeted linear layer.

    A module name the catalog does not know is counted as hidden x hidden.
    """
    shapes = _linear_shapes(arch)
    names = _ALL_LINEAR_MODULES if target_modules == [ALL_LINEAR] else target_modules
    per_layer = 0
    for name in names:
        d_in, d_out, copies = shapes.get(name, (arch.hidden_size, arch.hidden_size, 1))
        per_layer += r * (d_in + d_out) * copies
    return per_layer * arch.num_layers


def trainable_parameters(model: BaseModelInfo, spec: JobSpec) -> int:
    arch = model.architecture
    if spec.tuning_method is Method.FULL:
        return model.num_parameters
    if spec.tuning_method is Method.PROMPT_TUNING:
        return spec.prompt_tuning.num_virtual_tokens * arch.hidden_size
    return lora_parameters(arch, spec.lora.r, spec.lora.target_modules)


class MemoryEstimate(DeferredModel):
    """Memory one GPU needs for a job, GiB."""

    weights_gib: Annotated[float, Field(description="Model weights at the method's precision.")]
    trainable_gib: Annotated[
        float, Field(description="Trainable parameters, their gradients and optimizer states.")
    ]
    activations_gib: Annotated[
        float, Field(description="Activations and logits kept for the backward pass.")
    ]
    overhead_gib: Annotated[float, Field(description="CUDA context and workspaces.")]
    total_gib: Annotated[float, Field(description="Everything above: what one GPU must hold.")]
    trainable_parameters: Annotated[int, Field(description="Parameters the method trains.")]
    precision: Annotated[str, Field(description="Training precision on this GPU.")]
    optimizer: Annotated[str, Field(description="Optimizer the trainer will use.")]
    sharded: Annotated[
        bool, Field(description="Whether the model is sharded across GPUs (FSDP) to fit.")
    ]


def resolve_optimizer(spec: JobSpec) -> str:
    """The optimizer 'auto' stands for: 8-bit AdamW for full fine-tuning, AdamW otherwise."""
    if spec.advanced.optimizer != "auto":
        return spec.advanced.optimizer
    return "adamw_8bit" if spec.tuning_method is Method.FULL else "adamw_torch"


def _weight_bytes(model: BaseModelInfo, spec: JobSpec, precision: str) -> float:
    arch = model.architecture
    if spec.tuning_method is Method.FULL:
        # Pure bf16 training keeps 16-bit weights; fp16 and fp32 runs keep fp32 masters.
        trained = model.num_parameters * (2 if precision == "bf16" else 4)
        # Full dpo keeps a frozen copy as its reference model, in the weights' dtype; an
        # adapter's reference is its own base with the adapter switched off.
        return trained * (2 if spec.method is Method.DPO else 1)
    if spec.tuning_method is not Method.QLORA:
        return model.num_parameters * (4 if precision == "fp32" else 2)
    embeddings = arch.vocab_size * arch.hidden_size * (1 if arch.tie_word_embeddings else 2)
    quantized = model.num_parameters - embeddings
    bits = spec.quantization.bits
    if spec.quantization.quant_type in ("nf4", "fp4"):
        # bitsandbytes: an fp32 absmax per 64 weights, or 8-bit ones with double quant.
        scale_bits = 8.5 / 64 if spec.quantization.double_quant else 32 / 64
    elif bits == 8:
        scale_bits = 32 / arch.hidden_size  # LLM.int8: one fp32 scale per row
    else:
        scale_bits = 32 / 32  # torchao intN: bf16 scale and zero point per group of 32
    return quantized * (bits + scale_bits) / 8 + embeddings * 2


def _trainable_state_bytes(model: BaseModelInfo, spec: JobSpec, precision: str) -> float:
    params = trainable_parameters(model, spec)
    optimizer = resolve_optimizer(spec)
    if spec.tuning_method is Method.FULL:
        # Weights are counted with the model; here gradients and optimizer states.
        grad = 2 if precision == "bf16" else 4
        states = {"adamw_torch": 2 * grad, "adamw_8bit": 2, "adafactor": 0.1}[optimizer]
        return params * (grad + states)
    # Adapter and soft-prompt weights stay in fp32: weights, gradients, two Adam states.
    states = {"adamw_torch": 8, "adamw_8bit": 2, "adafactor": 0.1}[optimizer]
    return params * (4 + 4 + states)


def _activation_bytes(model: BaseModelInfo, spec: JobSpec, precision: str) -> float:
    arch = model.architecture
    # dpo runs the chosen and the rejected sequence of every pair in one batch.
    tokens = spec.training.batch_size * spec.sequence_length * sequences_per_example(spec)
    if spec.method is Method.PROMPT_TUNING:
        tokens += spec.training.batch_size * spec.prompt_tuning.num_virtual_tokens
    width = 4 if precision == "fp32" else 2
    # What one decoder layer keeps per token with SDPA attention (no score
    # matrix): attention inputs and outputs (~8h) and the gated MLP (~4i).
    per_layer = tokens * (8 * arch.hidden_size + 4 * arch.intermediate_size) * width
    if spec.advanced.gradient_checkpointing:
        # Layer inputs are kept; one layer at a time is recomputed in full.
        layers = arch.num_layers * tokens * arch.hidden_size * width + per_layer
    else:
        layers = arch.num_layers * per_layer
    # Logits in 16 bits plus their fp32 copy and gradient for the loss.
    logits = tokens * arch.vocab_size * (width + 8)
    return layers + logits


def estimate_memory(model: BaseModelInfo, spec: JobSpec) -> MemoryEstimate:
    """Per-GPU memory of a job.

    On several GPUs the model is replicated (DDP) when a copy fits one GPU, and
    otherwise sharded (FSDP): weights, gradients and optimizer states divided
    among the GPUs, activations per GPU unchanged.
    """
    gpu = get_gpu(spec.hardware.gpu_type)
    precision = resolve_precision(spec, gpu_bf16=gpu.bf16)
    weights = _weight_bytes(model, spec, precision)
    trainable = _trainable_state_bytes(model, spec, precision)
    activations = _activation_bytes(model, spec, precision)
    fixed = activations + CUDA_OVERHEAD_GIB * GIB
    count = spec.hardware.gpu_count
    sharded = count > 1 and (weights + trainable + fixed) / GIB > gpu.memory_gib
    if sharded:
        weights /= count
        trainable /= count
    return MemoryEstimate(
        weights_gib=round(weights / GIB, 2),
        trainable_gib=round(trainable / GIB, 2),
        activations_gib=round(activations / GIB, 2),
        overhead_gib=CUDA_OVERHEAD_GIB,
        total_gib=round((weights + trainable + fixed) / GIB, 2),
        trainable_parameters=trainable_parameters(model, spec),
        precision=precision,
        optimizer=resolve_optimizer(spec),
        sharded=sharded,
    )


class HardwareChoice(DeferredModel):
    gpu_type: Annotated[GpuType, Field(description="GPU type.")]
    gpu_count: Annotated[int, Field(description="Number of GPUs.")]
    instance_type: Annotated[str, Field(description="EC2 instance type.")]
    hourly_rate_usd: Annotated[float, Field(description="The job's hourly rate, USD.")]
    required_gib: Annotated[float, Field(description="Memory needed per GPU, GiB.")]


class SettingChange(DeferredModel):
    setting: Annotated[str, Field(description="Dotted path of the setting in the job spec.")]
    value: Annotated[object, Field(description="A value that makes the job fit.")]
    required_gib: Annotated[float, Field(description="Memory per GPU with that value, GiB.")]


class FitReport(DeferredModel):
    fits: Annotated[bool, Field(description="Whether the job fits the chosen hardware.")]
    required_gib: Annotated[float, Field(description="Memory needed per GPU, GiB.")]
    available_gib: Annotated[float, Field(description="Memory of one chosen GPU, GiB.")]
    headroom_gib: Annotated[float, Field(description="available - required; negative if short.")]
    memory: Annotated[MemoryEstimate, Field(description="Breakdown of the requirement.")]
    smallest_fitting: Annotated[
        HardwareChoice | None,
        Field(description="The cheapest GPU configuration that fits, when this one does not."),
    ] = None
    setting_changes: Annotated[
        list[SettingChange],
        Field(description="Single setting changes that make the job fit this hardware."),
    ] = Field(default_factory=list)


def _with(spec: JobSpec, **sections: dict[str, object]) -> JobSpec:
    """A copy of `spec` with some fields of some sections replaced, validated again."""
    data = spec.model_dump()
    for section, values in sections.items():
        if isinstance(data[section], dict):
            data[section].update(values)
        else:
            data[section] = values
    return JobSpec.model_validate(data)


def hardware_choices(gpu_counts: tuple[int, ...] = (1, 2, 4, 8)) -> list[tuple[GpuInfo, int]]:
    """Every (GPU, count) configuration, cheapest training rate first."""
    choices = [(gpu, n) for gpu in GPUS.values() for n in gpu_counts if n <= gpu.max_gpus]
    return sorted(choices, key=lambda choice: choice[0].training_rate(choice[1]))


def smallest_fitting_hardware(model: BaseModelInfo, spec: JobSpec) -> HardwareChoice | None:
    for gpu, count in hardware_choices():
        hardware = {"gpu_type": gpu.gpu_type, "gpu_count": count, "instance_type": None}
        try:
            candidate = _with(spec, hardware=hardware)
        except ValueError:
            continue  # e.g. bf16 asked for on a T4
        memory = estimate_memory(model, candidate)
        if memory.total_gib <= gpu.memory_gib:
            return HardwareChoice(
                gpu_type=gpu.gpu_type,
                gpu_count=count,
                instance_type=gpu.instance_for(count).instance_type,
                hourly_rate_usd=round(gpu.training_rate(count), 4),
                required_gib=memory.total_gib,
            )
    return None


def _setting_changes(model: BaseModelInfo, spec: JobSpec) -> list[SettingChange]:
    available = get_gpu(spec.hardware.gpu_type).memory_gib
    candidates: list[tuple[str, object, dict[str, dict[str, object]]]] = []
    if not spec.advanced.gradient_checkpointing:
        candidates.append(
            (
                "advanced.gradient_checkpointing",
                True,
                {"advanced": {"gradient_checkpointing": True}},
            )
        )
    for batch in range(spec.training.batch_size - 1, 0, -1):
        candidates.append(("training.batch_size", batch, {"training": {"batch_size": batch}}))
    length = spec.sequence_length // 2
    while length >= 128:
        candidates.append(
            (
                "training.max_sequence_length",
                length,
                {"training": {"max_sequence_length": length}, "dataset": {"cutoff_length": length}},
            )
        )
        length //= 2
    if spec.method is Method.DPO and spec.dpo.tuning != "qlora":
        candidates.append(("dpo.tuning", "qlora", {"dpo": {"tuning": "qlora"}}))
    elif spec.method in (Method.LORA, Method.FULL):
        candidates.append(("method", Method.QLORA.value, {"method": Method.QLORA.value}))  # type: ignore[dict-item]

    changes: list[SettingChange] = []
    seen: set[str] = set()
    for setting, value, sections in candidates:
        if setting in seen:
            continue
        try:
            memory = estimate_memory(model, _with(spec, **sections))
        except ValueError:
            continue
        if memory.total_gib <= available:
            seen.add(setting)
            changes.append(
                SettingChange(setting=setting, value=value, required_gib=memory.total_gib)
            )
    return changes


def check_fit(model: BaseModelInfo, spec: JobSpec) -> FitReport:
    """Does the job fit its hardware? If not, what would fit instead."""
    memory = estimate_memory(model, spec)
    available = get_gpu(spec.hardware.gpu_type).memory_gib
    fits = memory.total_gib <= available
    return FitReport(
        fits=fits,
        required_gib=memory.total_gib,
        available_gib=available,
        headroom_gib=round(available - memory.total_gib, 2),
        memory=memory,
        smallest_fitting=None if fits else smallest_fitting_hardware(model, spec),
        setting_changes=[] if fits else _setting_changes(model, spec),
    )


class CostEstimate(DeferredModel):
    estimated_hours: Annotated[float, Field(description="Wall-clock hours, overhead included.")]
    estimated_cost_usd: Annotated[float, Field(description="hours x hourly rate, USD.")]
    hourly_rate_usd: Annotated[
        float,
        Field(description="What the job is charged: its whole node, held alone, USD/h."),
    ]
    node_hourly_rate_usd: Annotated[
        float, Field(description="On-demand price of the whole node, USD/h.")
    ]
    compute_hours: Annotated[float, Field(description="GPU-hours: hours x gpu_count.")]
    training_hours: Annotated[float, Field(description="Hours spent in the training loop.")]
    overhead_hours: Annotated[float, Field(description="Setup, evaluation and export, hours.")]
    total_tokens: Annotated[int, Field(description="Tokens processed over all epochs.")]
    tokens_per_example: Annotated[int, Field(description="Tokens per example used.")]
    tokens_per_example_measured: Annotated[
        bool, Field(description="False when the documented default was used.")
    ]
    training_flops: Annotated[float, Field(description="FLOPs of the training loop.")]
    effective_tflops: Annotated[float, Field(description="Sustained TFLOPS assumed, all GPUs.")]
    instance_type: Annotated[str, Field(description="EC2 instance type.")]

    def at_rate(self, hourly_rate_usd: float) -> CostEstimate:
        """The same hours priced at another rate (the local runtime's own)."""
        return self.model_copy(
            update={
                "hourly_rate_usd": hourly_rate_usd,
                "node_hourly_rate_usd": hourly_rate_usd,
                "estimated_cost_usd": round(self.estimated_hours * hourly_rate_usd, 2),
            }
        )


def flops_per_token(model: BaseModelInfo, spec: JobSpec) -> float:
    """Training FLOPs per token: 2N forward; backward 2N for activation gradients,
    plus 2N for weight gradients when every weight trains; plus a forward
    recomputation with gradient checkpointing. Attention adds 4 x layers x
    (half the context) x width per pass. dpo adds the reference model's forward pass."""
    arch = model.architecture
    n = model.active_parameters
    attention = 4 * arch.num_layers * (spec.sequence_length / 2) * arch.num_attention_heads
    attention *= arch.head_dim
    forward = 2 * n + attention
    backward = 2 * forward if spec.tuning_method is Method.FULL else forward
    recompute = forward if spec.advanced.gradient_checkpointing else 0
    reference = forward if spec.method is Method.DPO else 0
    return forward + backward + recompute + reference


def estimate_cost(
    model: BaseModelInfo,
    spec: JobSpec,
    num_examples: int,
    tokens_per_example: int | None = None,
) -> CostEstimate:
    """Hours and cost of training `num_examples` examples (before the split) for the spec's epochs.

    `tokens_per_example` is the dataset's measured mean when known.
    """
    measured = tokens_per_example is not None
    # A measured preference pair already counts both answers (its prompt once).
    sequences = sequences_per_example(spec)
    per_example = min(
        tokens_per_example or DEFAULT_TOKENS_PER_EXAMPLE * sequences,
        spec.sequence_length * sequences,
    )
    total_tokens = train_examples(spec, num_examples) * per_example * spec.training.epochs

    gpu = get_gpu(spec.hardware.gpu_type)
    count = spec.hardware.gpu_count
    scaling = SCALING_PER_DOUBLING ** math.log2(count)
    efficiency = GPU_EFFICIENCY[gpu.gpu_type] * METHOD_EFFICIENCY[spec.tuning_method]
    tflops = gpu.peak_tflops * efficiency * count * scaling
    flops = flops_per_token(model, spec) * total_tokens
    training_hours = flops / (tflops * 1e12) / 3600
    overhead_hours = training_hours * OVERHEAD_FRACTION
    hours = training_hours + overhead_hours
    rate = gpu.training_rate(count)
    return CostEstimate(
        estimated_hours=round(hours, 3),
        estimated_cost_usd=round(hours * rate, 2),
        hourly_rate_usd=round(rate, 4),
        node_hourly_rate_usd=gpu.instance_for(count).hourly_usd,
        compute_hours=round(hours * count, 3),
        training_hours=round(training_hours, 3),
        overhead_hours=round(overhead_hours, 3),
        total_tokens=total_tokens,
        tokens_per_example=per_example,
        tokens_per_example_measured=measured,
        training_flops=flops,
        effective_tflops=round(tflops, 2),
        instance_type=gpu.instance_for(count).instance_type,
    )


# A job that sets no hardware.max_run_hours is capped at its estimate with a margin: twice
# the estimate (a slower node, more tokens than estimated) plus an hour.
RUN_TIME_CAP_FACTOR = 2.0
RUN_TIME_CAP_MARGIN_HOURS = 1.0


def run_time_cap_hours(max_run_hours: float | None, estimate: CostEstimate | None) -> float | None:
    """The training time after which the trainer stops the job with run_time_exceeded; None
    while there is neither a cap nor an estimate (the prepare stage's estimate sets it)."""
    if max_run_hours is not None:
        return max_run_hours
    if estimate is None:
        return None
    return round(estimate.estimated_hours * RUN_TIME_CAP_FACTOR + RUN_TIME_CAP_MARGIN_HOURS, 3)
