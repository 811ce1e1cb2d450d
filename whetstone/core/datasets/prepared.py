"""`prepared.json`: what the trainer's prepare stage found in a job's dataset.

The prepare stage writes it under the job (`JobLayout.prepared`); the workflow's
`record_prepared` step reads it, records the dataset on the job and re-estimates the job
from the real counts, or fails the job with the report's errors.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from whetstone.core.datasets.records import ExampleKind
from whetstone.core.datasets.report import ValidationReport
from whetstone.core.deferred import DeferredModel

# Issues listed in prepared.json (the per-code counts stay exact): it is read by a Lambda.
PREPARED_LISTED_ISSUES = 50


class SplitSize(DeferredModel):
    examples: Annotated[int, Field(ge=0, description="Examples in the split.")]
    tokens: Annotated[int, Field(ge=0, description="Tokens in the split's examples.")]


class PreparedData(DeferredModel):
    """The prepare stage's result: the split sizes, or why the dataset cannot be used."""

    valid: Annotated[bool, Field(description="True when the dataset was split and stored.")]
    message: Annotated[
        str | None, Field(description="Why the dataset is not valid, in a sentence.")
    ] = None
    format: Annotated[str | None, Field(description="Detected or declared format.")] = None
    kind: Annotated[ExampleKind | None, Field(description="Shape of every example.")] = None
    splits: Annotated[
        dict[str, SplitSize], Field(description="Examples and tokens per split name.")
    ] = Field(default_factory=dict)
    tokens_estimated: Annotated[
        bool,
        Field(
            description="True when tokens were estimated at ~4 bytes a token because the base "
            "model's tokenizer could not be loaded; false when it counted them."
        ),
    ] = True
    tokenizer: Annotated[str | None, Field(description="The tokenizer that counted.")] = None
    sha256: Annotated[str | None, Field(description="Hash of the source data as read.")] = None
    bytes_read: Annotated[int, Field(ge=0, description="Bytes of the source read.")] = 0
    base_model_config: Annotated[
        dict[str, Any] | None,
        Field(
            description="The base model's config.json as the prepare stage read it (the "
            "platform takes the model's facts from it when the API could not reach the "
            "model); null when it could not be read there."
        ),
    ] = None
    report: Annotated[
        ValidationReport | None,
        Field(
            description="The validation report, its issue lists capped; null when the "
            "source could not be read at all."
        ),
    ] = None

    @property
    def examples(self) -> int:
        return sum(split.examples for split in self.splits.values())

    @property
    def tokens(self) -> int:
        return sum(split.tokens for split in self.splits.values())

    @property
    def mean_tokens(self) -> float | None:
        return round(self.tokens / self.examples, 2) if self.examples else None
