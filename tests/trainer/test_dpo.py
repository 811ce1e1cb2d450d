"""Preference tuning (dpo): the loss, the paired batches, and a run whose margin rises."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from support.tiny_run import write_chat_splits
from trainer.data import (
    IGNORE_INDEX,
    DataError,
    ExampleEncoder,
    PaddingCollator,
    ensure_chat_ready,
)
from trainer.dpo import EVALUATION_KEYS, PreferenceCollator, answer_logps, dpo_terms, pair_sums

from whetstone.core.datasets.records import Example

_write_pairs = partial(write_chat_splits, seed=7, kind="preference")


def _pair(start: int) -> dict[str, Any]:
    """A polite count on from a number is preferred to a rude count down from it."""
    return {
        "kind": "preference",
        "messages": [{"role": "user", "content": f"count from {start}"}],
        "chosen": "gladly: " + " ".join(str(start + i) for i in range(5)),
        "rejected": "go away: " + " ".join(str(start - i) for i in range(5)),
    }


@pytest.fixture(scope="module")
def preference_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    starts = list(range(10, 250))
    random.Random(1).shuffle(starts)
    return _write_pairs(
        tmp_path_factory.mktemp("preference-data"),
        {
            "train": [_pair(s) for s in starts[:192]],
            "validation": [_pair(s) for s in starts[192:208]],
            "test": [_pair(s) for s in starts[208:216]],
        },
    )


@pytest.fixture
def dpo_plan(make_plan: Any, tiny_model_dir: Path, preference_data: Path, tmp_path: Path) -> Any:
    """make_plan for a dpo job of the tiny model on the preference splits."""

    def plan(**spec: Any) -> Any:
        return make_plan(tiny_model_dir, preference_data, tmp_path / "out", method="dpo", **spec)

    return plan


def test_the_loss_is_log_2_with_no_margin_and_falls_as_the_chosen_answer_gains() -> None:
    # Given a policy equal to its reference, then one that prefers the chosen answers more
    reference = torch.tensor([-5.0, -6.0, -5.0, -6.0])  # two chosen rows, then two rejected
    # When the DPO terms are computed
    even, rewards = dpo_terms(reference.clone(), reference, beta=0.1)
    better, better_rewards = dpo_terms(reference + torch.tensor([1.0, 1.0, 0, 0]), reference, 0.1)
    # Then no margin costs log 2, and a margin for the chosen side lowers the loss
    assert even.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert rewards["reward_margin"].item() == 0.0
    assert better.item() < even.item()
    assert better_rewards["reward_margin"].item() == pytest.approx(0.1)
    assert better_rewards["reward_accuracy"].item() == 1.0


def test_held_out_pairs_count_the_preferences_of_the_policy_and_of_the_reference() -> None:
    # Given three pairs: the policy prefers the chosen answer of the first two, the
    # reference of the first only, and the policy gained on the chosen side of the second
    policy = torch.tensor([-2.0, -3.0, -5.0, -4.0, -4.0, -3.0])  # chosen rows, then rejected
    reference = torch.tensor([-2.0, -4.0, -5.0, -4.0, -3.0, -3.0])
    # When their sums are taken
    sums = dict(zip(EVALUATION_KEYS, pair_sums(policy, reference, beta=0.5).tolist(), strict=True))
    # Then the margins add up (0, 0.5 x (1 - (-1)), 0) and each preference is counted
    assert sums == {
        "reward_margin": pytest.approx(1.0),
        "reward_accuracy": 1.0,
        "preference_accuracy": 2.0,
        "base_preference_accuracy": 1.0,
    }


def test_answer_log_probabilities_sum_the_labelled_tokens_only() -> None:
    # Given uniform logits over 4 tokens and a row with two labelled tokens
    logits = torch.zeros(1, 4, 4)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2, 3]])
    # When the answer's log-probability is taken
    logps = answer_logps(logits, labels)
    # Then it is two tokens at log(1/4) each
    assert logps.item() == pytest.approx(2 * torch.log(torch.tensor(0.25)).item())


def test_a_pair_encodes_both_answers_after_one_prompt_with_the_prompt_masked(
    tiny_model_dir: Path,
) -> None:
    from transformers import AutoTokenizer

    # Given the tiny model's tokenizer and a preference example
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ensure_chat_ready(tokenizer)
    encoder = ExampleEncoder(tokenizer, cutoff=128, loss_on="all")
    # When it is encoded and collated
    features = encoder.encode(Example.model_validate(_pair(40)))
    assert features is not None
    batch = PreferenceCollator(PaddingCollator(pad_id=0, multiple_of=1))([features])
    # Then the batch holds the chosen then the rejected sequence, labels on the answers only
    assert batch["input_ids"].shape[0] == 2
    for row, answer in zip(batch["labels"], ("gladly: 40 41", "go away: 40 39"), strict=True):
        labelled = tokenizer.decode([t for t in row.tolist() if t != IGNORE_INDEX])
        assert answer in labelled and "count from" not in labelled


def test_dpo_on_chat_splits_stops_with_a_data_error(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a dpo plan on splits of chat examples
    plan = counting_plan(method="dpo")
    # When it runs
    # Then it stops before training, saying dpo needs preference pairs
    with pytest.raises(DataError, match="preference pairs"):
        run_job(plan, tmp_path / "work")


@pytest.mark.parametrize("tuning", ["lora", "full"])
def test_the_reward_margin_rises_on_a_synthetic_preference_task(
    tuning: str, dpo_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a dpo job preferring a polite count up to a rude count down, on the tiny model
    plan = dpo_plan(
        dpo={"beta": 0.5, "tuning": tuning},
        training={"learning_rate": 1e-2 if tuning == "lora" else 1e-3},
        options={"max_steps": 10},
    )
    # When it trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then every report carries the rewards, and the margin and accuracy rise as it learns
    reports = [m for m in sink.of("metrics") if m.loss is not None]
    assert result.outcome == "done" and result.global_step == 10
    assert all(m.reward_margin is not None for m in reports)
    first, last = reports[0], reports[-3:]
    assert first.reward_margin == pytest.approx(0.0, abs=0.05)
    assert min(m.reward_margin for m in last) > first.reward_margin + 0.5
    assert sum(m.reward_accuracy for m in last) / len(last) > 0.9
    assert last[-1].rewards_chosen > last[-1].rewards_rejected
    # And the results hold the held-out pairs' preferences, the tuned model's above the base's
    held_out = {key: result.results[f"test_{key}"] for key in EVALUATION_KEYS}
    assert held_out["reward_accuracy"] > 0.9 and held_out["reward_margin"] > 0.5
    assert held_out["preference_accuracy"] > held_out["base_preference_accuracy"]


def test_dpo_through_qlora_trains_a_quantized_base_and_saves_an_adapter(
    dpo_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a dpo job tuning through qlora (torchao int4, which runs on a CPU)
    plan = dpo_plan(dpo={"tuning": "qlora"}, quantization={"bits": 4, "quant_type": "int4"})
    # When it trains its 3 steps
    result, sink = run_job(plan, tmp_path / "work")
    # Then the base was quantized, the rewards were reported and an adapter was saved
    logs = [entry.message for entry in sink.of("log")]
    assert any("quantized with torchao int4" in message for message in logs)
    assert all(m.reward_accuracy is not None for m in sink.of("metrics") if m.loss is not None)
    assert result.outcome == "done" and result.results["artifact_kind"] == "adapter"
