"""A dataset's validation report as the API shows it."""

from __future__ import annotations

from whetstone.api.schemas.fields import field_of
from whetstone.core.datasets.records import ExampleKind
from whetstone.core.datasets.report import DatasetStats, Issue, ValidationReport
from whetstone.core.deferred import DeferredModel
from whetstone.core.spec import DatasetFormat


class DatasetValidationResponse(DeferredModel):
    """Whether a dataset can train, what blocks it, what is worth fixing, what it holds."""

    valid: bool = field_of(ValidationReport, "valid")
    format: DatasetFormat | None = field_of(ValidationReport, "format")
    kind: ExampleKind | None = field_of(ValidationReport, "kind")
    num_examples: int = field_of(ValidationReport, "num_examples")
    errors: list[Issue] = field_of(ValidationReport, "errors")
    warnings: list[Issue] = field_of(ValidationReport, "warnings")
    stats: DatasetStats = field_of(ValidationReport, "stats")

    @classmethod
    def from_report(cls, report: ValidationReport) -> DatasetValidationResponse:
        return cls(
            valid=report.valid,
            format=report.format,
            kind=report.kind,
            num_examples=report.num_examples,
            errors=report.errors,
            warnings=report.warnings,
            stats=report.stats,
        )
