"""Cutting a sequence of items into the batches of an API that caps both count and bytes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def split_batches(
    items: Iterable[T],
    *,
    size: Callable[[T], int],
    max_count: int,
    max_bytes: int,
    must_split: Callable[[list[T], T], bool] = lambda batch, item: False,
) -> list[list[T]]:
    """Consecutive batches, in order, of at most `max_count` items and `max_bytes` (the sum of
    `size`); `must_split(batch, item)` starts a new batch before `item` for any other reason.
    An item larger than `max_bytes` travels alone."""
    batches: list[list[T]] = []
    total = 0
    for item in items:
        item_size = size(item)
        if (
            not batches
            or len(batches[-1]) == max_count
            or total + item_size > max_bytes
            or must_split(batches[-1], item)
        ):
            batches.append([item])
            total = item_size
        else:
            batches[-1].append(item)
            total += item_size
    return batches
