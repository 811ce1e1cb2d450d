"""A dataset's validation report as the API shows it."""

from __future__ import annotations

from whetstone.api.schemas.base import WireModel, field_of
from whetstone.core.datasets.records import ExampleKind
from whetstone.core.datasets.report import DatasetStats, Issue, ValidationReport
from whetstone.core.spec import ColumnMapping, DatasetFormat


class DatasetValidationResponse(WireModel):
    """Whether a dataset can train, what blocks it, what is worth fixing, what it holds."""

    valid: bool = field_of(ValidationReport, "valid")
    format: DatasetFormat | None = field_of(ValidationReport, "format")
    kind: ExampleKind | None = field_of(ValidationReport, "kind")
    num_examples: int = field_of(ValidationReport, "num_examples")
    columns_applied: ColumnMapping | None = field_of(ValidationReport, "columns_applied")
    errors: list[Issue] = field_of(ValidationReport, "errors")
    warnings: list[Issue] = field_of(ValidationReport, "warnings")
    stats: DatasetStats = field_of(ValidationReport, "stats")
