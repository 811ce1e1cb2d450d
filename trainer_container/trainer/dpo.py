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

Evaluation adds, beside the loss, the share of held-out pairs whose chosen answer the tuned
model finds more likely than the rejected one (`preference_accuracy`), the same for the
reference (`base_preference_accuracy`), and the reward margin and accuracy over all pairs.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.trainer_utils import EvalLoopOutput

from whetstone.core.datasets.records import ExampleKind
from whetstone.core.spec import Method

from .data import IGNORE_INDEX, DataError, Features, PaddingCollator
from .loop import WhetstoneTrainer

REWARD_KEYS = ("rewards_chosen", "rewards_rejected", "reward_margin", "reward_accuracy")
# Sums over the held-out pairs of an evaluation, divided by their count at its end.
EVALUATION_KEYS = (
    "reward_margin",
    "reward_accuracy",
    "preference_accuracy",
    "base_preference_accuracy",
)


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


def pair_sums(policy: torch.Tensor, reference: torch.Tensor, beta: float) -> torch.Tensor:
    """Over a batch's pairs (rows chosen then rejected), the sums of `EVALUATION_KEYS`, in
    that order: the reward margin, the pairs whose chosen reward beats the rejected one, and
    the pairs whose chosen answer is the likelier under the policy and under the reference."""
    policy_chosen, policy_rejected = policy.detach().chunk(2)
    reference_chosen, reference_rejected = reference.chunk(2)
    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return torch.stack(
        [
            margin.sum(),
            (margin > 0).float().sum(),
            (policy_chosen > policy_rejected).float().sum(),
            (reference_chosen > reference_rejected).float().sum(),
        ]
    )


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
        self._evaluation_sums = torch.zeros(len(EVALUATION_KEYS))
        self._evaluation_pairs = 0

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
        else:
            self._evaluation_sums += pair_sums(policy, reference, self.beta).cpu()
            self._evaluation_pairs += len(policy) // 2
        return (loss, outputs) if return_outputs else loss

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> EvalLoopOutput:
        self._evaluation_sums.zero_()
        self._evaluation_pairs = 0
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", "eval")
        totals = self.accelerator.reduce(
            torch.cat([self._evaluation_sums, torch.tensor([float(self._evaluation_pairs)])]).to(
                self.accelerator.device
            ),
            reduction="sum",
        ).cpu()
        if totals[-1] > 0:
            for key, total in zip(EVALUATION_KEYS, totals[:-1].tolist(), strict=True):
                output.metrics[f"{prefix}_{key}"] = total / float(totals[-1])
        return output

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
