"""Chat template rendering, loss masks, truncation, grouping and packing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from trainer.data import (
    IGNORE_INDEX,
    ExampleEncoder,
    LengthGroupedSampler,
    PackingCollator,
    PaddingCollator,
    ensure_chat_ready,
)

from whetstone.core.datasets.records import Example


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _chat(*turns: tuple[str, str] | tuple[str, str, float]) -> Example:
    messages = [
        {"role": t[0], "content": t[1], **({"weight": t[2]} if len(t) == 3 else {})} for t in turns
    ]
    return Example.model_validate({"kind": "chat", "messages": messages})


def _trained_text(tokenizer: Any, features: dict[str, list[int]]) -> str:
    return str(tokenizer.decode([t for t in features["labels"] if t != IGNORE_INDEX]))


def test_loss_covers_assistant_turns_and_their_end_markers_only(tokenizer: Any) -> None:
    # Given a multi-turn conversation
    example = _chat(
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "count"),
        ("assistant", "1 2 3"),
    )
    # When it is encoded for assistant-only loss
    features = ExampleEncoder(tokenizer, cutoff=512).encode(example)
    # Then only the assistant replies, each closed by its end-of-turn marker, are trained
    assert features is not None
    assert _trained_text(tokenizer, features) == "hello<|im_end|>\n1 2 3<|im_end|>\n"


def test_assistant_turn_with_weight_zero_is_not_trained(tokenizer: Any) -> None:
    example = _chat(
        ("user", "a"), ("assistant", "skip me", 0.0), ("user", "b"), ("assistant", "keep")
    )
    features = ExampleEncoder(tokenizer, cutoff=512).encode(example)
    assert features is not None
    assert _trained_text(tokenizer, features) == "keep<|im_end|>\n"


def test_loss_on_all_trains_every_token(tokenizer: Any) -> None:
    example = _chat(("user", "hi"), ("assistant", "hello"))
    features = ExampleEncoder(tokenizer, cutoff=512, loss_on="all").encode(example)
    assert features is not None and features["labels"] == features["input_ids"]


def test_examples_are_cut_at_the_cutoff_and_dropped_without_trained_tokens(
    tokenizer: Any,
) -> None:
    encoder = ExampleEncoder(tokenizer, cutoff=16)
    long_answer = _chat(("user", "go"), ("assistant", "word " * 100))
    long_prompt = _chat(("user", "word " * 100), ("assistant", "late answer"))
    kept = encoder.encode(long_answer)
    assert kept is not None and len(kept["input_ids"]) == 16 == len(kept["labels"])
    assert encoder.encode(long_prompt) is None and encoder.dropped == 1


def test_completion_and_text_examples_are_encoded(tokenizer: Any) -> None:
    encoder = ExampleEncoder(tokenizer, cutoff=512)
    completion = Example(kind="completion", prompt="2+2=", completion="4")
    text = Example(kind="text", text="plain words")
    completion_features = encoder.encode(completion)
    text_features = encoder.encode(text)
    assert completion_features is not None and text_features is not None
    assert _trained_text(tokenizer, completion_features) == "4<|im_end|>\n"
    assert text_features["input_ids"][-1] == tokenizer.eos_token_id
    assert text_features["labels"] == text_features["input_ids"]


def test_tokenizer_without_chat_template_gets_the_fallback(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    changes = ensure_chat_ready(tokenizer)
    features = ExampleEncoder(tokenizer, cutoff=512).encode(
        _chat(("user", "q"), ("assistant", "a"))
    )
    assert any("fallback" in change for change in changes)
    assert features is not None
    assert _trained_text(tokenizer, features) == f"a{tokenizer.eos_token}\n"


def test_packed_batch_gives_the_same_logits_as_separate_sequences(tiny_model_dir: Path) -> None:
    # Given two sequences of different lengths
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    rows = [
        {"input_ids": [5, 9, 13, 40, 77], "labels": [5, 9, 13, 40, 77]},
        {"input_ids": [8, 3, 21], "labels": [8, 3, 21]},
    ]
    # When they are packed into one row
    packed = PackingCollator()(rows)
    with torch.no_grad():
        packed_logits = model(
            input_ids=packed["input_ids"],
            position_ids=packed["position_ids"],
            use_cache=False,  # as in training: with a cache, boundaries are not detected
        ).logits
        separate = [model(input_ids=torch.tensor([r["input_ids"]])).logits for r in rows]
    # Then attention never crosses the boundary, and the second's first label is masked
    torch.testing.assert_close(packed_logits, torch.cat(separate, dim=1), atol=1e-5, rtol=1e-4)
    assert packed["labels"][0, 5].item() == IGNORE_INDEX


def test_padding_collator_masks_padding_in_labels_and_attention() -> None:
    batch = PaddingCollator(pad_id=0, multiple_of=1)(
        [{"input_ids": [4, 5, 6], "labels": [-100, 5, 6]}, {"input_ids": [7], "labels": [7]}]
    )
    assert batch["input_ids"].tolist() == [[4, 5, 6], [7, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 5, 6], [7, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_length_grouped_order_is_fixed_by_seed_and_epoch_and_cuts_padding() -> None:
    # Given lengths that spread widely
    generator = torch.Generator().manual_seed(0)
    lengths = (torch.rand(2000, generator=generator) ** 4 * 500 + 5).int().tolist()
    sampler = LengthGroupedSampler(lengths, batch_size=8, seed=1)

    # When the order is drawn twice for epoch 0 and once for epoch 1
    first, again = list(sampler), list(sampler)
    sampler.set_epoch(1)
    other_epoch = list(sampler)

    # Then the same epoch replays exactly, another epoch differs, all examples appear once
    assert first == again and first != other_epoch
    assert sorted(first) == list(range(2000))

    def padded_tokens(order: list[int]) -> int:
        batches = [order[i : i + 8] for i in range(0, len(order), 8)]
        return sum(max(lengths[j] for j in b) * len(b) for b in batches)

    random_order = torch.randperm(2000, generator=generator).tolist()
    # and grouped batches carry far fewer padded tokens than random ones
    assert padded_tokens(first) < 0.6 * padded_tokens(random_order)
    assert padded_tokens(first) < 1.1 * sum(lengths)
