"""The dataset section of the job spec: which data a job trains on, in which format, with
which columns, split how."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, model_validator

from whetstone.core.spec_section import SPEC_REFERENCE, SpecSection
from whetstone.core.strict import StrictModel


class DatasetFormat(StrEnum):
    AUTO = "auto"
    JSONL = "jsonl"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"
    OPENAI = "openai"
    CSV = "csv"
    PARQUET = "parquet"
    # Preference pairs: prompt/chosen/rejected, or OpenAI's input/preferred_output/
    # non_preferred_output.
    PREFERENCE = "preference"


class ColumnMapping(StrictModel):
    """Which column (or JSON key) holds which field; unset fields are auto-detected."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_reference = SPEC_REFERENCE

    text: Annotated[str | None, Field(description="Column holding the text.")] = None
    label: Annotated[str | None, Field(description="Column holding the class label.")] = None
    prompt: Annotated[str | None, Field(description="Column holding the prompt.")] = None
    completion: Annotated[str | None, Field(description="Column holding the completion.")] = None
    chosen: Annotated[
        str | None, Field(description="Column holding the preferred answer (dpo).")
    ] = None
    rejected: Annotated[
        str | None, Field(description="Column holding the rejected answer (dpo).")
    ] = None

    def is_empty(self) -> bool:
        return all(
            value is None
            for value in (
                self.text,
                self.label,
                self.prompt,
                self.completion,
                self.chosen,
                self.rejected,
            )
        )


class SplitParams(SpecSection):
    """Train/validation/test percentages; they must sum to 100.

    Also accepted as a string such as "80/15/5".
    """

    train: Annotated[int, Field(ge=1, le=100, description="Percent for training.")] = 80
    validation: Annotated[int, Field(ge=0, le=99, description="Percent for validation.")] = 15
    test: Annotated[int, Field(ge=0, le=99, description="Percent for the final test.")] = 5

    @model_validator(mode="before")
    @classmethod
    def _from_slashed_string(cls, value: Any) -> Any:
        """`dataset.split` may be a string `train/validation/test`, e.g. `80/15/5`."""
        if not isinstance(value, str):
            return value
        parts = value.split("/")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(
                f"split {value!r} must look like 'train/validation/test', e.g. 80/15/5"
            )
        train, validation, test = (int(p) for p in parts)
        return {"train": train, "validation": validation, "test": test}

    @model_validator(mode="after")
    def _sums_to_100(self) -> Self:
        """The three `dataset.split` percentages sum to 100."""
        total = self.train + self.validation + self.test
        if total != 100:
            raise ValueError(
                f"split {self.train}/{self.validation}/{self.test} sums to {total}; "
                "the three percentages must sum to 100"
            )
        return self


class DatasetParams(SpecSection):
    """Which data to train on and how to cut it."""

    source: Annotated[
        str | None,
        Field(
            description="Where the data is: s3://bucket/key, hf://<dataset>[:config][@split], "
            "an uploaded dataset id, or a local path (local runtime). Set by the API "
            "when the file is uploaded with the job.",
        ),
    ] = None
    format: Annotated[
        DatasetFormat, Field(description="Dataset format; 'auto' detects it from the data.")
    ] = DatasetFormat.AUTO
    columns: Annotated[
        ColumnMapping,
        Field(description="Column mapping for CSV, Parquet and generic JSONL; auto if unset."),
    ] = Field(default_factory=ColumnMapping)
    split: Annotated[SplitParams, Field(description="Train/validation/test split in percent.")] = (
        Field(default_factory=SplitParams)
    )
    max_samples: Annotated[
        int | None, Field(ge=1, description="Use at most this many examples; unlimited if null.")
    ] = None
    cutoff_length: Annotated[
        int, Field(ge=128, le=4096, description="Maximum tokens per example.")
    ] = 2048
    streaming: Annotated[bool, Field(description="Stream large datasets from storage.")] = False
