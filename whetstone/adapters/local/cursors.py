"""The page tokens of the local stores: a JSON value in URL-safe base64."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

from whetstone.core.errors import InvalidInputError

T = TypeVar("T")


def encode_cursor(value: Any) -> str:
    """An opaque page token holding `value` (anything JSON holds)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def decode_cursor(cursor: str, read: Callable[[Any], T]) -> T:
    """`read` of the value `cursor` holds; InvalidInputError (invalid_cursor) when the token
    is not one `encode_cursor` made or `read` fails on it (ValueError, TypeError, ...)."""
    try:
        return read(json.loads(base64.urlsafe_b64decode(cursor.encode())))
    except (ValueError, TypeError, AttributeError) as error:
        raise InvalidInputError(
            "next_token is not one this API returned; start again without it",
            code="invalid_cursor",
        ) from error
