"""Direct Preference Optimization, written into our Trainer rather than taken from TRL.

TRL's DPOTrainer would bring its own Trainer subclass, collators and pinned versions of
transformers and peft; the loss itself is a few lines (Rafailov et al., 2023):

    loss = -log sigmoid(beta * ((log pi(chosen) - log ref(chosen))
                                - (log pi(rejected) - log ref(rejected))))

where log pi(y) sums the answer's token log-probabilities under the model being trained and
log ref(y) under the reference model, the model before training: for an adapter (lora,
qlora) the same model with its adapter switched off, for full tuning a frozen copy. Each
batch runs its chosen and rejected sequences together (2 x batch rows); the reference
log-probabilities are computed for the same batch without gradients.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from whetstone.core.datasets.records import ExampleKind
from whetstone.core.spec import Method

from .data import IGNORE_INDEX, DataError, Features, PaddingCollator
from .loop import WhetstoneTrainer

REWARD_KEYS = ("rewards_chosen", "rewards_rejected", "reward_margin", "reward_accuracy")


@dataclass
class PreferenceCollator:
    """Pads the chosen sequences of a batch, then its rejected ones, into one batch of
    2 x rows: the first half chosen, the second half rejected."""

    padding: PaddingCollator

    def __call__(self, rows: list[Features]) -> dict[str, torch.Tensor]:
        chosen = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows]
        rejected = [
            {"input_ids": r["rejected_input_ids"], "labels": r["rejected_labels"]} for r in rows
        ]
        return self.padding([*chosen, *rejected])


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row, the summed log-probability of its labelled tokens (the answer)."""
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = torch.gather(logps, 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def dpo_terms(
    policy: torch.Tensor, reference: torch.Tensor, beta: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The mean DPO loss of a batch whose rows are chosen then rejected, and its rewards."""
    policy_chosen, policy_rejected = policy.chunk(2)
    reference_chosen, reference_rejected = reference.chunk(2)
    chosen = beta * (policy_chosen - reference_chosen)
    rejected = beta * (policy_rejected - reference_rejected)
    loss = -F.logsigmoid(chosen - rejected).mean()
    rewards = {
        "rewards_chosen": chosen.detach().mean(),
        "rewards_rejected": rejected.detach().mean(),
        "reward_margin": (chosen - rejected).detach().mean(),
        "reward_accuracy": (chosen > rejected).float().detach().mean(),
    }
    return loss, rewards


class DpoTrainer(WhetstoneTrainer):
    """The Trainer with the DPO loss; training logs carry the rewards averaged since the
    previous log, like the loss."""

    def __init__(self, *args: Any, beta: float, trains_adapter: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beta = beta
        # The loss is a mean over pairs: the Trainer divides it across accumulation steps.
        self.loss_is_scaled_for_ga = False
        self.reference: torch.nn.Module | None = None
        if not trains_adapter:
            self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        self._sums: dict[str, float] = dict.fromkeys(REWARD_KEYS, 0.0)
        self._batches = 0

    def _reference_logps(self, model: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        reference = self.reference
        switch_off: AbstractContextManager[Any] = nullcontext()
        if reference is None:
            reference = model
            switch_off = self.accelerator.unwrap_model(model).disable_adapter()
        with torch.no_grad(), switch_off:
            logits = reference(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            ).logits
            return answer_logps(logits, inputs["labels"])

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        reference = self._reference_logps(model, inputs)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        policy = answer_logps(outputs.logits, inputs["labels"])
        loss, rewards = dpo_terms(policy, reference, self.beta)
        if model.training:
            for key, value in rewards.items():
                self._sums[key] += float(value)
            self._batches += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._batches:
            logs.update({key: total / self._batches for key, total in self._sums.items()})
            self._sums = dict.fromkeys(REWARD_KEYS, 0.0)
            self._batches = 0
        super().log(logs, start_time)


def require_data_for_method(kind: ExampleKind, method: Method) -> None:
    """DataError unless the split holds preference pairs exactly when the method is dpo
    (validation refuses the mix first; this guards a plan run on other splits)."""
    if (kind is ExampleKind.PREFERENCE) != (method is Method.DPO):
        raise DataError(
            f"method {method} cannot train on {kind} examples: dpo needs preference pairs "
            "and only dpo takes them"
        )
