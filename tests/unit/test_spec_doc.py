"""docs/job-spec.md is generated from the spec models and kept in step with them."""

from __future__ import annotations

from pathlib import Path

from whetstone.core.spec import JobSpec
from whetstone.core.spec_doc import render

DOC = Path(__file__).parents[2] / "docs" / "job-spec.md"
REGENERATE = "python -m whetstone.core.spec_doc > docs/job-spec.md"


def test_the_job_spec_reference_matches_the_models() -> None:
    # Given the committed reference, When it is rendered again, Then nothing changed
    assert DOC.read_text() == render(), f"docs/job-spec.md is stale: run `{REGENERATE}`"


def test_the_reference_lists_every_field_with_its_default_and_range() -> None:
    text = render()

    for name in JobSpec.model_fields:
        assert f"| `{name}` |" in text
    assert "| `epochs` | integer | `3` | ≥ 1, ≤ 50 | Passes through the dataset. |" in text
    assert "| `gpu_type` | `nvidia-t4` or `nvidia-l4`" in text


def test_the_reference_states_the_cross_field_rules() -> None:
    text = render()

    assert "- The three `dataset.split` percentages sum to 100." in text
    assert "`dataset.cutoff_length` is at most `training.max_sequence_length`." in text
    # a validator without a docstring would leave an empty rule behind
    assert "\n- \n" not in text


def test_the_reference_shows_a_range_that_depends_on_the_method() -> None:
    row = next(line for line in render().splitlines() if line.startswith("| `learning_rate`"))

    assert "≤ 0.01 (prompt_tuning: ≤ 0.3)" in row
