"""Small builders of dataset files for the dataset tests."""

from __future__ import annotations

import io
import json
from typing import Any

from whetstone.core.datasets.options import ValidationOptions
from whetstone.core.datasets.report import ValidationReport
from whetstone.core.datasets.validator import validate_dataset


def chat(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"question number {i}?"},
            {"role": "assistant", "content": f"answer number {i}."},
        ]
    }


def jsonl(records: list[Any]) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def report_of(data: bytes, **options: Any) -> ValidationReport:
    return validate_dataset(io.BytesIO(data), ValidationOptions(**options))
