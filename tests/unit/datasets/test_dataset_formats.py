"""Good files of every format normalize to the trainer's examples; statistics are right."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from unit.datasets.dataset_builders import chat, jsonl, report_of

from whetstone.core.datasets.options import ColumnMapping, ValidationOptions
from whetstone.core.datasets.records import Example, ExampleKind
from whetstone.core.datasets.report import IssueCode
from whetstone.core.datasets.walk import iter_examples
from whetstone.core.spec import DatasetFormat


def _examples(data: bytes, **options: Any) -> list[Example]:
    stream = io.BytesIO(data)
    return [
        Example.model_validate(n.example)
        for n in iter_examples(stream, ValidationOptions(**options))
    ]


SHAREGPT = {
    "system": "be kind",
    "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}],
}
ALPACA = {"instruction": "add", "input": "1+1", "output": "2", "history": [["q", "a"]]}
OPENAI = {
    "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "u"}]},
        {"role": "assistant", "content": "a", "weight": 0},
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "a2"},
    ]
}


@pytest.mark.parametrize(
    ("record", "fmt", "kind"),
    [
        (OPENAI, DatasetFormat.OPENAI, ExampleKind.CHAT),
        (SHAREGPT, DatasetFormat.SHAREGPT, ExampleKind.CHAT),
        (ALPACA, DatasetFormat.ALPACA, ExampleKind.CHAT),
        ({"text": "t"}, DatasetFormat.JSONL, ExampleKind.TEXT),
        ({"prompt": "p", "completion": "c"}, DatasetFormat.JSONL, ExampleKind.COMPLETION),
        ({"input": "p", "output": "c"}, DatasetFormat.JSONL, ExampleKind.COMPLETION),
        ({"question": "p", "answer": "c"}, DatasetFormat.JSONL, ExampleKind.COMPLETION),
        ({"text": "t", "label": "pos"}, DatasetFormat.JSONL, ExampleKind.CLASSIFICATION),
    ],
)
def test_given_a_good_file_when_validated_then_format_and_kind_are_detected(
    record: dict[str, Any], fmt: DatasetFormat, kind: ExampleKind
) -> None:
    records = [
        {**record, "id": i} if "text" not in record else {**record, "text": f"t{i}"}
        for i in range(120)
    ]
    if "label" in record:
        records = [{**r, "label": ["pos", "neg"][i % 2]} for i, r in enumerate(records)]

    report = report_of(jsonl(records), recommended_examples=100)

    assert report.valid, report.errors
    assert (report.format, report.kind, report.num_examples) == (fmt, kind, 120)


@pytest.mark.parametrize(
    ("record", "turns"),
    [
        pytest.param(
            SHAREGPT,
            [("system", "be kind"), ("user", "hi"), ("assistant", "hello")],
            id="sharegpt-roles-mapped-system-first",
        ),
        pytest.param(
            ALPACA,
            [("user", "q"), ("assistant", "a"), ("user", "add\n\n1+1"), ("assistant", "2")],
            id="alpaca-history-before-the-instruction",
        ),
    ],
)
def test_given_a_conversation_record_when_normalized_then_its_turns_are_in_chat_order(
    record: dict[str, Any], turns: list[tuple[str, str]]
) -> None:
    [example] = _examples(jsonl([record]))

    assert [(t.role, t.content) for t in example.messages or []] == turns


def test_given_openai_weights_and_text_parts_when_normalized_then_kept() -> None:
    [example] = _examples(jsonl([OPENAI]))

    assert example.messages is not None
    assert example.messages[1].content == "u"
    assert example.messages[2].weight == 0


def test_given_a_csv_with_text_and_label_when_validated_then_classification_rows() -> None:
    data = "text,label\n" + "".join(f'"hello, {i}",{"ab"[i % 2]}\n' for i in range(120))

    report = report_of(data.encode(), filename="data.csv")

    assert (report.format, report.kind, report.valid) == (
        DatasetFormat.CSV,
        ExampleKind.CLASSIFICATION,
        True,
    )
    assert report.stats.classes is not None
    assert report.stats.classes.counts == {"a": 60, "b": 60}


def test_given_a_label_per_row_when_validated_then_the_report_lists_only_the_top_50() -> None:
    # Given a "label" column that is really a unique value per row (an id, an email)
    data = "text,label\n" + "".join(f"hello {i},secret-{i:03d}\n" for i in range(120))

    report = report_of(data.encode(), filename="data.csv")

    assert report.stats.classes is not None
    assert len(report.stats.classes.counts) == 50
    assert (report.stats.classes.others, report.stats.classes.num_classes) == (70, 120)
    assert "secret-119" not in report.model_dump_json()


def test_given_a_csv_with_a_short_row_when_validated_then_malformed_csv_at_row_and_line() -> None:
    data = "prompt,completion\n" + "".join(f"p{i},c{i}\n" for i in range(120)) + "lonely\n"

    report = report_of(data.encode(), filename="data.csv")

    assert [(e.code, e.line, e.row) for e in report.errors] == [(IssueCode.MALFORMED_CSV, 122, 121)]


def test_given_a_csv_mapping_to_a_missing_column_when_validated_then_unknown_column() -> None:
    data = "a,b\n" + "x,y\n" * 120

    report = report_of(data.encode(), filename="d.csv", columns=ColumnMapping(text="body"))

    assert [e.code for e in report.errors] == [IssueCode.UNKNOWN_COLUMN]


def test_given_a_csv_with_an_empty_label_when_validated_then_empty_field_at_row() -> None:
    data = "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(120)) + "t,\n"

    report = report_of(data.encode(), filename="d.csv")

    assert [(e.code, e.row, e.field) for e in report.errors] == [
        (IssueCode.EMPTY_FIELD, 121, "label")
    ]


def test_given_a_parquet_file_with_mapped_columns_when_validated_then_completion_rows() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {"q": [f"q{i}" for i in range(120)], "a": [f"a{i}" for i in range(119)] + [None]}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)

    report = report_of(sink.getvalue(), columns=ColumnMapping(prompt="q", completion="a"))

    assert (report.format, report.kind) == (DatasetFormat.PARQUET, ExampleKind.COMPLETION)
    assert [(e.code, e.row, e.field) for e in report.errors] == [(IssueCode.EMPTY_FIELD, 120, "a")]


def test_given_a_declared_format_when_lines_are_of_another_then_missing_field() -> None:
    report = report_of(jsonl([chat(i) for i in range(120)]), format=DatasetFormat.ALPACA)

    assert report.errors[0].code is IssueCode.MISSING_FIELD
    assert report.errors[0].field == "instruction"


def test_given_15_percent_duplicates_when_validated_then_duplicates_warning_at_first() -> None:
    records = [chat(i) for i in range(100)] + [chat(0)] * 15

    report = report_of(jsonl(records))

    assert report.stats.duplicates.exact == 15
    warning = next(w for w in report.warnings if w.code is IssueCode.DUPLICATES)
    assert warning.line == 101


def test_given_case_and_punctuation_variants_when_validated_then_near_duplicates() -> None:
    records = [{"text": f"Hello world number {i}!"} for i in range(100)]
    records += [{"text": f"hello, WORLD number {i}"} for i in range(20)]

    report = report_of(jsonl(records))

    assert (report.stats.duplicates.exact, report.stats.duplicates.near) == (0, 20)
    assert IssueCode.NEAR_DUPLICATES in report.stats.warning_counts


def test_given_a_dataset_beyond_the_digest_bound_when_validated_then_duplicates_estimated() -> None:
    records = [{"text": f"example {i % 3000}"} for i in range(6000)]

    report = report_of(jsonl(records), max_tracked_digests=1024)

    assert report.stats.duplicates.sample_rate < 1
    assert 0.35 < report.stats.duplicates.exact_share < 0.65


def test_given_a_20_to_1_class_ratio_when_validated_then_class_imbalance_warning() -> None:
    records = [{"text": f"t{i}", "label": "common"} for i in range(200)]
    records += [{"text": f"r{i}", "label": "rare"} for i in range(10)]

    report = report_of(jsonl(records))

    assert report.stats.classes is not None
    assert report.stats.classes.imbalance_ratio == 20
    assert IssueCode.CLASS_IMBALANCE in report.stats.warning_counts


def test_given_long_examples_when_validated_then_truncation_share_and_histogram() -> None:
    records = [{"text": "x" * 4000 if i < 30 else f"short {i}"} for i in range(120)]

    report = report_of(jsonl(records), cutoff_length=512)

    tokens = report.stats.tokens
    assert tokens is not None
    assert (tokens.truncated, tokens.truncated_share) == (30, 0.25)
    assert sum(b.count for b in tokens.histogram) == 120
    assert any(b.lower == 512 for b in tokens.histogram)
    assert IssueCode.TRUNCATION in report.stats.warning_counts


def test_given_max_samples_when_validated_then_reading_stops_there() -> None:
    report = report_of(jsonl([chat(i) for i in range(300)] + [b"{bad"]), max_samples=150)

    assert (report.num_examples, report.valid) == (150, True)
    assert report.stats.stopped_at_max_samples


def test_given_a_tokenizer_when_validated_then_counts_are_exact(tmp_path: Any) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(
        ["hello world"] * 10, trainers.BpeTrainer(vocab_size=50, special_tokens=["[UNK]"])
    )
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    from whetstone.core.datasets.tokens import load_token_counter
    from whetstone.core.datasets.validator import validate_dataset

    counter = load_token_counter(tmp_path)
    report = validate_dataset(
        io.BytesIO(jsonl([{"text": "hello world"}] * 120)),
        ValidationOptions(),
        token_counter=counter,
    )

    assert report.stats.tokens is not None
    assert report.stats.tokens.method == "exact"
    assert report.stats.tokens.max == 2


def test_given_unknown_content_when_sniffed_then_unknown_format() -> None:
    report = report_of(b"just some words\nwithout structure\n")

    assert [e.code for e in report.errors] == [IssueCode.UNKNOWN_FORMAT]


def test_given_records_when_serialized_then_the_trainer_example_parses_back() -> None:
    [example] = _examples(jsonl([{"text": "t", "label": 3}]))

    assert json.loads(example.model_dump_json())["label"] == "3"
