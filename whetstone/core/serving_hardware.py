"""Which GPUs serve a model with vLLM: 16-bit weights and KV cache headroom against GPU memory.

vLLM takes `--gpu-memory-utilization` (0.9) of each GPU; into that must go the model's
16-bit weights split over the tensor-parallel GPUs, the preallocated LoRA slots, the CUDA
context and the forward pass's workspace, and a KV cache that holds a few full-length
sequences (vLLM refuses to start when it cannot hold one). The cheapest configuration that
holds all of it is chosen, from the same catalog and rates the training estimates use.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from whetstone.core.catalog.base_models import BASE_MODELS, BASE_MODELS_BY_ID
from whetstone.core.catalog.hardware import GpuType, get_gpu
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import InvalidInputError
from whetstone.core.estimates import CUDA_OVERHEAD_GIB, GIB, hardware_choices, lora_parameters
from whetstone.core.spec import ADAPTER_METHODS, ALL_LINEAR, JobSpec, resolve_precision

# vLLM's default share of each GPU's memory.
GPU_MEMORY_UTILIZATION = 0.90
# --max-model-len: the model's own context, capped so a 128k-context 8B model is not sized
# (and billed) for contexts its fine-tuning never saw.
SERVING_CONTEXT_CAP = 8192
# Full-length sequences the KV cache must hold at once: one is vLLM's floor; two leave room
# for a second request while a first is in flight.
KV_CACHE_SEQUENCES = 2
# Activations of one scheduler step (chunked prefill) and CUDA graphs, per GPU.
SERVING_WORKSPACE_GIB = 1.0
SERVING_WEIGHT_BYTES = 2  # bf16 or fp16


class ServingHardware(DeferredModel):
    """The GPUs a model is served on, and why they suffice."""

    gpu_type: Annotated[GpuType, Field(description="GPU type.")]
    gpu_count: Annotated[int, Field(ge=1, description="GPUs (vLLM's tensor-parallel size).")]
    instance_type: Annotated[str, Field(description="EC2 instance type Karpenter would pick.")]
    hourly_rate_usd: Annotated[float, Field(description="The GPUs' share of the node, USD/h.")]
    max_model_len: Annotated[int, Field(ge=1, description="Context served (--max-model-len).")]
    weights_gib: Annotated[float, Field(description="16-bit weights, all GPUs, GiB.")]
    kv_cache_gib: Annotated[float, Field(description="KV cache headroom, all GPUs, GiB.")]
    required_gib: Annotated[float, Field(description="Memory needed per GPU, GiB.")]
    available_gib: Annotated[float, Field(description="What vLLM may take of one GPU, GiB.")]


def serving_context(model: BaseModelInfo) -> int:
    return min(model.architecture.context_length, SERVING_CONTEXT_CAP)


def kv_cache_bytes_per_token(model: BaseModelInfo) -> int:
    """Keys and values of every layer for one token, 16-bit."""
    arch = model.architecture
    return 2 * arch.num_layers * arch.num_key_value_heads * arch.head_dim * SERVING_WEIGHT_BYTES


def serving_memory_gib(model: BaseModelInfo, gpu_count: int, *, max_lora_rank: int | None) -> float:
    """Per-GPU memory vLLM needs for the model on `gpu_count` tensor-parallel GPUs."""
    weights = model.num_parameters * SERVING_WEIGHT_BYTES
    kv_cache = kv_cache_bytes_per_token(model) * serving_context(model) * KV_CACHE_SEQUENCES
    lora = 0
    if max_lora_rank is not None:  # one adapter slot at the max rank, on every linear layer
        lora = lora_parameters(model.architecture, max_lora_rank, [ALL_LINEAR])
        lora *= SERVING_WEIGHT_BYTES
    sharded = (weights + kv_cache + lora) / gpu_count
    return round(sharded / GIB + CUDA_OVERHEAD_GIB + SERVING_WORKSPACE_GIB, 2)


def choose_serving_hardware(
    model: BaseModelInfo, *, max_lora_rank: int | None = None, require_bf16: bool = False
) -> ServingHardware:
    """The cheapest (GPU type, count) that serves the model; `require_bf16` keeps a model
    trained in bf16 off GPUs that would serve it in fp16 (and answer differently)."""
    heads = model.architecture.num_attention_heads
    for gpu, count in hardware_choices():
        if (require_bf16 and not gpu.bf16) or heads % count:
            continue  # tensor parallelism splits the attention heads evenly
        required = serving_memory_gib(model, count, max_lora_rank=max_lora_rank)
        available = round(gpu.memory_gib * GPU_MEMORY_UTILIZATION, 2)
        if required <= available:
            return ServingHardware(
                gpu_type=gpu.gpu_type,
                gpu_count=count,
                instance_type=gpu.instance_for(count).instance_type,
                hourly_rate_usd=round(gpu.hourly_rate(count), 4),
                max_model_len=serving_context(model),
                weights_gib=round(model.num_parameters * SERVING_WEIGHT_BYTES / GIB, 2),
                kv_cache_gib=round(
                    kv_cache_bytes_per_token(model)
                    * serving_context(model)
                    * KV_CACHE_SEQUENCES
                    / GIB,
                    2,
                ),
                required_gib=required,
                available_gib=available,
            )
    largest = max(hardware_choices(), key=lambda c: c[0].memory_gib * c[1])
    raise InvalidInputError(
        f"{model.id} needs about "
        f"{math.ceil(serving_memory_gib(model, largest[1], max_lora_rank=max_lora_rank))} GiB "
        f"per GPU even on {largest[1]} x {largest[0].name}; no GPU configuration serves it",
        code="no_serving_hardware",
    )


def served_base_model(spec: JobSpec) -> BaseModelInfo:
    """The catalog facts of the job's base model (a catalog id or its hf:// repo): what a
    deployment of the job serves, or serves its adapter over."""
    if spec.base_model in BASE_MODELS_BY_ID:
        return BASE_MODELS_BY_ID[spec.base_model]
    repo = spec.base_model.removeprefix("hf://").lower()
    for model in BASE_MODELS:
        if model.hf_repo.lower() == repo:
            return model
    raise InvalidInputError(
        f"the aws runtime serves models derived from catalog models only, and {spec.base_model}"
        " is not one; download the model (GET .../download) and serve it yourself",
        code="base_not_servable",
    )


def job_serving_hardware(spec: JobSpec, max_lora_rank: int) -> ServingHardware:
    """The GPUs a job's model is served on: its base, an adapter slot of `max_lora_rank` when
    the method made an adapter, and bf16 GPUs when it trained in bf16."""
    trained_bf16 = resolve_precision(spec, gpu_bf16=get_gpu(spec.hardware.gpu_type).bf16)
    return choose_serving_hardware(
        served_base_model(spec),
        max_lora_rank=max_lora_rank if spec.tuning_method in ADAPTER_METHODS else None,
        require_bf16=trained_bf16 == "bf16",
    )
