"""The transformers Trainer with Whetstone's sampler and a stop on non-finite loss."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from .data import LengthGroupedSampler
from .efficiency import EfficiencyMeter


class NonFiniteLossError(Exception):
    """The training loss became NaN or infinite."""


class WhetstoneTrainer(Trainer):
    """A Trainer whose length grouping is replayable on resume, that counts the batches it
    trains on (for the efficiency metrics) and stops on NaN/inf."""

    def __init__(
        self,
        *args: Any,
        group_lengths: list[int] | None = None,
        efficiency: EfficiencyMeter | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._group_lengths = group_lengths
        self._efficiency = efficiency

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        if self._group_lengths is None:
            return super()._get_train_sampler(train_dataset)
        return LengthGroupedSampler(
            self._group_lengths, self.args.per_device_train_batch_size, seed=self.args.seed
        )

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor | Any],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        if self._efficiency is not None:
            self._efficiency.count(inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1}; "
                "lower the learning rate, raise warmup_steps, or use bf16/fp32 instead of fp16"
            )
        return loss
