"""From normalized split files to batches: chat template, loss masks, grouping, packing.

Each `Example` (whetstone.core.datasets.records) becomes token ids and labels:
- chat, completion and classification examples are rendered with the model's chat template
  (completion = user prompt + assistant completion, classification = user text + assistant
  label); with `loss_on="assistant"` only assistant turns (their end-of-turn marker included)
  carry labels, and turns with weight 0 carry none;
- text examples are the text plus the end-of-sequence token, all of it trained on;
- preference examples (dpo) become two sequences, the prompt with the chosen answer
  (`input_ids`, `labels`) and with the rejected one (`rejected_input_ids`,
  `rejected_labels`), only the answer labelled whatever `loss_on` says.
Sequences are cut at the cutoff length; an example left with no trained token is dropped.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info

from whetstone.core.datasets.records import (
    MANIFEST_NAME,
    Example,
    ExampleKind,
    SplitManifest,
    split_file,
)
from whetstone.core.plan import LossOn

from .storage import Location

IGNORE_INDEX = -100

# Used when the tokenizer has none (base models): plain role headers, each turn closed by the
# end-of-sequence token so generation knows where an answer stops.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '### ' + message['role'] + ':\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### assistant:\n' }}{% endif %}"
)


class DataError(Exception):
    """The split files are missing or unreadable."""


Features = dict[str, list[int]]


def ensure_chat_ready(tokenizer: Any) -> list[str]:
    """Give the tokenizer a chat template and a pad token if it lacks them; say what changed."""
    changes: list[str] = []
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        changes.append("no chat template in the tokenizer; using the fallback template")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
        changes.append("no pad token in the tokenizer; padding with the eos token")
    return changes


def _as_messages(example: Example) -> list[dict[str, Any]]:
    if example.kind is ExampleKind.CHAT:
        assert example.messages is not None
        return [
            {"role": t.role, "content": t.content, "weight": t.weight} for t in example.messages
        ]
    if example.kind is ExampleKind.COMPLETION:
        return [
            {"role": "user", "content": example.prompt},
            {"role": "assistant", "content": example.completion, "weight": None},
        ]
    return [
        {"role": "user", "content": example.text},
        {"role": "assistant", "content": example.label, "weight": None},
    ]


@dataclass
class ExampleEncoder:
    """Turns examples into `input_ids` and `labels`, cut at `cutoff` tokens."""

    tokenizer: Any
    cutoff: int
    loss_on: LossOn = "assistant"
    dropped: int = field(default=0, init=False)

    def _render(self, messages: list[dict[str, Any]], *, generation_prompt: bool) -> str:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        text = self.tokenizer.apply_chat_template(
            plain, tokenize=False, add_generation_prompt=generation_prompt
        )
        return str(text)

    def _chat_spans(
        self, messages: list[dict[str, Any]], loss_on: LossOn
    ) -> tuple[str, list[tuple[int, int]]]:
        """The rendered conversation and the character spans that carry loss."""
        full = self._render(messages, generation_prompt=False)
        if loss_on == "all":
            return full, [(0, len(full))]
        spans: list[tuple[int, int]] = []
        cursor = 0
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self._render(messages[:i], generation_prompt=True) if i else ""
            through = self._render(messages[: i + 1], generation_prompt=False)
            if full.startswith(before) and full.startswith(through):
                start, end = len(before), len(through)
            else:  # a template that rewrites earlier turns: find the content itself
                start = full.find(message["content"], cursor)
                end = start + len(message["content"])
            cursor = max(cursor, end)
            if message.get("weight") is not None and message["weight"] == 0:
                continue
            if start >= 0:
                spans.append((start, end))
        return full, spans

    def _tokenize_spans(self, text: str, spans: list[tuple[int, int]]) -> Features:
        if getattr(self.tokenizer, "is_fast", False):
            encoded = self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
            )
            ids = list(encoded["input_ids"])
            labels = [
                tok if any(s <= off[0] < e for s, e in spans) else IGNORE_INDEX
                for tok, off in zip(ids, encoded["offset_mapping"], strict=True)
            ]
            return {"input_ids": ids, "labels": labels}
        piece_ids: list[int] = []
        piece_labels: list[int] = []
        bounds = sorted({0, len(text), *(p for span in spans for p in span)})
        for start, end in zip(bounds, bounds[1:], strict=False):
            piece = self.tokenizer(text[start:end], add_special_tokens=False)["input_ids"]
            trained = any(s <= start < e for s, e in spans)
            piece_ids += piece
            piece_labels += piece if trained else [IGNORE_INDEX] * len(piece)
        return {"input_ids": piece_ids, "labels": piece_labels}

    def encode(self, example: Example) -> Features | None:
        """Token ids and labels, or None (counted in `dropped`) when no label survives."""
        if example.kind is ExampleKind.TEXT:
            assert example.text is not None
            ids = list(self.tokenizer(example.text, add_special_tokens=True)["input_ids"])
            ids.append(self.tokenizer.eos_token_id)
            features: Features = {"input_ids": ids, "labels": list(ids)}
        elif example.kind is ExampleKind.PREFERENCE:
            return self._encode_pair(example)
        else:
            text, spans = self._chat_spans(_as_messages(example), self.loss_on)
            features = self._tokenize_spans(text, spans)
        return self._cut(features)

    def _cut(self, features: Features) -> Features | None:
        features = {k: v[: self.cutoff] for k, v in features.items()}
        if all(label == IGNORE_INDEX for label in features["labels"][1:]):
            self.dropped += 1
            return None
        return features

    def _encode_pair(self, example: Example) -> Features | None:
        """The prompt with each answer; only the answer carries labels (earlier assistant
        turns of the prompt get weight 0), so a sequence's log-probability is its answer's."""
        assert example.messages is not None
        prompt = [{"role": t.role, "content": t.content, "weight": 0} for t in example.messages]
        sides: list[Features] = []
        for answer in (example.chosen, example.rejected):
            messages = [*prompt, {"role": "assistant", "content": answer, "weight": None}]
            side = self._cut(self._tokenize_spans(*self._chat_spans(messages, "assistant")))
            if side is None:
                return None
            sides.append(side)
        chosen, rejected = sides
        return {
            **chosen,
            "rejected_input_ids": rejected["input_ids"],
            "rejected_labels": rejected["labels"],
        }


def row_length(row: Features) -> int:
    """Tokens of an example's longest sequence (a preference pair has two)."""
    return max(len(row["input_ids"]), len(row.get("rejected_input_ids", ())))


class TokenizedSplit(Dataset[Features]):
    """A split held in memory, with the length of every example."""

    def __init__(self, rows: list[Features]) -> None:
        self.rows = rows
        self.lengths = [row_length(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Features:
        return self.rows[index]

    def sorted_by_length(self) -> TokenizedSplit:
        """The same examples longest first: evaluation pads least this way."""
        return TokenizedSplit(sorted(self.rows, key=lambda r: -row_length(r)))

    def token_count(self) -> int:
        return sum(self.lengths)


def read_manifest(data: Location) -> SplitManifest:
    try:
        return SplitManifest.model_validate_json(data.read_bytes(MANIFEST_NAME))
    except Exception as exc:
        raise DataError(f"no readable {MANIFEST_NAME} in {data.uri}: {exc}") from exc


def read_split(
    data: Location, name: str, encoder: ExampleEncoder, *, limit: int | None = None
) -> tuple[TokenizedSplit, str]:
    """Encode a whole split file; returns it with the file's sha256."""
    if not data.exists(split_file(name)):
        return TokenizedSplit([]), ""
    raw = data.read_bytes(split_file(name))
    rows: list[Features] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        if limit is not None and number > limit:
            break
        try:
            example = Example.model_validate_json(line)
        except ValueError as exc:
            raise DataError(f"{split_file(name)} line {number} is not an Example: {exc}") from exc
        features = encoder.encode(example)
        if features is not None:
            rows.append(features)
    return TokenizedSplit(rows), hashlib.sha256(raw).hexdigest()


def _grouped_order(
    lengths: Sequence[int], batch_size: int, generator: random.Random | torch.Generator, mega: int
) -> list[int]:
    """Shuffle, sort each megabatch by length, then shuffle the batches."""
    if isinstance(generator, torch.Generator):
        order = torch.randperm(len(lengths), generator=generator).tolist()
    else:
        order = list(range(len(lengths)))
        generator.shuffle(order)
    size = batch_size * mega
    batches: list[list[int]] = []
    for start in range(0, len(order), size):
        chunk = sorted(order[start : start + size], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if isinstance(generator, torch.Generator):
        perm = torch.randperm(len(batches), generator=generator).tolist()
    else:
        perm = list(range(len(batches)))
        generator.shuffle(perm)
    return [i for b in perm for i in batches[b]]


@dataclass(eq=False)
class LengthGroupedSampler(Sampler[int]):
    """Batches of similar lengths in an order fixed by (seed, epoch), so resume replays it.

    Indices are shuffled, cut into megabatches of `batch_size * 50`, sorted by length inside
    each megabatch and cut into batches; the batches are then shuffled. Padding per batch is
    then a few percent even when lengths spread widely, while every epoch still sees a new
    random order.
    """

    lengths: Sequence[int]
    batch_size: int
    seed: int
    mega: int = 50
    epoch: int = field(default=0, init=False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(_grouped_order(self.lengths, self.batch_size, generator, self.mega))


@dataclass(eq=False)
class StreamedSplit(IterableDataset[Features]):
    """A split read line by line from storage, never held whole in memory.

    A buffer of `buffer` examples is shuffled (seeded by seed and epoch) and, when
    `group_batch` is set, grouped into batches of similar length. Dataloader workers take
    every n-th line so no example is read twice.
    """

    open_lines: Callable[[], Iterator[bytes]]
    encoder: ExampleEncoder
    _: KW_ONLY
    seed: int
    buffer: int
    group_batch: int | None
    limit: int | None = None
    epoch: int = field(default=0, init=False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _drain(self, rows: list[Features], rng: random.Random) -> Iterator[Features]:
        if self.group_batch:
            lengths = [row_length(r) for r in rows]
            order = _grouped_order(lengths, self.group_batch, rng, mega=len(rows))
        else:
            order = list(range(len(rows)))
            rng.shuffle(order)
        for i in order:
            yield rows[i]

    def __iter__(self) -> Iterator[Features]:
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        rng = random.Random(self.seed * 1_000_003 + self.epoch * 101 + worker_id)
        rows: list[Features] = []
        for number, line in enumerate(self.open_lines()):
            if self.limit is not None and number >= self.limit:
                break
            if number % workers != worker_id or not line.strip():
                continue
            features = self.encoder.encode(Example.model_validate_json(line))
            if features is None:
                continue
            rows.append(features)
            if len(rows) >= self.buffer:
                yield from self._drain(rows, rng)
                rows = []
        yield from self._drain(rows, rng)


@dataclass
class PaddingCollator:
    """Pads each batch to its longest example (or to `pad_to`), labels with -100."""

    pad_id: int
    pad_to: int | None = None
    multiple_of: int = 8

    def __call__(self, rows: list[Features]) -> dict[str, torch.Tensor]:
        longest = self.pad_to or max(len(r["input_ids"]) for r in rows)
        if self.pad_to is None and self.multiple_of > 1:
            longest = -(-longest // self.multiple_of) * self.multiple_of
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


@dataclass
class PackingCollator:
    """Flattens a batch into one row with no padding; position ids restart per example.

    The model sees the boundaries through the position ids (transformers builds a
    block-diagonal causal mask from them for sdpa/eager, and flash-attention uses them as
    sequence boundaries); the first label of each example is -100 so no example learns to
    predict the next one.
    """

    def __call__(self, rows: list[Features]) -> dict[str, torch.Tensor]:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for row in rows:
            ids += row["input_ids"]
            labels += [IGNORE_INDEX, *row["labels"][1:]]
            positions += range(len(row["input_ids"]))
        return {
            "input_ids": torch.tensor([ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions]),
        }
