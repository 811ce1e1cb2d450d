"""How well a run uses its hardware: useful tokens/s, padding waste and model FLOPs
utilization (MFU), counted from the batches the trainer steps on.

Model FLOPs per sequence of n tokens (PaLM's accounting, appendix B; docs/trainer.md):
    weights:   (6 N) n when every weight trains; (4 N + 6 T) n when the base is frozen
    attention: 12 x layers x query width x n^2
N is what a token is multiplied by: the active parameters but the input embedding (a lookup);
T the trainable parameters (LoRA's A and B, a soft prompt). A frozen base skips the weight
gradients (2 N) but not the activation gradients, so it costs 4 N, not 2 N. dpo adds its
reference model's forward pass (2 N n + 4 x layers x query width x n^2). Recomputation under
activation checkpointing is not model FLOPs, and is left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch

from whetstone.core.catalog.hardware import device_peak_tflops
from whetstone.core.catalog.resolve import facts_from_hf_config
from whetstone.core.spec import JobSpec, Method

from .events import EventEmitter

# The CPU's peak is the best of a few square fp32 matmuls of this size: large enough for the
# BLAS to reach its stride, small enough (~2 GFLOP each) to cost a fraction of a second.
_PEAK_MATMUL_SIZE = 1024
_PEAK_MATMUL_RUNS = 5


@dataclass(frozen=True)
class BatchTokens:
    """What one batch holds: tokens trained, token slots, and the sum of its sequences'
    squared lengths (attention grows with it)."""

    useful: int
    slots: int
    squared_lengths: int


def batch_tokens(inputs: Mapping[str, Any]) -> BatchTokens:
    """Count a collated batch: a padded one by its attention mask, a packed one (no mask, one
    row of examples whose position ids restart at 0) by its position ids."""
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    positions = inputs.get("position_ids")
    if mask is not None:
        lengths = mask.sum(dim=-1)
    elif positions is not None:
        flat = positions.flatten()
        starts = (flat == 0).nonzero().flatten()
        lengths = torch.diff(starts, append=torch.tensor([flat.numel()], device=flat.device))
    else:
        lengths = torch.full((ids.shape[0],), ids.shape[-1])
    return BatchTokens(
        useful=int(lengths.sum()),
        slots=int(ids.numel()),
        squared_lengths=int((lengths.long() ** 2).sum()),
    )


@dataclass(frozen=True)
class FlopsModel:
    """Model FLOPs of trained tokens (the module docstring's formula)."""

    per_token: float
    per_squared_length: float

    def of(self, batch: BatchTokens) -> float:
        return self.per_token * batch.useful + self.per_squared_length * batch.squared_lengths


def flops_model(config: Mapping[str, Any], spec: JobSpec, trainable: int) -> FlopsModel:
    """The FLOPs model of a job from its model's config.json; ValueError when the config
    lacks a fact it needs."""
    info = facts_from_hf_config(config, model_id="the trained model")
    arch = info.architecture
    lookup = 0 if arch.tie_word_embeddings else arch.vocab_size * arch.hidden_size
    multiplied = info.active_parameters - lookup
    attention = arch.num_layers * arch.num_attention_heads * arch.head_dim
    if spec.tuning_method is Method.FULL:
        per_token = 6.0 * multiplied
    else:
        per_token = 4.0 * multiplied + 6.0 * trainable
    per_squared = 12.0 * attention
    if spec.method is Method.DPO:
        per_token += 2.0 * multiplied
        per_squared += 4.0 * attention
    return FlopsModel(per_token, per_squared)


@cache
def measured_cpu_peak_flops() -> float:
    """FLOP/s of this process's fastest fp32 square matmul, timed once per process."""
    a = torch.randn(_PEAK_MATMUL_SIZE, _PEAK_MATMUL_SIZE)
    b = torch.randn(_PEAK_MATMUL_SIZE, _PEAK_MATMUL_SIZE)
    torch.mm(a, b)  # the first call pays for thread start-up and allocation
    best = math.inf
    for _ in range(_PEAK_MATMUL_RUNS):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * _PEAK_MATMUL_SIZE**3 / max(best, 1e-9)


@dataclass(frozen=True)
class Peak:
    """A device's peak FLOP/s and where the figure comes from."""

    flops: float | None
    source: str


def device_peak(on_gpu: bool) -> Peak:
    """The peak of the device this process trains on: a GPU's from the hardware catalog, a
    CPU's measured (once per process)."""
    if not on_gpu:
        return Peak(measured_cpu_peak_flops(), "cpu: fp32 matmul measured at start")
    name = torch.cuda.get_device_name(0)
    tflops = device_peak_tflops(name)
    if tflops is None:
        return Peak(None, f"{name}: not in the hardware catalog")
    return Peak(tflops * 1e12, f"{name}: dense 16-bit peak from the hardware catalog")


@dataclass
class EfficiencyMeter:
    """Counts the batches of this process since training began. Throughput is this rank's
    times the ranks (data parallel ranks train alike); MFU is this rank's over one device."""

    flops: FlopsModel | None
    peak: Peak
    world_size: int = 1
    useful: int = field(default=0, init=False)
    slots: int = field(default=0, init=False)
    model_flops: float = field(default=0.0, init=False)
    latest: dict[str, float | None] = field(default_factory=dict, init=False)

    def reset(self) -> None:
        """Start counting afresh (at the start of training, a resumed run's too)."""
        self.useful, self.slots, self.model_flops = 0, 0, 0.0

    def count(self, inputs: Mapping[str, Any]) -> None:
        """Add one batch the trainer steps on."""
        batch = batch_tokens(inputs)
        self.useful += batch.useful
        self.slots += batch.slots
        if self.flops is not None:
            self.model_flops += self.flops.of(batch)

    def rates(self, elapsed: float) -> dict[str, float | None]:
        """Useful tokens/s, padding waste % and MFU over `elapsed` seconds of training."""
        if not self.slots:
            return {}
        mfu = None
        if self.flops is not None and self.peak.flops:
            # A CPU peak timed in a busy moment can sit below what training later gets: the
            # share is capped at the whole.
            mfu = min(1.0, self.model_flops / elapsed / self.peak.flops)
        self.latest = {
            "useful_tokens_per_second": self.useful * self.world_size / elapsed,
            "padding_waste_pct": 100.0 * (self.slots - self.useful) / self.slots,
            "mfu": mfu,
        }
        return self.latest

    def report(self) -> dict[str, Any]:
        """The run's latest rates with how MFU was reckoned, for results and the manifest."""
        return {
            **self.latest,
            "model_flops_per_useful_token": self.model_flops / self.useful if self.useful else None,
            "peak_flops": self.peak.flops,
            "peak_source": self.peak.source,
        }


def efficiency_meter(
    model: Any, spec: JobSpec, *, on_gpu: bool, world_size: int, emitter: EventEmitter
) -> EfficiencyMeter:
    """The meter of a run, its FLOPs model from the loaded model's config; logs both."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    flops: FlopsModel | None
    try:
        flops = flops_model(base.config.to_dict(), spec, trainable)
    except ValueError as error:
        flops = None
        emitter.log("warning", f"no mfu for this model: {error}")
    peak = device_peak(on_gpu)
    emitter.log(
        "info",
        "efficiency reckoning",
        flops_per_token=flops.per_token if flops else None,
        flops_per_squared_length=flops.per_squared_length if flops else None,
        peak_flops=peak.flops,
        peak_source=peak.source,
    )
    return EfficiencyMeter(flops, peak, world_size)
