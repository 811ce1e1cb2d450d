"""Column names people use are recognised without a mapping, and the report says which."""

from __future__ import annotations

import pytest
from unit.datasets.dataset_builders import jsonl, report_of

from whetstone.core.datasets.records import ExampleKind
from whetstone.core.spec import ColumnMapping


@pytest.mark.parametrize(
    ("prompt", "completion"),
    [
        ("prompt", "response"),
        ("question", "answer"),
        ("instruction", "output"),
        ("input", "output"),
        ("query", "response"),
        ("prompt", "completion"),
    ],
)
def test_given_common_column_names_when_validated_then_recognised_and_reported(
    prompt: str, completion: str
) -> None:
    # Given records with a common pair of names and no mapping
    data = jsonl([{prompt: f"ask {i}", completion: f"reply {i}"} for i in range(100)])
    # When validated
    report = report_of(data)
    # Then every record trains, and the report names the columns it read
    assert report.valid, report.errors
    assert report.kind in (ExampleKind.COMPLETION, ExampleKind.CHAT)
    assert report.columns_applied == ColumnMapping(prompt=prompt, completion=completion)


def test_given_a_mapping_when_validated_then_the_report_repeats_it() -> None:
    # Given text in a column mapped by hand
    data = jsonl([{"body": f"text {i}"} for i in range(100)])
    # When validated with the mapping
    report = report_of(data, columns=ColumnMapping(text="body"))
    # Then the report says it read the text from that column
    assert report.columns_applied == ColumnMapping(text="body")


def test_given_a_conversation_format_when_validated_then_no_columns_are_reported() -> None:
    # Given OpenAI chat records
    data = jsonl(
        [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}]
    )
    # When validated
    report = report_of(data, min_examples=1)
    # Then no column mapping applies
    assert report.columns_applied is None
