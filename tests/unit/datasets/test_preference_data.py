"""Preference pairs (dpo): both shapes, their own validation codes, and the method check."""

from __future__ import annotations

import io
from typing import Any

import pytest
from unit.datasets.dataset_builders import chat, jsonl, report_of

from whetstone.core.datasets.options import ColumnMapping, ValidationOptions
from whetstone.core.datasets.records import Example, ExampleKind
from whetstone.core.datasets.report import IssueCode
from whetstone.core.datasets.walk import iter_examples
from whetstone.core.spec import DatasetFormat


def _openai_pair(i: int) -> dict[str, Any]:
    return {
        "input": {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"question {i}?"},
            ]
        },
        "preferred_output": [{"role": "assistant", "content": f"good answer {i}"}],
        "non_preferred_output": [{"role": "assistant", "content": f"bad answer {i}"}],
    }


def _column_pair(i: int) -> dict[str, Any]:
    return {"prompt": f"question {i}?", "chosen": f"good {i}", "rejected": f"bad {i}"}


def _first_example(data: bytes, **options: Any) -> Example:
    normalized = next(iter_examples(io.BytesIO(data), ValidationOptions(**options)))
    return Example.model_validate(normalized.example)


@pytest.mark.parametrize("record", [_openai_pair, _column_pair])
def test_given_preference_pairs_when_validated_then_detected_as_preference(record: Any) -> None:
    # Given 100 pairs in one of the two shapes
    data = jsonl([record(i) for i in range(100)])
    # When validated
    report = report_of(data)
    # Then they are preference examples, with no error
    assert report.valid, report.errors
    assert (report.format, report.kind) == (DatasetFormat.PREFERENCE, ExampleKind.PREFERENCE)
    assert report.num_examples == 100


def test_given_openai_pairs_when_normalized_then_the_prompt_keeps_its_turns() -> None:
    # Given OpenAI's preference shape with a system turn
    data = jsonl([_openai_pair(7)])
    # When normalized
    example = _first_example(data)
    # Then the prompt conversation ends with the user, and each side is its text
    assert example.kind is ExampleKind.PREFERENCE
    assert [t.role for t in example.messages or []] == ["system", "user"]
    assert (example.chosen, example.rejected) == ("good answer 7", "bad answer 7")


def test_given_mapped_preference_columns_when_normalized_then_read_from_them() -> None:
    # Given a file whose pair lives in columns with other names, and a mapping
    data = jsonl([{"q": "why?", "good": "because", "bad": "dunno"}])
    # When normalized with the mapping
    mapping = ColumnMapping(prompt="q", chosen="good", rejected="bad")
    example = _first_example(data, columns=mapping)
    # Then the example reads those columns
    assert example.messages is not None and example.messages[0].content == "why?"
    assert (example.chosen, example.rejected) == ("because", "dunno")


@pytest.mark.parametrize(
    ("record", "code", "field"),
    [
        ({"prompt": "q", "chosen": "same", "rejected": "same"}, IssueCode.IDENTICAL_PAIR, None),
        ({"prompt": " ", "chosen": "a", "rejected": "b"}, IssueCode.EMPTY_PROMPT, "prompt"),
        ({"prompt": "q", "chosen": "a"}, IssueCode.MISSING_SIDE, "rejected"),
        ({"prompt": "q", "chosen": "", "rejected": "b"}, IssueCode.MISSING_SIDE, "chosen"),
        (
            {**_openai_pair(1), "input": {"messages": []}},
            IssueCode.EMPTY_PROMPT,
            "input.messages",
        ),
        (
            {**_openai_pair(1), "non_preferred_output": []},
            IssueCode.MISSING_SIDE,
            "non_preferred_output",
        ),
        (
            {**_openai_pair(1), "input": {"messages": [{"role": "assistant", "content": "hi"}]}},
            IssueCode.PROMPT_NOT_USER_LAST,
            "input.messages[0].role",
        ),
        (
            {**_openai_pair(1), "input": {"messages": [{"role": "robot", "content": "hi"}]}},
            IssueCode.UNKNOWN_ROLE,
            "input.messages[0].role",
        ),
    ],
)
def test_given_a_broken_pair_when_validated_then_its_own_code_and_field(
    record: dict[str, Any], code: IssueCode, field: str | None
) -> None:
    # Given one broken pair among good ones
    data = jsonl([_column_pair(0) if "prompt" in record else _openai_pair(0), record])
    # When validated
    report = report_of(data, min_examples=1)
    # Then the broken line has the pair's own code, at its field
    broken = [e for e in report.errors if e.line == 2]
    assert [(e.code, e.field) for e in broken] == [(code, field)]


def test_given_a_dpo_job_when_its_data_is_not_pairs_then_method_data_mismatch() -> None:
    # Given chat data checked for a dpo job
    data = jsonl([chat(i) for i in range(100)])
    # When validated expecting preference pairs
    report = report_of(data, preference=True)
    # Then it is refused, naming the method and the formats it takes
    assert not report.valid
    [error] = report.errors
    assert error.code is IssueCode.METHOD_DATA_MISMATCH
    assert "dpo" in error.message and "chosen" in error.message


def test_given_preference_pairs_when_the_method_is_not_dpo_then_method_data_mismatch() -> None:
    # Given pairs checked for a job of another method
    data = jsonl([_column_pair(i) for i in range(100)])
    # When validated expecting no pairs
    report = report_of(data, preference=False)
    # Then it is refused, saying dpo is the method that trains on them
    [error] = report.errors
    assert error.code is IssueCode.METHOD_DATA_MISMATCH
    assert "method: dpo" in error.message
