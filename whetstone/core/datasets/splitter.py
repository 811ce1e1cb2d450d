"""Deterministic, seeded train/validation/test split in bounded memory.

Each example gets a rank: a keyed 64-bit BLAKE2b digest of its content (the
key is the seed). The examples of each stratum (the label for classification,
one stratum otherwise) are ordered by rank; the lowest ranks go to test, the
next to validation, the rest to train, in the configured proportions. So:

- the split depends only on the content and the seed, never on file order or
  on the machine;
- identical examples share a rank, so they always land in the same split (no
  leakage of identical examples across splits);
- classification is stratified: each class is cut in the same proportions.

Two passes: `SplitPlanner.observe` sees each example (during validation) and
keeps a 4096-bucket histogram of ranks per stratum; `SplitPlanner.write`
streams the examples again and writes each to its split file. Only examples
whose rank falls in a bucket containing a cut (about 2/4096 of each stratum)
are held in memory until the end, when they are sorted and cut exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import IO

from whetstone.core.datasets.normalize import Normalized
from whetstone.core.datasets.records import Example
from whetstone.core.spec_dataset import SplitParams

_BUCKET_SHIFT = 52
_BUCKETS = 1 << (64 - _BUCKET_SHIFT)
TEST, VALIDATION, TRAIN = "test", "validation", "train"


def example_rank(normalized: Normalized, seed: int) -> int:
    """The example's place in the seeded order: equal content, equal rank."""
    digest = hashlib.blake2b(
        normalized.rendered.encode(), digest_size=8, key=seed.to_bytes(8, "big")
    ).digest()
    return int.from_bytes(digest, "big")


def example_line(normalized: Normalized) -> bytes:
    """The example as one line of a split file, checked against the trainer's contract."""
    example = Example.model_validate(normalized.example)
    return example.model_dump_json(exclude_none=True).encode() + b"\n"


def _cut_bucket(histogram: list[int], cut: int) -> int:
    """The bucket holding the example at sorted position `cut`."""
    seen = 0
    for bucket, n in enumerate(histogram):
        seen += n
        if seen > cut:
            return bucket
    return len(histogram)


class _Stratum:
    def __init__(self) -> None:
        self.count = 0
        self.histogram = [0] * _BUCKETS
        self.cuts: tuple[int, int] = (0, 0)
        self.cut_buckets: tuple[int, int] = (0, 0)
        self.held: list[tuple[int, bytes, int]] = []
        self.before_bucket: dict[int, int] = {}


class SplitPlanner:
    """Plans and writes one split; call `observe` for every example, then `write`."""

    def __init__(self, split: SplitParams, seed: int) -> None:
        self.split = split
        self.seed = seed
        self._strata: dict[str, _Stratum] = {}
        # Tokens written per split, when `write` is given a counter.
        self.tokens: dict[str, int] = {TRAIN: 0, VALIDATION: 0, TEST: 0}

    def observe(self, line: int | None, row: int | None, normalized: Normalized) -> None:
        stratum = self._strata.get(normalized.label or "")
        if stratum is None:
            stratum = self._strata[normalized.label or ""] = _Stratum()
        stratum.count += 1
        stratum.histogram[example_rank(normalized, self.seed) >> _BUCKET_SHIFT] += 1

    def planned_counts(self) -> dict[str, int]:
        counts = {TRAIN: 0, VALIDATION: 0, TEST: 0}
        for stratum in self._strata.values():
            n_test, n_validation = self._sizes(stratum.count)
            counts[TEST] += n_test
            counts[VALIDATION] += n_validation
            counts[TRAIN] += stratum.count - n_test - n_validation
        return counts

    def _sizes(self, count: int) -> tuple[int, int]:
        n_test = round(count * self.split.test / 100)
        n_validation = round(count * self.split.validation / 100)
        return n_test, n_validation

    def _prepare(self) -> None:
        for stratum in self._strata.values():
            n_test, n_validation = self._sizes(stratum.count)
            stratum.cuts = (n_test, n_test + n_validation)
            buckets = [_cut_bucket(stratum.histogram, cut) for cut in stratum.cuts]
            for bucket in buckets:
                stratum.before_bucket[bucket] = sum(stratum.histogram[:bucket])
            stratum.cut_buckets = (buckets[0], buckets[1])

    def write(
        self,
        examples: Iterable[Normalized],
        outputs: Mapping[str, IO[bytes]],
        count_tokens: Callable[[Normalized], int] | None = None,
    ) -> dict[str, int]:
        """Write every example to its split; returns the examples written per split.
        With `count_tokens`, `tokens` holds the tokens written per split."""
        self._prepare()
        counts = {TRAIN: 0, VALIDATION: 0, TEST: 0}
        for normalized in examples:
            stratum = self._strata[normalized.label or ""]
            rank = example_rank(normalized, self.seed)
            bucket = rank >> _BUCKET_SHIFT
            first, second = stratum.cut_buckets
            tokens = count_tokens(normalized) if count_tokens is not None else 0
            if bucket == first or bucket == second:
                stratum.held.append((rank, example_line(normalized), tokens))
                continue
            name = TEST if bucket < first else VALIDATION if bucket < second else TRAIN
            outputs[name].write(example_line(normalized))
            counts[name] += 1
            self.tokens[name] += tokens
        for stratum in self._strata.values():
            self._write_held(stratum, outputs, counts)
        return counts

    def _write_held(
        self, stratum: _Stratum, outputs: Mapping[str, IO[bytes]], counts: dict[str, int]
    ) -> None:
        stratum.held.sort(key=lambda item: item[0])
        first_cut, second_cut = stratum.cuts
        first_bucket, second_bucket = stratum.cut_buckets
        previous: tuple[int, str] | None = None
        position = {first_bucket: stratum.before_bucket[first_bucket]}
        position.setdefault(second_bucket, stratum.before_bucket[second_bucket])
        for rank, line, tokens in stratum.held:
            bucket = rank >> _BUCKET_SHIFT
            place = position[bucket]
            position[bucket] = place + 1
            if previous is not None and previous[0] == rank:
                name = previous[1]
            else:
                name = TEST if place < first_cut else VALIDATION if place < second_cut else TRAIN
            outputs[name].write(line)
            counts[name] += 1
            self.tokens[name] += tokens
            previous = (rank, name)
        stratum.held = []
