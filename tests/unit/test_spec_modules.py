"""The spec's sections live in modules of their own, and `whetstone.core.spec` still answers
for every name the trainer and the platform import from it."""

from __future__ import annotations

import pytest

from whetstone.core import spec, spec_dataset, spec_methods
from whetstone.core.spec_section import SpecSection


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("Method", spec_methods),
        ("LORA_METHODS", spec_methods),
        ("ADAPTER_METHODS", spec_methods),
        ("ALL_LINEAR", spec_methods),
        ("LoraParams", spec_methods),
        ("QuantizationParams", spec_methods),
        ("QuantBits", spec_methods),
        ("DatasetFormat", spec_dataset),
        ("ColumnMapping", spec_dataset),
    ],
)
def test_given_a_moved_name_when_imported_from_the_spec_then_it_is_the_sections_own(
    name: str, module: object
) -> None:
    assert getattr(spec, name) is getattr(module, name)


def test_given_the_job_spec_then_each_of_its_sections_refuses_unknown_fields_by_reference() -> None:
    sections = [
        field.annotation
        for field in spec.JobSpec.model_fields.values()
        if isinstance(field.annotation, type) and issubclass(field.annotation, SpecSection)
    ]

    assert {section.__name__ for section in sections} == {
        "LoraParams",
        "QuantizationParams",
        "PromptTuningParams",
        "DpoParams",
        "DatasetParams",
        "TrainingParams",
        "AdvancedParams",
        "HardwareParams",
        "EvaluationParams",
    }
    assert {section.field_reference for section in sections} == {"docs/job-spec.md"}
