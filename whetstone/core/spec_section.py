"""What every section of the job spec is: a model that refuses unknown fields by name,
pointing at docs/job-spec.md."""

from __future__ import annotations

from whetstone.core.strict import StrictModel

SPEC_REFERENCE = "docs/job-spec.md"


class SpecSection(StrictModel):
    """A spec section: unknown fields are rejected so a typo never passes silently."""

    field_reference = SPEC_REFERENCE
