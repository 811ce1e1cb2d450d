"""Packed rows with per-example SDPA: the same loss, logits and gradients as separate rows."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch
from trainer import attention
from trainer.attention import PACKED_SDPA, register_packed_attention
from trainer.data import IGNORE_INDEX, ExampleEncoder, PackingCollator, PaddingCollator

from whetstone.core.datasets.records import Example

ROWS = [
    {"input_ids": [5, 9, 13, 40, 77, 81, 90], "labels": [-100, -100, 13, 40, 77, 81, 90]},
    {"input_ids": [8, 3, 21], "labels": [-100, 3, 21]},
    {"input_ids": [30, 31, 32, 33, 34], "labels": [-100, -100, -100, 33, 34]},
]


def _lora_model(model_dir: Path, attn_implementation: str) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attn_implementation)
    base.config.use_cache = False
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(base, config)


def _lora_grads(model: Any) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters() if p.requires_grad]


def _assert_packed_matches_padded(model_dir: Path, rows: list[dict[str, list[int]]]) -> None:
    # Given the same LoRA model twice: per-example SDPA for packed rows, plain SDPA
    packed_model = _lora_model(model_dir, register_packed_attention())
    padded_model = _lora_model(model_dir, "sdpa")

    # When one batch is packed into a single row for the first and padded for the second
    packed = PackingCollator()(rows)
    packed_out = packed_model(**packed)
    packed_out.loss.backward()
    padded = PaddingCollator(pad_id=0, multiple_of=1)(rows)
    padded_out = padded_model(**padded)
    padded_out.loss.backward()

    # Then each example's logits, the loss and every LoRA gradient are the same
    mask = padded["attention_mask"].bool()
    torch.testing.assert_close(packed_out.logits[0], padded_out.logits[mask], atol=1e-5, rtol=1e-4)
    assert packed_out.loss.item() == pytest.approx(padded_out.loss.item(), rel=1e-5)
    for packed_grad, padded_grad in zip(
        _lora_grads(packed_model), _lora_grads(padded_model), strict=True
    ):
        torch.testing.assert_close(packed_grad, padded_grad, atol=1e-6, rtol=1e-4)


def test_packed_row_gives_the_loss_logits_and_gradients_of_the_separate_examples(
    tiny_model_dir: Path,
) -> None:
    _assert_packed_matches_padded(tiny_model_dir, ROWS)


def test_long_examples_of_a_packed_row_train_the_same_through_the_chunked_attention(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given examples long enough for the chunked attention, one of them ending mid-block
    rng = random.Random(0)
    rows = []
    for length in (attention.CHUNKED_MIN_TOKENS + 2 * attention.CHUNK + 7, 40, 270):
        ids = [rng.randrange(3, 500) for _ in range(length)]
        rows.append({"input_ids": ids, "labels": [-100, *ids[1:]]})
    applied = []
    chunked = attention._ChunkedCausalAttention.apply

    def counted(*args: Any) -> Any:
        applied.append(args[0].shape[1])
        return chunked(*args)

    monkeypatch.setattr(attention._ChunkedCausalAttention, "apply", counted)

    # Then packed, they give what padded rows give through SDPA
    _assert_packed_matches_padded(tiny_model_dir, rows)
    # and the two long ones went through the chunked attention in both layers
    assert applied == [len(rows[0]["input_ids"]), 270] * 2


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_the_chunked_attention_is_causal_sdpa(kv_heads: int) -> None:
    # Given one example's queries, keys and values as transformers hands them over
    torch.manual_seed(0)
    tokens, heads, dim = 3 * attention.CHUNK + 5, 4, 16
    q = torch.randn(1, tokens, heads, dim).transpose(1, 2).requires_grad_()
    k = torch.randn(1, tokens, kv_heads, dim).transpose(1, 2).requires_grad_()
    v = torch.randn(1, tokens, kv_heads, dim).transpose(1, 2).requires_grad_()
    grad = torch.randn(1, tokens, heads, dim)

    # When it goes through the chunked attention and through SDPA
    chunked = attention._ChunkedCausalAttention.apply(q[0], k[0], v[0], 0.3)
    chunked.backward(grad[0])
    chunked_grads = [t.grad for t in (q, k, v)]
    q.grad = k.grad = v.grad = None
    sdpa = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True, scale=0.3, enable_gqa=True
    ).transpose(1, 2)
    sdpa.backward(grad)

    # Then the outputs and every gradient are the same
    torch.testing.assert_close(chunked, sdpa[0], atol=1e-5, rtol=1e-4)
    for mine, theirs in zip(chunked_grads, (q.grad, k.grad, v.grad), strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)


def test_packed_attention_keeps_examples_apart_under_a_sliding_window(tmp_path: Path) -> None:
    # Given a model whose attention is limited to a window shorter than the examples
    from transformers import AutoModelForCausalLM, MistralConfig

    config = MistralConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=3,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    register_packed_attention()
    packed_model = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation=PACKED_SDPA)
    separate_model = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager")

    # When a packed row and each example alone go through it
    packed = PackingCollator()(ROWS)
    with torch.no_grad():
        packed_logits = packed_model(**packed, use_cache=False).logits
        separate = [
            separate_model(input_ids=torch.tensor([r["input_ids"]]), use_cache=False).logits
            for r in ROWS
        ]

    # Then the logits are those of the examples alone, window included
    torch.testing.assert_close(packed_logits, torch.cat(separate, dim=1), atol=1e-5, rtol=1e-4)


def test_packed_attention_refuses_padded_batches(tiny_model_dir: Path) -> None:
    # Given a model with per-example SDPA and a padded batch of several rows
    model = _lora_model(tiny_model_dir, register_packed_attention())
    padded = PaddingCollator(pad_id=0, multiple_of=1)(ROWS)
    # Then it refuses rather than attend to padding
    with pytest.raises(ValueError, match="packed rows"):
        model(**padded)


def test_packed_labels_train_assistant_tokens_only_and_never_cross_examples(
    tiny_model_dir: Path,
) -> None:
    # Given two chat examples encoded with assistant-only loss
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoder = ExampleEncoder(tokenizer, cutoff=512)
    examples = [
        Example.model_validate(
            {
                "kind": "chat",
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ],
            }
        )
        for question, answer in (("count from 3", "3 4 5"), ("say two words", "red green"))
    ]
    rows = [encoder.encode(example) for example in examples]
    assert all(row is not None for row in rows)

    # When they are packed
    packed = PackingCollator()([row for row in rows if row is not None])

    # Then the trained tokens are the assistant turns (end markers included), in order,
    labels = [t for t in packed["labels"][0].tolist() if t != IGNORE_INDEX]
    turn_end = "<|im_end|>\n"
    assert tokenizer.decode(labels) == f"3 4 5{turn_end}red green{turn_end}"
    # and each example starts at position 0 with its first label masked
    first_length = len(rows[0]["input_ids"])  # type: ignore[index]
    assert packed["position_ids"][0, first_length].item() == 0
    assert packed["labels"][0, first_length].item() == IGNORE_INDEX
