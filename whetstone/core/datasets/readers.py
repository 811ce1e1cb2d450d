"""Readers: a binary stream in, located raw records (or located problems) out.

A reader yields `(line, row, record)` tuples, where `record` is a dict, or an
`Issue` for a line or row that could not be read; a fatal issue ends the
iteration. Readers count the bytes they consume and enforce the file and row
size limits, so nothing is ever buffered beyond one row (one record batch for
Parquet).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import IO, Any

import orjson

from whetstone.core.datasets.report import Issue, IssueCode
from whetstone.core.spec import DatasetFormat

BOM = b"\xef\xbb\xbf"
PARQUET_MAGIC = b"PAR1"
JSON_FORMATS = frozenset(
    {DatasetFormat.JSONL, DatasetFormat.ALPACA, DatasetFormat.SHAREGPT, DatasetFormat.OPENAI}
)
SNIFF_BYTES = 64 * 1024

Located = tuple[int | None, int | None, Any]
ReadItem = Located | Issue


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


def file_too_large(limit: int) -> Issue:
    return Issue(
        code=IssueCode.FILE_TOO_LARGE,
        message=f"the file is larger than the {_mib(limit)} limit; split it, or use "
        "max_samples on a smaller extract",
    )


class _Counting:
    """Shared counters and the file-size limit."""

    def __init__(self, max_file_bytes: int, max_row_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_row_bytes = max_row_bytes
        self.bytes_read = 0
        self.records_read = 0


class JsonLinesReader(_Counting):
    """One JSON object per line."""

    def __init__(self, stream: IO[bytes], max_file_bytes: int, max_row_bytes: int) -> None:
        super().__init__(max_file_bytes, max_row_bytes)
        self._stream = stream

    def __iter__(self) -> Iterator[ReadItem]:
        readline = self._stream.readline
        limit = self.max_row_bytes
        max_file = self.max_file_bytes
        loads, fast_loads, fast_error = json.loads, orjson.loads, orjson.JSONDecodeError
        line_no = 0
        while True:
            raw = readline(limit + 2)
            if not raw:
                return
            line_no += 1
            self.bytes_read += len(raw)
            if self.bytes_read > max_file:
                yield file_too_large(max_file)
                return
            if len(raw) > limit + 1 or (len(raw) > limit and not raw.endswith(b"\n")):
                self.records_read += 1
                yield self._skip_long_line(line_no, raw)
                if self.bytes_read > max_file:
                    yield file_too_large(max_file)
                    return
                continue
            if line_no == 1 and raw.startswith(BOM):
                raw = raw[3:]
                yield Issue(
                    code=IssueCode.BOM,
                    message="the file starts with a UTF-8 byte order mark; it was ignored, "
                    "but save the file as UTF-8 without BOM",
                    line=1,
                )
            try:
                try:
                    record = fast_loads(raw)
                except fast_error:  # the standard parser says precisely what is wrong
                    record = loads(raw.decode())
            except UnicodeDecodeError as error:
                self.records_read += 1
                yield Issue(
                    code=IssueCode.NON_UTF8,
                    message=f"byte {error.start + 1} is not valid UTF-8; save the file as UTF-8",
                    line=line_no,
                )
                continue
            except ValueError as error:
                if not raw.strip():
                    yield Issue(
                        code=IssueCode.BLANK_LINE,
                        message="blank line skipped; remove it",
                        line=line_no,
                    )
                    continue
                if line_no == 1 and raw.lstrip().startswith(b"["):
                    yield Issue(
                        code=IssueCode.JSON_ARRAY,
                        message="the file is one JSON array, not JSON lines; write one object "
                        "per line, e.g. `jq -c '.[]' data.json > data.jsonl`",
                        line=1,
                    )
                    return
                self.records_read += 1
                message = getattr(error, "msg", str(error))
                column = getattr(error, "colno", None)
                where = f" at column {column}" if column else ""
                yield Issue(
                    code=IssueCode.INVALID_JSON,
                    message=f"invalid JSON{where}: {message}; each line must be one complete "
                    "JSON object",
                    line=line_no,
                )
                continue
            self.records_read += 1
            yield (line_no, None, record)

    def _skip_long_line(self, line_no: int, chunk: bytes) -> Issue:
        readline = self._stream.readline
        while not chunk.endswith(b"\n"):
            chunk = readline(1024 * 1024)
            self.bytes_read += len(chunk)
            if not chunk or self.bytes_read > self.max_file_bytes:
                break
        return Issue(
            code=IssueCode.ROW_TOO_LARGE,
            message=f"the line is longer than the {_mib(self.max_row_bytes)} limit per row; "
            "shorten or split the example",
            line=line_no,
        )


class CsvReader(_Counting):
    """A header row, then one record per row; cells are strings."""

    def __init__(self, stream: IO[bytes], max_file_bytes: int, max_row_bytes: int) -> None:
        super().__init__(max_file_bytes, max_row_bytes)
        self._stream = stream
        self.columns: list[str] = []
        self._bad_line: int | None = None
        self._line_no = 0
        self.fatal: Issue | None = None

    def _lines(self) -> Iterator[str]:
        for raw in iter(lambda: self._stream.readline(self.max_row_bytes + 2), b""):
            self._line_no += 1
            self.bytes_read += len(raw)
            if self.bytes_read > self.max_file_bytes:
                self.fatal = file_too_large(self.max_file_bytes)
                return
            if len(raw) > self.max_row_bytes + 1 or (
                len(raw) > self.max_row_bytes and not raw.endswith(b"\n")
            ):
                self.fatal = Issue(
                    code=IssueCode.ROW_TOO_LARGE,
                    message=f"the line is longer than the {_mib(self.max_row_bytes)} limit per "
                    "row; shorten or split the example",
                    line=self._line_no,
                )
                return
            if self._line_no == 1 and raw.startswith(BOM):
                raw = raw[3:]
                self.bom = True
            try:
                yield raw.decode()
            except UnicodeDecodeError:
                if self._bad_line is None:
                    self._bad_line = self._line_no
                yield raw.decode(errors="replace")

    def __iter__(self) -> Iterator[ReadItem]:
        self.bom = False
        lines = self._lines()
        first = next(lines, None)
        if first is None:
            if self.fatal:
                yield self.fatal
            return
        delimiter = max(",\t;|", key=first.count)
        reader = csv.reader(_prepend(first, lines), delimiter=delimiter)
        try:
            header = next(reader)
        except csv.Error as error:
            yield Issue(code=IssueCode.MALFORMED_CSV, message=f"bad header: {error}", line=1)
            return
        if self.bom:
            yield Issue(
                code=IssueCode.BOM,
                message="the file starts with a UTF-8 byte order mark; it was ignored, but "
                "save the file as UTF-8 without BOM",
                line=1,
            )
        self.columns = [name.strip() for name in header]
        width = len(self.columns)
        row_no = 0
        while True:
            start = self._line_no + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                yield Issue(
                    code=IssueCode.MALFORMED_CSV,
                    message=f"unreadable CSV ({error}); check the quoting",
                    line=start,
                    row=row_no + 1,
                )
                return
            row_no += 1
            self.records_read += 1
            if self._bad_line is not None:
                yield Issue(
                    code=IssueCode.NON_UTF8,
                    message="the row is not valid UTF-8; save the file as UTF-8",
                    line=self._bad_line,
                    row=row_no,
                )
                self._bad_line = None
                continue
            if len(cells) != width:
                if not any(cell.strip() for cell in cells):
                    self.records_read -= 1
                    row_no -= 1
                    yield Issue(
                        code=IssueCode.BLANK_LINE,
                        message="blank line skipped; remove it",
                        line=start,
                    )
                    continue
                yield Issue(
                    code=IssueCode.MALFORMED_CSV,
                    message=f"the row has {len(cells)} fields but the header has {width}; "
                    "quote fields that contain the delimiter",
                    line=start,
                    row=row_no,
                )
                continue
            yield (start, row_no, dict(zip(self.columns, cells, strict=True)))
        if self.fatal:
            yield self.fatal


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


class ParquetReader(_Counting):
    """Row groups read in batches; pyarrow is imported only here."""

    BATCH_ROWS = 1024

    def __init__(self, stream: IO[bytes], max_file_bytes: int, max_row_bytes: int) -> None:
        super().__init__(max_file_bytes, max_row_bytes)
        self._stream = stream
        self.columns: list[str] = []

    def __iter__(self) -> Iterator[ReadItem]:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        size = self._stream.seek(0, io.SEEK_END)
        self._stream.seek(0)
        if size > self.max_file_bytes:
            yield file_too_large(self.max_file_bytes)
            return
        self.bytes_read = size
        try:
            parquet = pq.ParquetFile(self._stream)
        except (pa.ArrowException, OSError) as error:
            yield Issue(
                code=IssueCode.PARQUET_UNREADABLE,
                message=f"not a readable Parquet file ({error}); re-export it",
            )
            return
        self.columns = list(parquet.schema_arrow.names)
        row_no = 0
        try:
            for batch in parquet.iter_batches(batch_size=self.BATCH_ROWS):
                for record in batch.to_pylist():
                    row_no += 1
                    self.records_read += 1
                    yield (None, row_no, record)
        except (pa.ArrowException, OSError) as error:
            yield Issue(
                code=IssueCode.PARQUET_UNREADABLE,
                message=f"the Parquet file is damaged after row {row_no} ({error}); re-export it",
                row=row_no + 1,
            )


Reader = JsonLinesReader | CsvReader | ParquetReader


class _Replay(io.RawIOBase):
    """A non-seekable stream with its first bytes already read, readable again."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def sniff_format(head: bytes, filename: str | None) -> DatasetFormat | None:
    """The file-level format from the name and the first bytes: jsonl, csv, parquet or None."""
    if head.startswith(PARQUET_MAGIC):
        return DatasetFormat.PARQUET
    name = (filename or "").lower()
    if name.endswith(".parquet"):
        return DatasetFormat.PARQUET
    if name.endswith((".csv", ".tsv")):
        return DatasetFormat.CSV
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return DatasetFormat.JSONL
    text = head.removeprefix(BOM).lstrip()
    if not text:
        return DatasetFormat.JSONL
    if text.startswith((b"{", b"[")):
        return DatasetFormat.JSONL
    first_line = text.split(b"\n", 1)[0]
    if any(sep in first_line for sep in (b",", b"\t", b";")):
        return DatasetFormat.CSV
    return None


def open_reader(
    stream: IO[bytes],
    declared: DatasetFormat,
    filename: str | None,
    max_file_bytes: int,
    max_row_bytes: int,
) -> tuple[DatasetFormat | None, Reader | None]:
    """Pick the reader: the declared format, else the sniffed one (None when unknown)."""
    if declared in JSON_FORMATS:
        file_format: DatasetFormat | None = DatasetFormat.JSONL
        head = b""
    else:
        head = stream.read(SNIFF_BYTES)
        file_format = (
            declared if declared is not DatasetFormat.AUTO else sniff_format(head, filename)
        )
    if head:
        if stream.seekable():
            stream.seek(0)
        else:
            stream = io.BufferedReader(_Replay(head, stream), buffer_size=1024 * 1024)
    if file_format is None:
        return None, None
    if file_format is DatasetFormat.PARQUET:
        if not stream.seekable():
            raise ValueError("a Parquet stream must be seekable; spool it to a file first")
        return file_format, ParquetReader(stream, max_file_bytes, max_row_bytes)
    if file_format is DatasetFormat.CSV:
        return file_format, CsvReader(stream, max_file_bytes, max_row_bytes)
    return DatasetFormat.JSONL, JsonLinesReader(stream, max_file_bytes, max_row_bytes)
