"""What the caller tells the readers and the validator."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.spec import ColumnMapping, DatasetFormat

__all__ = ["ColumnMapping", "ValidationOptions"]

MIN_EXAMPLES = 100
RECOMMENDED_EXAMPLES = 1_000
DUPLICATE_WARNING_SHARE = 0.10
IMBALANCE_WARNING_RATIO = 10.0
DEFAULT_MAX_FILE_BYTES = 5 * 1024**3
DEFAULT_MAX_ROW_BYTES = 1024**2


class ValidationOptions(DeferredModel):
    """How to read and judge one dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Annotated[DatasetFormat, Field(description="Dataset format; 'auto' detects it.")] = (
        DatasetFormat.AUTO
    )
    columns: Annotated[
        ColumnMapping, Field(description="Column mapping for CSV, Parquet and generic JSONL.")
    ] = Field(default_factory=ColumnMapping)
    filename: Annotated[
        str | None, Field(description="Name of the file, used to detect the format.")
    ] = None
    preference: Annotated[
        bool | None,
        Field(
            description="True: the job trains with dpo, so the data must be preference pairs; "
            "False: it must not be; null: either (a plain validation)."
        ),
    ] = None
    cutoff_length: Annotated[
        int, Field(ge=1, description="Tokens per example past which it is truncated.")
    ] = 2048
    max_samples: Annotated[
        int | None, Field(ge=1, description="Read only the first N valid examples.")
    ] = None
    max_file_bytes: Annotated[int, Field(ge=1, description="Largest file accepted, in bytes.")] = (
        DEFAULT_MAX_FILE_BYTES
    )
    max_row_bytes: Annotated[
        int, Field(ge=1, description="Largest line or row accepted, in bytes.")
    ] = DEFAULT_MAX_ROW_BYTES
    min_examples: Annotated[
        int, Field(ge=1, description="Fewer valid examples than this is an error.")
    ] = MIN_EXAMPLES
    recommended_examples: Annotated[
        int, Field(ge=1, description="Fewer valid examples than this is a warning.")
    ] = RECOMMENDED_EXAMPLES
    max_listed_issues: Annotated[
        int, Field(ge=1, description="Most errors (and, separately, warnings) listed.")
    ] = 200
    max_tracked_digests: Annotated[
        int,
        Field(
            ge=1024,
            description="Most example digests kept per duplicate kind; beyond it duplicate "
            "counts are estimated from a hash-based sample.",
        ),
    ] = 1 << 19
