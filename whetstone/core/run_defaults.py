"""Defaults that follow the run: warmup from the run's length, dataloader workers from the
machine's cores, and the spec warning when a warmup set by hand outlasts the run.

product.md gives fixed defaults (100 warmup steps, 4 workers); they stay as ceilings, because
a fixed warmup longer than a small run keeps its learning rate below the peak to the end, and
more workers than cores floods the log with PyTorch's warning.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.spec import JobSpec, TrainingParams

WARMUP_RATIO = 0.1  # share of the optimizer steps spent warming up when warmup_steps is unset
MAX_DERIVED_WARMUP = 100  # product.md's fixed default, now the derived warmup's ceiling
MAX_DERIVED_WORKERS = 4  # product.md's fixed default, now the derived workers' ceiling
WARMUP_LONGER_THAN_RUN = "warmup_longer_than_run"


class SpecWarning(DeferredModel):
    """A setting the job accepts but that may not do what was meant."""

    model_config = ConfigDict(frozen=True)

    code: Annotated[str, Field(description="Stable machine-readable code.")]
    message: Annotated[str, Field(description="What will happen and what to do about it.")]


def steps_per_epoch(train_examples: int, training: TrainingParams, world_size: int = 1) -> int:
    """Optimizer steps in one pass over `train_examples` examples."""
    batches = math.ceil(train_examples / (training.batch_size * world_size))
    return max(1, math.ceil(batches / training.gradient_accumulation_steps))


def train_examples(spec: JobSpec, num_examples: int) -> int:
    """The examples of a dataset of `num_examples` that the spec trains on: max_samples, then
    the train split's share."""
    if spec.dataset.max_samples is not None:
        num_examples = min(num_examples, spec.dataset.max_samples)
    return max(1, math.floor(num_examples * spec.dataset.split.train / 100))


def run_steps(spec: JobSpec, num_examples: int) -> int:
    """Optimizer steps of the whole run over a dataset of `num_examples` examples, one
    process per GPU."""
    per_epoch = steps_per_epoch(
        train_examples(spec, num_examples), spec.training, spec.hardware.gpu_count
    )
    return per_epoch * spec.training.epochs


def warmup_steps(spec: JobSpec, total_steps: int) -> int:
    """The spec's warmup, or when unset, WARMUP_RATIO of the run's optimizer steps (rounded
    up) capped at MAX_DERIVED_WARMUP."""
    if spec.training.warmup_steps is not None:
        return spec.training.warmup_steps
    return min(MAX_DERIVED_WARMUP, math.ceil(WARMUP_RATIO * total_steps))


def dataloader_workers(spec: JobSpec, cpus: int) -> int:
    """The spec's workers, or when unset, one fewer than the `cpus` the process may use (the
    main process needs one) capped at MAX_DERIVED_WORKERS."""
    if spec.advanced.dataloader_workers is not None:
        return spec.advanced.dataloader_workers
    return max(0, min(MAX_DERIVED_WORKERS, cpus - 1))


def spec_warnings(spec: JobSpec, total_steps: int) -> list[SpecWarning]:
    """What in the spec will not do what was meant, for a run of `total_steps` optimizer
    steps."""
    warmup = spec.training.warmup_steps
    if warmup is None or warmup <= total_steps:
        return []
    return [
        SpecWarning(
            code=WARMUP_LONGER_THAN_RUN,
            message=f"warmup_steps {warmup} is longer than the run's {total_steps} optimizer "
            f"steps: the learning rate never reaches {spec.training.learning_rate:g}; lower "
            "warmup_steps, or leave it unset to derive it from the run's length",
        )
    ]
