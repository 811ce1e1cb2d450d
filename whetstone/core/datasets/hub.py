"""Hugging Face hub datasets: parse hf://<dataset>[:config][@split], and copy one out as
JSON lines (streamed, size-limited) for the readers.

`datasets` is imported only when a dataset is loaded.
"""

from __future__ import annotations

import json
from typing import IO

from whetstone.core.errors import InvalidInputError
from whetstone.core.sources import parse_hf_dataset


def parse_hf_source(source: str) -> tuple[str, str | None, str]:
    """(dataset id, config, split) of hf://<owner>/<name>[:config][@split]; the split
    defaults to train. Never a path (core.sources.parse_hf_dataset)."""
    hub = parse_hf_dataset(source)
    return hub.dataset_id, hub.config, hub.split


def load_hf(source: str, out: IO[bytes], limit: int) -> None:
    """Write the rows of hf://<dataset> to `out` as JSON lines, up to `limit` bytes."""
    dataset_id, config, split = parse_hf_source(source)
    try:
        from datasets import load_dataset  # type: ignore[import-untyped]
    except ImportError as error:
        raise InvalidInputError(
            "Hugging Face datasets cannot be read here (the 'datasets' package is not "
            "installed); upload the file or put it on S3",
            code="hf_unavailable",
        ) from error
    size = 0
    try:
        # The hf://datasets/ form reads the hub only, never a local folder of that name.
        rows = load_dataset(f"hf://datasets/{dataset_id}", config, split=split, streaming=True)
        for row in rows:
            line = json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n"
            size += len(line)
            if size > limit:
                raise InvalidInputError(
                    f"{source} is larger than the {limit / 1024**2:.0f} MiB limit; use "
                    "max_samples on an extract or a smaller split",
                    code="file_too_large",
                )
            out.write(line)
    except InvalidInputError:
        raise
    except Exception as error:  # the hub client raises many kinds; all mean "not readable"
        raise InvalidInputError(
            f"Hugging Face dataset {dataset_id} (config {config or 'default'}, split {split}) "
            f"could not be loaded: {error}. Without network access (HF_HUB_OFFLINE) only "
            "cached datasets load; upload the file or put it on S3 instead",
            code="hf_unavailable",
        ) from error
