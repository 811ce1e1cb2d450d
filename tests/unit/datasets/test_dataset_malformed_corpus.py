"""Each malformed input yields exactly one error, with its code and location.

Every case is a file of 120 valid chat lines with one bad line at line 3 (or a
whole-file problem); the validator must name the code, the line and the field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from unit.datasets.dataset_builders import chat, jsonl, report_of

from whetstone.core.datasets.report import IssueCode

GOOD = [chat(i) for i in range(120)]


def _with_line_3(bad: Any) -> bytes:
    records: list[Any] = [*GOOD[:2], bad, *GOOD[2:]]
    return jsonl(records)


def _msgs(*turns: Any) -> dict[str, Any]:
    return {"messages": list(turns)}


U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}
S = {"role": "system", "content": "be brief"}

# (case id, bad line 3, expected code, expected field)
OPENAI_CASES: list[tuple[str, Any, IssueCode, str | None]] = [
    ("invalid json", b'{"messages": [', IssueCode.INVALID_JSON, None),
    ("trailing comma", b'{"messages": [],}', IssueCode.INVALID_JSON, None),
    ("single quotes", b"{'messages': []}", IssueCode.INVALID_JSON, None),
    ("non utf8", b'{"messages": "\xff\xfe"}', IssueCode.NON_UTF8, None),
    ("json string", b'"just a string"', IssueCode.NOT_AN_OBJECT, None),
    ("json array line", b"[1, 2]", IssueCode.NOT_AN_OBJECT, None),
    ("json number", b"42", IssueCode.NOT_AN_OBJECT, None),
    ("unknown keys", {"foo": 1, "bar": 2}, IssueCode.UNRECOGNIZED_RECORD, None),
    (
        "sharegpt line in openai file",
        {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]},
        IssueCode.MIXED_FORMATS,
        None,
    ),
    (
        "alpaca line in openai file",
        {"instruction": "a", "output": "b"},
        IssueCode.MIXED_FORMATS,
        None,
    ),
    ("text line in openai file", {"text": "a"}, IssueCode.MIXED_FORMATS, None),
    ("messages null", {"messages": None}, IssueCode.MISSING_FIELD, "messages"),
    ("messages not a list", {"messages": "hi"}, IssueCode.WRONG_TYPE, "messages"),
    ("messages empty", {"messages": []}, IssueCode.EMPTY_FIELD, "messages"),
    ("message not an object", _msgs(U, "hello"), IssueCode.WRONG_TYPE, "messages[1]"),
    ("role missing", _msgs(U, {"content": "x"}), IssueCode.MISSING_FIELD, "messages[1].role"),
    (
        "role not a string",
        _msgs(U, {"role": 3, "content": "x"}),
        IssueCode.WRONG_TYPE,
        "messages[1].role",
    ),
    (
        "unknown role tool",
        _msgs(U, {"role": "tool", "content": "x"}, A),
        IssueCode.UNKNOWN_ROLE,
        "messages[1].role",
    ),
    (
        "unknown role bot",
        _msgs(U, {"role": "bot", "content": "x"}),
        IssueCode.UNKNOWN_ROLE,
        "messages[1].role",
    ),
    (
        "content missing",
        _msgs(U, {"role": "assistant"}),
        IssueCode.MISSING_FIELD,
        "messages[1].content",
    ),
    (
        "content empty",
        _msgs(U, {"role": "assistant", "content": ""}),
        IssueCode.EMPTY_FIELD,
        "messages[1].content",
    ),
    (
        "content blank",
        _msgs(U, {"role": "assistant", "content": "  \n"}),
        IssueCode.EMPTY_FIELD,
        "messages[1].content",
    ),
    (
        "content number",
        _msgs({"role": "user", "content": 5}, A),
        IssueCode.WRONG_TYPE,
        "messages[0].content",
    ),
    (
        "content image part",
        _msgs({"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}, A),
        IssueCode.WRONG_TYPE,
        "messages[0].content[0]",
    ),
    ("ends with user", _msgs(U, A, U), IssueCode.LAST_TURN_NOT_ASSISTANT, "messages[2].role"),
    ("only system", _msgs(S), IssueCode.LAST_TURN_NOT_ASSISTANT, "messages[0].role"),
    ("system in the middle", _msgs(U, S, A), IssueCode.MISPLACED_SYSTEM, "messages[1].role"),
    (
        "weight on user",
        _msgs({**U, "weight": 1}, A),
        IssueCode.INVALID_WEIGHT,
        "messages[0].weight",
    ),
    ("weight 0.5", _msgs(U, {**A, "weight": 0.5}), IssueCode.INVALID_WEIGHT, "messages[1].weight"),
    (
        "weight string",
        _msgs(U, {**A, "weight": "1"}),
        IssueCode.INVALID_WEIGHT,
        "messages[1].weight",
    ),
]


@pytest.mark.parametrize(
    ("bad", "code", "field"),
    [case[1:] for case in OPENAI_CASES],
    ids=[case[0] for case in OPENAI_CASES],
)
def test_given_one_bad_line_when_validated_then_one_error_names_code_line_and_field(
    bad: Any, code: IssueCode, field: str | None
) -> None:
    report = report_of(_with_line_3(bad))

    assert not report.valid
    assert [(e.code, e.line, e.field) for e in report.errors] == [(code, 3, field)]
    assert report.num_examples == 120


SHAREGPT_GOOD = [
    {"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]}
    for i in range(120)
]
H = {"from": "human", "value": "q"}
G = {"from": "gpt", "value": "a"}
SHAREGPT_CASES: list[tuple[str, Any, IssueCode, str | None]] = [
    (
        "unknown from",
        {"conversations": [H, {"from": "robot", "value": "a"}]},
        IssueCode.UNKNOWN_ROLE,
        "conversations[1].from",
    ),
    (
        "value missing",
        {"conversations": [H, {"from": "gpt"}]},
        IssueCode.MISSING_FIELD,
        "conversations[1].value",
    ),
    (
        "ends with human",
        {"conversations": [H, G, H]},
        IssueCode.LAST_TURN_NOT_ASSISTANT,
        "conversations[2].from",
    ),
    ("conversations empty", {"conversations": []}, IssueCode.EMPTY_FIELD, "conversations"),
    ("system not a string", {"system": 1, "conversations": [H, G]}, IssueCode.WRONG_TYPE, "system"),
]

ALPACA_GOOD = [{"instruction": f"do {i}", "input": "", "output": f"done {i}"} for i in range(120)]
ALPACA_CASES: list[tuple[str, Any, IssueCode, str | None]] = [
    ("output missing", {"instruction": "x"}, IssueCode.MISSING_FIELD, "output"),
    ("output empty", {"instruction": "x", "output": ""}, IssueCode.EMPTY_FIELD, "output"),
    (
        "instruction null",
        {"instruction": None, "output": "y"},
        IssueCode.EMPTY_FIELD,
        "instruction",
    ),
    (
        "input not a string",
        {"instruction": "x", "input": ["a"], "output": "y"},
        IssueCode.WRONG_TYPE,
        "input",
    ),
    (
        "history not pairs",
        {"instruction": "x", "output": "y", "history": [["only one"]]},
        IssueCode.WRONG_TYPE,
        "history[0]",
    ),
    (
        "history not a list",
        {"instruction": "x", "output": "y", "history": "q a"},
        IssueCode.WRONG_TYPE,
        "history",
    ),
]

GENERIC_GOOD = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(120)]
GENERIC_CASES: list[tuple[str, Any, IssueCode, str | None]] = [
    ("completion missing", {"prompt": "p"}, IssueCode.MISSING_FIELD, "completion"),
    ("prompt a list", {"prompt": ["p"], "completion": "c"}, IssueCode.WRONG_TYPE, "prompt"),
    ("text where pairs are", {"text": "t"}, IssueCode.MIXED_KINDS, None),
]


@pytest.mark.parametrize(
    ("good", "bad", "code", "field"),
    [(SHAREGPT_GOOD, *case[1:]) for case in SHAREGPT_CASES]
    + [(ALPACA_GOOD, *case[1:]) for case in ALPACA_CASES]
    + [(GENERIC_GOOD, *case[1:]) for case in GENERIC_CASES],
    ids=[f"sharegpt {c[0]}" for c in SHAREGPT_CASES]
    + [f"alpaca {c[0]}" for c in ALPACA_CASES]
    + [f"jsonl {c[0]}" for c in GENERIC_CASES],
)
def test_given_other_format_with_one_bad_line_when_validated_then_error_is_located(
    good: list[Any], bad: Any, code: IssueCode, field: str | None
) -> None:
    report = report_of(jsonl([*good[:2], bad, *good[2:]]))

    assert [(e.code, e.line, e.field) for e in report.errors] == [(code, 3, field)]


def test_given_classification_with_non_string_label_when_validated_then_wrong_type() -> None:
    good = [{"text": f"t{i}", "label": ["a", "b"][i % 2]} for i in range(120)]
    report = report_of(jsonl([*good[:2], {"text": "x", "label": 1.5}, *good[2:]]))

    assert [(e.code, e.line, e.field) for e in report.errors] == [
        (IssueCode.WRONG_TYPE, 3, "label")
    ]


def test_given_a_line_over_the_row_limit_when_validated_then_row_too_large_at_that_line() -> None:
    long_line = json.dumps(chat(999) | {"pad": "x" * 5000}).encode()
    report = report_of(_with_line_3(long_line), max_row_bytes=2000)

    assert [(e.code, e.line) for e in report.errors] == [(IssueCode.ROW_TOO_LARGE, 3)]
    assert report.num_examples == 120


def test_given_a_file_over_the_size_limit_when_validated_then_file_too_large() -> None:
    report = report_of(jsonl(GOOD), max_file_bytes=1000)

    assert report.errors[0].code is IssueCode.FILE_TOO_LARGE
    assert not report.valid


def test_given_a_json_array_file_when_validated_then_json_array_at_line_1() -> None:
    data = ("[\n" + ",\n".join(json.dumps(r) for r in GOOD) + "\n]\n").encode()

    report = report_of(data)

    assert [(e.code, e.line) for e in report.errors] == [(IssueCode.JSON_ARRAY, 1)]


def test_given_an_empty_file_when_validated_then_empty_file() -> None:
    report = report_of(b"")

    assert [e.code for e in report.errors] == [IssueCode.EMPTY_FILE]


def test_given_99_examples_when_validated_then_too_few_examples_blocks() -> None:
    report = report_of(jsonl(GOOD[:99]))

    assert [e.code for e in report.errors] == [IssueCode.TOO_FEW_EXAMPLES]


def test_given_a_bom_and_a_blank_line_when_validated_then_two_warnings_and_valid() -> None:
    data = b"\xef\xbb\xbf" + jsonl(GOOD[:50]) + b"\n" + jsonl(GOOD[50:])

    report = report_of(data)

    assert report.valid
    assert [(w.code, w.line) for w in report.warnings[:2]] == [
        (IssueCode.BOM, 1),
        (IssueCode.BLANK_LINE, 51),
    ]


def test_given_many_bad_lines_when_validated_then_the_list_is_capped_and_counts_exact() -> None:
    data = jsonl([*GOOD, *([b"{oops"] * 30)])

    report = report_of(data, max_listed_issues=10)

    assert len(report.errors) == 10
    assert report.stats.error_counts == {"invalid_json": 30}
    assert report.stats.issues_truncated
