"""The evaluation report: how the fine-tuned model answers held-out prompts, beside the base.

The trainer writes it after training (`OutputNames.EVALUATION`, and inside the run
manifest); the API returns it from `GET /jobs/{id}/evaluation` and `whet jobs evaluation`
prints it.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field

from whetstone.core.deferred import DeferredModel

# Generation stops taking new prompts once this much time went into it: the scores then
# cover the prompts answered so far, and the report says so (`time_capped`).
EVALUATION_TIME_CAP_S = 600.0
SAMPLE_ROWS = 10  # prompt/expected/answer rows the report keeps
EvaluationSource = Literal["test_split", "prompts_source"]


class EvaluationScores(DeferredModel):
    """One model's scores over the evaluated prompts."""

    exact_match: Annotated[
        float,
        Field(ge=0, le=1, description="Share of answers equal to the expected text (trimmed)."),
    ]
    rouge_l: Annotated[
        float,
        Field(ge=0, le=1, description="Mean ROUGE-L F-measure against the expected text."),
    ]


class EvaluationRow(DeferredModel):
    """One evaluated prompt with the expected answer and what each model answered."""

    prompt: Annotated[str, Field(description="The last user turn of the prompt.")]
    expected: Annotated[str, Field(description="The answer the data holds.")]
    base: Annotated[str | None, Field(description="The base model's answer; null if unscored.")]
    fine_tuned: Annotated[str, Field(description="The fine-tuned model's answer.")]


class EvaluationReport(DeferredModel):
    """What the evaluation step found, or why it was skipped."""

    status: Annotated[
        Literal["completed", "skipped"], Field(description="Whether generations were scored.")
    ]
    reason: Annotated[str | None, Field(description="Why the step was skipped, when it was.")] = (
        None
    )
    source: Annotated[
        EvaluationSource | None, Field(description="Where the prompts came from.")
    ] = None
    samples: Annotated[int, Field(ge=0, description="Prompts answered and scored.")] = 0
    max_new_tokens: Annotated[int, Field(ge=0, description="Tokens generated per answer.")] = 0
    fine_tuned: Annotated[
        EvaluationScores | None, Field(description="The fine-tuned model's scores.")
    ] = None
    base: Annotated[
        EvaluationScores | None,
        Field(description="The base model's scores on the same prompts; null if unscored."),
    ] = None
    base_note: Annotated[
        str | None, Field(description="Why the base model was not scored, when it was not.")
    ] = None
    test_loss: Annotated[
        float | None, Field(description="The fine-tuned model's loss on the test split.")
    ] = None
    test_perplexity: Annotated[float | None, Field(description="exp(test_loss).")] = None
    rows: Annotated[
        list[EvaluationRow], Field(description=f"A sample of at most {SAMPLE_ROWS} answers.")
    ] = Field(default_factory=list)
    seconds: Annotated[float, Field(ge=0, description="Time the generations took.")] = 0.0
    time_cap_s: Annotated[
        float, Field(description="The time the generations may take at most.")
    ] = EVALUATION_TIME_CAP_S
    time_capped: Annotated[
        bool, Field(description="The time cap ended generation before every prompt was answered.")
    ] = False


def skipped(reason: str, *, test_loss: float | None = None) -> EvaluationReport:
    """A report that says why no generations were scored (with the test loss, if any)."""
    return EvaluationReport(
        status="skipped",
        reason=reason,
        test_loss=test_loss,
        test_perplexity=perplexity(test_loss),
    )


def perplexity(loss: float | None) -> float | None:
    """exp(loss), capped at exp(50) so that a diverged run still reports a number."""
    return None if loss is None else math.exp(min(loss, 50.0))
