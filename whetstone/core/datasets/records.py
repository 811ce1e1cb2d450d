"""The normalized example: what every reader produces and the trainer consumes.

Split files are JSON lines, one `Example` per line, named `train.jsonl`,
`validation.jsonl` and `test.jsonl`, beside a `manifest.json` (`SplitManifest`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from whetstone.core.deferred import DeferredModel

SPLIT_NAMES = ("train", "validation", "test")
MANIFEST_NAME = "manifest.json"


def split_file(split: str) -> str:
    """The file name of one split (train, validation or test)."""
    return f"{split}.jsonl"


class ExampleKind(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    TEXT = "text"
    CLASSIFICATION = "classification"
    PREFERENCE = "preference"


Role = Literal["system", "user", "assistant"]


class Turn(DeferredModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Annotated[Role, Field(description="Who speaks.")]
    content: Annotated[str, Field(description="What is said.")]
    weight: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="Assistant turns only: 0 excludes the turn from the loss, 1 (or null) "
            "trains on it.",
        ),
    ] = None


class Example(DeferredModel):
    """One training example in one of five shapes, named by `kind`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Annotated[ExampleKind, Field(description="Which of the fields below are set.")]
    messages: Annotated[
        list[Turn] | None,
        Field(
            description="chat: the conversation, ending with assistant; preference: the "
            "prompt conversation, ending with user."
        ),
    ] = None
    prompt: Annotated[str | None, Field(description="completion: the input.")] = None
    completion: Annotated[str | None, Field(description="completion: the target output.")] = None
    text: Annotated[str | None, Field(description="text, classification: the text.")] = None
    label: Annotated[str | None, Field(description="classification: the class label.")] = None
    chosen: Annotated[str | None, Field(description="preference: the preferred answer.")] = None
    rejected: Annotated[str | None, Field(description="preference: the rejected answer.")] = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Self:
        required = {
            ExampleKind.CHAT: ("messages",),
            ExampleKind.COMPLETION: ("prompt", "completion"),
            ExampleKind.TEXT: ("text",),
            ExampleKind.CLASSIFICATION: ("text", "label"),
            ExampleKind.PREFERENCE: ("messages", "chosen", "rejected"),
        }[self.kind]
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} example needs {', '.join(missing)}")
        return self


class SplitManifest(DeferredModel):
    """What the split step wrote, for the trainer and the job record."""

    model_config = ConfigDict(extra="forbid")

    format: Annotated[str, Field(description="Detected or declared source format.")]
    kind: Annotated[ExampleKind, Field(description="Shape of every example.")]
    counts: Annotated[dict[str, int], Field(description="Examples per split name.")]
    sha256: Annotated[str, Field(description="Hash of the source data as read.")]
    seed: Annotated[int, Field(description="Seed of the shuffle.")]
    mean_tokens: Annotated[
        float | None, Field(description="Mean tokens per example, when measured.")
    ] = None
