"""The validation report: what is wrong with a dataset, where, and what it looks like."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from whetstone.core.datasets.records import ExampleKind
from whetstone.core.deferred import DeferredModel
from whetstone.core.spec import ColumnMapping, DatasetFormat


class IssueCode(StrEnum):
    """Stable machine-readable codes; docs/datasets.md explains each one."""

    # The file as a whole
    FILE_TOO_LARGE = "file_too_large"
    EMPTY_FILE = "empty_file"
    UNKNOWN_FORMAT = "unknown_format"
    JSON_ARRAY = "json_array"
    PARQUET_UNREADABLE = "parquet_unreadable"
    UNKNOWN_COLUMN = "unknown_column"
    NO_USABLE_COLUMNS = "no_usable_columns"
    # One line or row
    ROW_TOO_LARGE = "row_too_large"
    NON_UTF8 = "non_utf8"
    BOM = "bom"
    BLANK_LINE = "blank_line"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNRECOGNIZED_RECORD = "unrecognized_record"
    MIXED_FORMATS = "mixed_formats"
    MIXED_KINDS = "mixed_kinds"
    MISSING_FIELD = "missing_field"
    EMPTY_FIELD = "empty_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_ROLE = "unknown_role"
    MISPLACED_SYSTEM = "misplaced_system"
    LAST_TURN_NOT_ASSISTANT = "last_turn_not_assistant"
    INVALID_WEIGHT = "invalid_weight"
    MALFORMED_CSV = "malformed_csv"
    # One preference pair (dpo)
    EMPTY_PROMPT = "empty_prompt"
    PROMPT_NOT_USER_LAST = "prompt_not_user_last"
    MISSING_SIDE = "missing_side"
    IDENTICAL_PAIR = "identical_pair"
    # The dataset as a whole
    TOO_FEW_EXAMPLES = "too_few_examples"
    FEW_EXAMPLES = "few_examples"
    DUPLICATES = "duplicates"
    NEAR_DUPLICATES = "near_duplicates"
    TRUNCATION = "truncation"
    CLASS_IMBALANCE = "class_imbalance"
    SINGLE_CLASS = "single_class"
    SPLIT_LEAKAGE = "split_leakage"
    EMPTY_SPLIT = "empty_split"
    METHOD_DATA_MISMATCH = "method_data_mismatch"


class Issue(DeferredModel):
    """One error or warning, located where it applies."""

    model_config = ConfigDict(frozen=True)

    code: Annotated[IssueCode, Field(description="Stable machine-readable code.")]
    message: Annotated[str, Field(description="What is wrong and what to do about it.")]
    line: Annotated[
        int | None, Field(ge=1, description="1-based line in the file (JSONL, CSV).")
    ] = None
    row: Annotated[
        int | None, Field(ge=1, description="1-based data row, header excluded (CSV, Parquet).")
    ] = None
    field: Annotated[
        str | None, Field(description="Path of the offending field, e.g. 'messages[2].role'.")
    ] = None


class HistogramBin(DeferredModel):
    lower: Annotated[int, Field(ge=0, description="Smallest token count in the bin.")]
    upper: Annotated[
        int | None, Field(description="First token count past the bin; null for the last bin.")
    ]
    count: Annotated[int, Field(ge=0, description="Examples in the bin.")]


class TokenStats(DeferredModel):
    method: Annotated[
        Literal["approximate", "exact"],
        Field(description="'exact' when the model's tokenizer counted; else ~4 bytes a token."),
    ]
    tokenizer: Annotated[str | None, Field(description="The tokenizer used, when exact.")] = None
    total: Annotated[int, Field(ge=0, description="Tokens in all examples.")] = 0
    min: Annotated[int | None, Field(description="Shortest example.")] = None
    max: Annotated[int | None, Field(description="Longest example.")] = None
    mean: Annotated[float | None, Field(description="Mean tokens per example.")] = None
    p50: Annotated[int | None, Field(description="Median, to within 16 tokens.")] = None
    p95: Annotated[int | None, Field(description="95th percentile, to within 16 tokens.")] = None
    cutoff_length: Annotated[int, Field(description="The cutoff the truncation is measured at.")]
    truncated: Annotated[int, Field(ge=0, description="Examples longer than the cutoff.")] = 0
    truncated_share: Annotated[
        float, Field(ge=0, le=1, description="Share of examples the cutoff would truncate.")
    ] = 0.0
    histogram: Annotated[
        list[HistogramBin], Field(description="Examples by token count, fixed bins.")
    ] = Field(default_factory=list)


class DuplicateStats(DeferredModel):
    exact: Annotated[int, Field(ge=0, description="Examples identical to an earlier one.")] = 0
    near: Annotated[
        int,
        Field(
            ge=0,
            description="Examples equal to an earlier one after normalization (case, "
            "whitespace, punctuation), exact duplicates included.",
        ),
    ] = 0
    exact_share: Annotated[float, Field(ge=0, le=1, description="exact / examples.")] = 0.0
    near_share: Annotated[float, Field(ge=0, le=1, description="near / examples.")] = 0.0
    sample_rate: Annotated[
        float,
        Field(
            gt=0,
            le=1,
            description="1 when every example was compared; below 1 when the dataset outgrew "
            "the memory bound and counts are estimated from a hash-based sample.",
        ),
    ] = 1.0


class ClassBalance(DeferredModel):
    counts: Annotated[
        dict[str, int],
        Field(description="Examples per label, most frequent first; at most the top 50 labels."),
    ]
    others: Annotated[int, Field(ge=0, description="Examples of the labels not listed.")] = 0
    num_classes: Annotated[
        int | None, Field(ge=0, description="Distinct labels seen (counted up to 10,000).")
    ] = None
    imbalance_ratio: Annotated[
        float | None, Field(description="Largest class over smallest class.")
    ] = None


class DatasetStats(DeferredModel):
    bytes_read: Annotated[int, Field(ge=0, description="Bytes of the source read.")] = 0
    records_read: Annotated[
        int, Field(ge=0, description="Lines or rows read, blank lines excluded.")
    ] = 0
    invalid_records: Annotated[int, Field(ge=0, description="Records with an error.")] = 0
    stopped_at_max_samples: Annotated[
        bool, Field(description="Reading stopped once max_samples valid examples were found.")
    ] = False
    error_counts: Annotated[
        dict[str, int], Field(description="Errors by code, including those not listed.")
    ] = Field(default_factory=dict)
    warning_counts: Annotated[
        dict[str, int], Field(description="Warnings by code, including those not listed.")
    ] = Field(default_factory=dict)
    issues_truncated: Annotated[
        bool, Field(description="More issues were found than the report lists.")
    ] = False
    tokens: Annotated[TokenStats | None, Field(description="Length statistics.")] = None
    duplicates: Annotated[DuplicateStats, Field(description="Duplicate statistics.")] = Field(
        default_factory=DuplicateStats
    )
    classes: Annotated[
        ClassBalance | None, Field(description="Class balance, classification data only.")
    ] = None


class ValidationReport(DeferredModel):
    """Everything the validator found. Errors block a job; warnings do not."""

    valid: Annotated[bool, Field(description="True when there is no error.")]
    format: Annotated[
        DatasetFormat | None, Field(description="Detected or declared format; null if unknown.")
    ]
    kind: Annotated[ExampleKind | None, Field(description="Shape the examples normalize to.")] = (
        None
    )
    num_examples: Annotated[int, Field(ge=0, description="Valid examples.")]
    columns_applied: Annotated[
        ColumnMapping | None,
        Field(
            description="The columns the examples were read from, as mapped or as recognised "
            "by name (e.g. prompt: question, completion: answer); null for conversation formats."
        ),
    ] = None
    errors: Annotated[list[Issue], Field(description="Problems that block training.")]
    warnings: Annotated[list[Issue], Field(description="Problems worth fixing.")]
    stats: Annotated[DatasetStats, Field(description="What the data looks like.")]
