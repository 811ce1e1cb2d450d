"""Reading what Kubernetes reports about its objects: conditions, timestamps, messages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

_MESSAGE_CHARS = 1500


def condition(obj: Mapping[str, Any], kind: str, status: str = "True") -> Mapping[str, Any] | None:
    """The object's condition of type `kind` when it has `status`, else None."""
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind and found.get("status") == status:
            return dict(found)
    return None


def parse_timestamp(value: object) -> datetime | None:
    """A Kubernetes timestamp ("2025-03-01T12:00:00Z"), None when there is none or it is
    not one."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def clip(text: str) -> str:
    """`text` on one line, its end kept when it is long (where a crash says why)."""
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else "..." + text[-_MESSAGE_CHARS:]
