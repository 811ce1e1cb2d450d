"""A job's evaluation report as the API shows it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from whetstone.api.schemas.base import WireModel, field_of
from whetstone.core.evaluation import (
    EvaluationReport,
    EvaluationRow,
    EvaluationScores,
    EvaluationSource,
)


class EvaluationResponse(WireModel):
    """How the fine-tuned model answers held-out prompts, beside its base model."""

    job_id: str = Field(description="The job evaluated.")
    status: Literal["completed", "skipped"] = field_of(EvaluationReport, "status")
    reason: str | None = field_of(EvaluationReport, "reason")
    source: EvaluationSource | None = field_of(EvaluationReport, "source")
    samples: int = field_of(EvaluationReport, "samples")
    max_new_tokens: int = field_of(EvaluationReport, "max_new_tokens")
    fine_tuned: EvaluationScores | None = field_of(EvaluationReport, "fine_tuned")
    base: EvaluationScores | None = field_of(EvaluationReport, "base")
    base_note: str | None = field_of(EvaluationReport, "base_note")
    test_loss: float | None = field_of(EvaluationReport, "test_loss")
    test_perplexity: float | None = field_of(EvaluationReport, "test_perplexity")
    rows: list[EvaluationRow] = field_of(EvaluationReport, "rows")
    seconds: float = field_of(EvaluationReport, "seconds")
    time_cap_s: float = field_of(EvaluationReport, "time_cap_s")
    time_capped: bool = field_of(EvaluationReport, "time_capped")

    @classmethod
    def of(cls, job_id: str, report: EvaluationReport) -> EvaluationResponse:
        return cls.model_validate({"job_id": job_id, **dict(report)})
