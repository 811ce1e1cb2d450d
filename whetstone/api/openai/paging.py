"""OpenAI's cursor pages: the objects after the one with id `after`, at most `limit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from whetstone.core.errors import NotFoundError


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_T = TypeVar("_T", bound=_HasId)


def page(items: Sequence[_T], after: str | None, limit: int) -> tuple[list[_T], bool]:
    """The items following the one with id `after` (from the first without), at most `limit`,
    and whether more follow; an `after` naming none of them is a 404."""
    start = 0
    if after is not None:
        ids = [item.id for item in items]
        if after not in ids:
            raise NotFoundError(f"no {after!r} to list after", code="cursor_not_found")
        start = ids.index(after) + 1
    return list(items[start : start + limit]), start + limit < len(items)
