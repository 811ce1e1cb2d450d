"""A tiny causal LM built on the spot: for tests, the demo and benchmarks, with no hub.

`python -m whetstone.inference.tiny <out_dir> [--hidden 64 --layers 2]` writes a Llama-architecture
model with a byte-level BPE tokenizer (pad/eos tokens and a ChatML chat template) that
`from_pretrained` reloads offline.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "user assistant system: answer the question with one word, then stop.",
    "What is the capital of France? Paris. What is two plus two? Four.",
    "zero one two three four five six seven eight nine ten eleven twelve",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25",
    "Fine-tuning adapts a pretrained language model to a task with a small dataset.",
    "Translate to French: good morning -> bonjour; thank you -> merci; cat -> chat.",
    "reverse, repeat, count, sort, copy: the model answers in lowercase words.",
    "red green blue yellow orange purple black white apple banana cherry grape",
]


def build_tokenizer(
    vocab_size: int = 512, corpus: Iterable[str] | None = None, *, split_spaces: bool = False
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained in milliseconds, wrapped for transformers.

    `split_spaces` makes each space a token of its own, so a word is the same token at the
    start of a line and after a space (a model copying words then needs no mapping)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Split(" ", "isolated"), byte_level])
        if split_spaces
        else byte_level
    )
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(list(corpus or _CORPUS) * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw,
        pad_token="<|pad|>",
        eos_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=4096,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    out_dir: str | Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    intermediate: int | None = None,
    vocab_size: int = 512,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    split_spaces: bool = False,
) -> Path:
    """Write a random Llama model and its tokenizer (trained on `corpus`, or a default
    text) to `out_dir`; return the folder."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size, corpus, split_spaces=split_spaces)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate or hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m whetstone.inference.tiny", description=__doc__)
    parser.add_argument("out_dir", help="folder to write the model and tokenizer to")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=None)
    parser.add_argument("--vocab-size", type=int, default=512)
    options = vars(parser.parse_args(argv))
    build_tiny_model(options.pop("out_dir"), **options)


if __name__ == "__main__":
    main()
