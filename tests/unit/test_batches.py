"""split_batches: the count and byte caps of batching APIs (PutEvents, PutLogEvents)."""

from __future__ import annotations

from whetstone.core.batches import split_batches


def test_batches_keep_the_order_and_close_at_the_count_cap() -> None:
    # Given seven items of one byte and a cap of three per batch
    # When they are split
    batches = split_batches(range(7), size=lambda _: 1, max_count=3, max_bytes=100)
    # Then the batches are full but the last, in the items' order
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_batch_closes_before_the_item_that_would_pass_the_byte_cap() -> None:
    # Given items whose sizes are their values, and a cap of ten bytes
    # When they are split
    batches = split_batches([4, 5, 2, 9, 30], size=lambda n: n, max_count=10, max_bytes=10)
    # Then no batch passes ten bytes, but for an item larger than the cap, which goes alone
    assert batches == [[4, 5], [2], [9], [30]]


def test_must_split_starts_a_new_batch_for_reasons_of_its_own() -> None:
    # Given a rule that a batch spans at most five units of its first item
    # When items are split under it
    batches = split_batches(
        [1, 3, 6, 7, 12],
        size=lambda _: 1,
        max_count=10,
        max_bytes=100,
        must_split=lambda batch, item: item - batch[0] > 5,
    )
    # Then each batch stays within five units of its first item
    assert batches == [[1, 3, 6], [7, 12]]
