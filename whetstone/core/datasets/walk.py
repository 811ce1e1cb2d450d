"""One pass over a dataset: read, detect the format, normalize; yield examples or issues.

The validator and the splitter both walk the data this way, so they always agree
on which examples exist and how each one normalizes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any

from whetstone.core.datasets.normalize import (
    NORMALIZERS,
    Normalized,
    Normalizer,
    applied_columns,
    detect_record_format,
)
from whetstone.core.datasets.options import ColumnMapping, ValidationOptions
from whetstone.core.datasets.preference import normalize_preference
from whetstone.core.datasets.readers import (
    CsvReader,
    ParquetReader,
    Reader,
    open_reader,
)
from whetstone.core.datasets.record_fields import RecordError
from whetstone.core.datasets.records import ExampleKind
from whetstone.core.datasets.report import Issue, IssueCode
from whetstone.core.spec import DatasetFormat

Walked = tuple[int | None, int | None, Normalized] | Issue

_FORMAT_NAMES = {
    DatasetFormat.OPENAI: "OpenAI chat ('messages')",
    DatasetFormat.SHAREGPT: "ShareGPT ('conversations')",
    DatasetFormat.ALPACA: "Alpaca ('instruction'/'output')",
    DatasetFormat.JSONL: "generic JSONL ('text', 'prompt'/'completion' ...)",
    DatasetFormat.PREFERENCE: "preference pairs ('chosen'/'rejected' or 'preferred_output')",
}
_NORMALIZERS: dict[DatasetFormat, Normalizer] = {
    **NORMALIZERS,
    DatasetFormat.PREFERENCE: normalize_preference,
}


def _mapped_format(columns: ColumnMapping) -> DatasetFormat:
    """The format a column mapping implies: preference pairs when it names a side."""
    return DatasetFormat.PREFERENCE if columns.chosen or columns.rejected else DatasetFormat.JSONL


class DatasetWalk:
    """Iterate once over a dataset; `format`, `kind` and the reader's counters fill in."""

    def __init__(self, stream: IO[bytes], options: ValidationOptions) -> None:
        self.options = options
        self.file_format, self.reader = open_reader(
            stream,
            options.format,
            options.filename,
            options.max_file_bytes,
            options.max_row_bytes,
        )
        declared = options.format
        self.format: DatasetFormat | None = (
            declared if declared not in (DatasetFormat.AUTO,) else None
        )
        if self.format is None and self.file_format in (DatasetFormat.CSV, DatasetFormat.PARQUET):
            self.format = self.file_format
        self.kind: ExampleKind | None = None
        self.columns_applied: ColumnMapping | None = None
        self._record_format: DatasetFormat | None = declared if declared in _NORMALIZERS else None

    @property
    def bytes_read(self) -> int:
        return self.reader.bytes_read if self.reader else 0

    @property
    def records_read(self) -> int:
        return self.reader.records_read if self.reader else 0

    def __iter__(self) -> Iterator[Walked]:
        reader = self.reader
        if reader is None:
            yield Issue(
                code=IssueCode.UNKNOWN_FORMAT,
                message="the format could not be detected; name the file .jsonl, .csv or "
                ".parquet, or set the format explicitly",
            )
            return
        columns = self.options.columns
        declared_record_format = self._record_format
        if isinstance(reader, (CsvReader, ParquetReader)):
            yield from self._walk_table(reader, columns)
            return
        if declared_record_format is not None:
            normalizer: Normalizer = _NORMALIZERS[declared_record_format]
        locked: DatasetFormat | None = declared_record_format
        for item in reader:
            if not isinstance(item, tuple):
                yield item
                continue
            line, row, record = item
            if type(record) is not dict:
                yield Issue(
                    code=IssueCode.NOT_AN_OBJECT,
                    message=f"the line is a JSON {type(record).__name__}, not an object; "
                    "write one JSON object per line",
                    line=line,
                )
                continue
            if declared_record_format is None:
                detected = (
                    _mapped_format(columns)
                    if not columns.is_empty()
                    else detect_record_format(record)
                )
                if detected is None:
                    keys = ", ".join(sorted(record)[:8]) or "none"
                    yield Issue(
                        code=IssueCode.UNRECOGNIZED_RECORD,
                        message=f"no known field (keys: {keys}); use 'messages', "
                        "'conversations', 'instruction'/'output', 'text' or "
                        "'prompt'/'completion', or map the columns",
                        line=line,
                    )
                    continue
                if locked is None:
                    locked = detected
                    self.format = detected
                    normalizer = _NORMALIZERS[detected]
                elif detected is not locked:
                    yield Issue(
                        code=IssueCode.MIXED_FORMATS,
                        message=f"this line is {_FORMAT_NAMES[detected]} but the file is "
                        f"{_FORMAT_NAMES[locked]}; use one format per file",
                        line=line,
                    )
                    continue
            yield self._normalized(normalizer, columns, line, row, record)

    def _walk_table(
        self, reader: CsvReader | ParquetReader, columns: ColumnMapping
    ) -> Iterator[Walked]:
        normalizer: Normalizer | None = None
        for item in reader:
            if not isinstance(item, tuple):
                yield item
                continue
            if normalizer is None:
                chosen = self._table_normalizer(reader.columns, columns)
                if isinstance(chosen, Issue):
                    yield chosen
                    return
                normalizer = chosen
            line, row, record = item
            yield self._normalized(normalizer, columns, line, row, record)

    def _normalized(
        self,
        normalizer: Normalizer,
        columns: ColumnMapping,
        line: int | None,
        row: int | None,
        record: Mapping[str, Any],
    ) -> Walked:
        """The record as an example, or the issue that rejects it; the first example sets
        the kind every later one must have."""
        try:
            normalized = normalizer(record, columns)
        except RecordError as error:
            return Issue(
                code=error.code, message=error.message, line=line, row=row, field=error.field
            )
        if self.kind is None:
            self.kind = normalized.kind
            self.columns_applied = applied_columns(normalized.kind, record, columns)
        elif normalized.kind is not self.kind:
            return _mixed_kinds(normalized.kind, self.kind, line, row)
        return (line, row, normalized)

    def _table_normalizer(self, names: list[str], columns: ColumnMapping) -> Normalizer | Issue:
        for field, name in columns.model_dump(exclude_none=True).items():
            if name not in names:
                return Issue(
                    code=IssueCode.UNKNOWN_COLUMN,
                    message=f"the {field} column {name!r} is not in the file (columns: "
                    f"{', '.join(names)}); fix the column mapping",
                    field=field,
                )
        if not columns.is_empty():
            return _NORMALIZERS[_mapped_format(columns)]
        detected = detect_record_format(dict.fromkeys(names))
        if detected is None:
            return Issue(
                code=IssueCode.NO_USABLE_COLUMNS,
                message=f"no known column among {', '.join(names) or 'none'}; name them "
                "text/label or prompt/completion, or map the columns",
            )
        return _NORMALIZERS[detected]


def _mixed_kinds(
    found: ExampleKind, expected: ExampleKind, line: int | None, row: int | None
) -> Issue:
    return Issue(
        code=IssueCode.MIXED_KINDS,
        message=f"this record is a {found} example but the file holds {expected} examples; "
        "give every record the same fields",
        line=line,
        row=row,
    )


def iter_examples(stream: IO[bytes], options: ValidationOptions) -> Iterator[Normalized]:
    """The valid examples of a dataset, in file order, up to `max_samples`."""
    remaining = options.max_samples
    for item in DatasetWalk(stream, options):
        if isinstance(item, tuple):
            yield item[2]
            if remaining is not None:
                remaining -= 1
                if remaining == 0:
                    return


__all__ = ["DatasetWalk", "Reader", "Walked", "iter_examples"]
