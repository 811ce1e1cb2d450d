"""A tiny base model pre-trained on the spot, so fine-tuning it shows what fine-tuning does.

A random tiny model learns a task's answers but never a sharp distribution: its frozen head
and norms cap how low an adapter can push the loss. This one is first pre-trained (a short
causal-LM loop, a minute or two on two CPU cores) on a synthetic corpus of chat turns in the
ChatML format of `whetstone.inference.tiny`: word lists and instructions that teach the
vocabulary, the format, when to stop, and skills the downstream tasks build on (pick a word
by position, drop one, count them, find the word after another). It never sees the
downstream tasks themselves (`DOWNSTREAM_TASKS`: repeat, reverse), so the base answers them
wrong and a fine-tuned model plainly right.

The result is cached under `<cache>/tiny-base-<hash>/`, the hash covering the config and
the corpus version; it is built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Bump when the corpus or the loop changes what a given config produces.
CORPUS_VERSION = 1

COLORS = "red green blue yellow orange purple black white pink brown gray gold".split()
FRUITS = "apple banana cherry grape lemon mango peach pear plum melon kiwi lime".split()
ANIMALS = "cat dog fox owl bee cow pig hen ant bat elk yak".split()
WORDS = COLORS + FRUITS + ANIMALS
NUMBERS = "zero one two three four five six seven eight nine".split()

Task = Callable[[list[str]], str]

# What the corpus teaches: an instruction and how its answer follows from the words.
PRETRAINING_TASKS: dict[str, Task] = {
    "Say the fruit.": lambda words: next(w for w in words if w in FRUITS),
    "Say the color.": lambda words: next(w for w in words if w in COLORS),
    "Say the animal.": lambda words: next(w for w in words if w in ANIMALS),
    "Say the first word.": lambda words: words[0],
    "Say the last word.": lambda words: words[-1],
    "Count the words.": lambda words: NUMBERS[len(words)],
}
# What fine-tuning teaches (the demo and bench/learning_quality.py): never in the corpus.
DOWNSTREAM_TASKS: dict[str, Task] = {
    "Repeat the words.": lambda words: " ".join(words),
    "Reverse the words.": lambda words: " ".join(reversed(words)),
}


class TinyBaseConfig(BaseModel):
    """The tiny base model's size and its pre-training; the cache key hashes all of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: Annotated[int, Field(ge=32, description="Hidden size (a multiple of 32).")] = 128
    layers: Annotated[int, Field(ge=1, description="Transformer layers.")] = 4
    heads: Annotated[int, Field(ge=1, description="Attention heads.")] = 4
    steps: Annotated[int, Field(ge=1, description="Pre-training optimizer steps.")] = 600
    batch_size: Annotated[int, Field(ge=1, description="Dialogs per step.")] = 32
    learning_rate: Annotated[float, Field(gt=0, description="Peak AdamW learning rate.")] = 3e-3
    seed: Annotated[int, Field(description="Seed of the corpus and the initial weights.")] = 0

    def cache_key(self) -> str:
        text = f"{CORPUS_VERSION}:{self.model_dump_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def word_list(rng: random.Random, low: int = 2, high: int = 3) -> list[str]:
    """Distinct words from the vocabulary, low to high of them, each of another kind."""
    kinds = rng.sample([COLORS, FRUITS, ANIMALS], rng.randint(low, high))
    return [rng.choice(kind) for kind in kinds]


def chat_turns(instruction: str, words: list[str], answer: str) -> list[dict[str, str]]:
    """One exchange as the platform renders an alpaca row: instruction, blank line, input."""
    return [
        {"role": "user", "content": f"{instruction}\n\n{' '.join(words)}"},
        {"role": "assistant", "content": answer},
    ]


def corpus(rng: random.Random, count: int) -> list[list[dict[str, str]]]:
    """`count` dialogs of the pre-training tasks on random word lists."""
    dialogs = []
    for _ in range(count):
        words = word_list(rng)
        instruction, task = rng.choice(
            [(i, t) for i, t in PRETRAINING_TASKS.items() if _answerable(t, words)]
        )
        dialogs.append(chat_turns(instruction, words, task(words)))
    return dialogs


def render(dialog: list[dict[str, str]]) -> str:
    """A dialog as the ChatML template of `whetstone.inference.tiny` writes it."""
    return "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in dialog)


def _tokenizer_corpus(rng: random.Random) -> list[str]:
    """Text to learn the vocabulary from: every instruction and word gets a token of its own."""
    tasks = {**PRETRAINING_TASKS, **DOWNSTREAM_TASKS}
    dialogs = [
        chat_turns(instruction, words := word_list(rng, 3, 3), task(words))
        for instruction, task in tasks.items()
        for _ in range(40)
    ]
    return [render(dialog) for dialog in dialogs]


def _answerable(task: Task, words: list[str]) -> bool:
    try:
        task(words)
    except StopIteration:
        return False
    return True


def default_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Whetstone's folder in the user's cache (`XDG_CACHE_HOME`, else ~/.cache)."""
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whetstone"


def pretrained_tiny_base(
    config: TinyBaseConfig | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """The folder of the pre-trained tiny base for `config`: cached, or built now (minutes)."""
    config = config or TinyBaseConfig()
    root = cache_dir or default_cache_dir()
    target = root / f"tiny-base-{config.cache_key()}"
    if (target / "config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    log(f"pre-training a tiny base model into {target} (once; cached afterwards)")
    building = Path(tempfile.mkdtemp(prefix=".tiny-base-", dir=root))
    try:
        _pretrain(config, building, log)
        try:
            building.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _pretrain(config: TinyBaseConfig, out: Path, log: Callable[[str], None]) -> None:
    import torch

    from whetstone.inference.tiny import build_tiny_model

    rng = random.Random(config.seed)
    build_tiny_model(
        out,
        hidden=config.hidden,
        layers=config.layers,
        heads=config.heads,
        seed=config.seed,
        corpus=_tokenizer_corpus(random.Random(config.seed)),
        split_spaces=True,
    )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    # Tied input and output embeddings: copying a word of the prompt into the answer, which
    # every task here does, then needs no mapping learned from scratch.
    model.config.tie_word_embeddings = True
    model.tie_weights()
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    warmup = max(1, config.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * step / config.steps))),
    )
    model.train()
    for step in range(config.steps):
        batch = _batch(tokenizer, corpus(rng, config.batch_size))
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == config.steps - 1:
            log(f"  pre-training step {step + 1}/{config.steps}: answer loss {loss.item():.3f}")
    model.save_pretrained(out)


def _batch(tokenizer: Any, dialogs: list[list[dict[str, str]]]) -> dict[str, Any]:
    """Right-padded rows, labelled on the answers only: the prompts' words are random, and
    learning to predict them would only slow the rest."""
    rows, labels = [], []
    for dialog in dialogs:
        prompt = tokenizer(render(dialog[:1]) + "<|im_start|>assistant\n")["input_ids"]
        ids = tokenizer(render(dialog))["input_ids"]
        rows.append(ids)
        labels.append([-100] * len(prompt) + ids[len(prompt) :])
    return _padded(rows, labels, int(tokenizer.pad_token_id))


def _padded(rows: list[list[int]], labels: list[list[int]], pad: int) -> dict[str, Any]:
    import torch

    width = max(len(row) for row in rows)

    def fill(seqs: list[list[int]], value: int) -> Any:
        return torch.tensor([seq + [value] * (width - len(seq)) for seq in seqs])

    return {
        "input_ids": fill(rows, pad),
        "attention_mask": fill([[1] * len(row) for row in rows], 0),
        "labels": fill(labels, -100),
    }
