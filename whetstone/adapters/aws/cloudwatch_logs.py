"""The LogStore on CloudWatch Logs: one log group, one stream per job and source.

Stream `<job_id>/<source>` (source: build, deployment, training), created on the
first append. Each event's message is the LogEntry as JSON (so the microseconds,
level and fields come back), its timestamp the entry's time in milliseconds.

- append: entries sorted by time, sent with PutLogEvents in batches within the
  service's limits (10,000 events, 1,048,576 bytes counting 26 bytes per event,
  a span under 24 hours).
- query: FilterLogEvents over the job's streams (`logStreamNamePrefix=<job_id>/`,
  or the one stream of a source), startTime/endTime in milliseconds; the level,
  the exact time range `[start, end)` and the stream are checked again on each
  entry. The cursor is the base64 of the FilterLogEvents token the page was read
  from and the offset of the next event in that page, so `limit` is exact. A query
  makes at most MAX_FILTER_CALLS calls: a filter that matches little answers a short
  (maybe empty) page and a cursor at the next token.
- delete: DescribeLogStreams by the job's prefix, then DeleteLogStream each.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, get_args

import boto3
from pydantic import ValidationError

from whetstone.core.batches import split_batches
from whetstone.core.errors import InvalidInputError
from whetstone.core.job import LogEntry, LogSource, level_at_least
from whetstone.core.logs import LogQuery
from whetstone.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_logs.client import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import (
        DescribeLogStreamsRequestTypeDef,
        FilteredLogEventTypeDef,
        FilterLogEventsRequestTypeDef,
        InputLogEventTypeDef,
    )

SOURCES: tuple[LogSource, ...] = get_args(LogSource)
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000 - 1
# Every FilterLogEvents call asks for this many events, so that a cursor's offset
# points at the same event when its page is read again.
FILTER_PAGE_SIZE = 1000
# The FilterLogEvents calls one query makes at most (so at most 10,000 events read).
MAX_FILTER_CALLS = 10
_TRUNCATED = " [truncated]"


def stream_name(job_id: str, source: LogSource) -> str:
    return f"{job_id}/{source}"


def stream_prefix(job_id: str) -> str:
    return f"{job_id}/"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch (a naive time is taken as UTC)."""
    delta = _utc(moment) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down, as CloudWatch timestamps are."""
    return to_micros(moment) // 1000


def event_message(entry: LogEntry) -> str:
    """The entry as JSON, its message cut short when the event would pass the size limit."""
    message = entry.model_dump_json()
    text = entry.message
    while len(message.encode()) > MAX_EVENT_BYTES and text:
        excess = len(message.encode()) - MAX_EVENT_BYTES
        text = text[: max(len(text) - excess - len(_TRUNCATED), 0)]
        cut = entry.model_copy(update={"message": text + _TRUNCATED, "fields": {"truncated": True}})
        message = cut.model_dump_json()
    return message


def put_batches(entries: Sequence[LogEntry]) -> list[list[InputLogEventTypeDef]]:
    """The events of one stream, oldest first, split into PutLogEvents batches (a batch may
    span at most MAX_BATCH_SPAN_MS)."""
    events: list[InputLogEventTypeDef] = [
        {"timestamp": to_millis(entry.time), "message": event_message(entry)}
        for entry in sorted(entries, key=lambda entry: _utc(entry.time))
    ]
    return split_batches(
        events,
        size=lambda event: len(event["message"].encode()) + EVENT_OVERHEAD_BYTES,
        max_count=MAX_BATCH_EVENTS,
        max_bytes=MAX_BATCH_BYTES,
        must_split=lambda batch, event: (
            event["timestamp"] - batch[0]["timestamp"] > MAX_BATCH_SPAN_MS
        ),
    )


def filter_request(
    log_group: str, job_id: str, query: LogQuery, token: str | None
) -> FilterLogEventsRequestTypeDef:
    """One FilterLogEvents call over the job's streams (or the source's one)."""
    request: FilterLogEventsRequestTypeDef = {
        "logGroupName": log_group,
        "limit": FILTER_PAGE_SIZE,
        # Ignored by CloudWatch (always interleaved since 2019); moto needs it to
        # merge the streams by time.
        "interleaved": True,
    }
    if query.source is None:
        request["logStreamNamePrefix"] = stream_prefix(job_id)
    else:
        request["logStreamNames"] = [stream_name(job_id, query.source)]
    if query.start is not None:
        request["startTime"] = to_millis(query.start)
    if query.end is not None:
        # endTime is inclusive; the exact bound is checked on each entry.
        request["endTime"] = to_millis(query.end)
    if token is not None:
        request["nextToken"] = token
    return request


@dataclass(frozen=True)
class LogCursor:
    """Where a page ended: the token its events were read with and the next one's offset."""

    token: str | None
    offset: int

    def encode(self) -> str:
        text = json.dumps({"token": self.token, "offset": self.offset}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> LogCursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (binascii.Error, ValueError) as error:
            raise _invalid_cursor() from error
        if not isinstance(data, dict) or set(data) != {"token", "offset"}:
            raise _invalid_cursor()
        token, offset = data["token"], data["offset"]
        if not (token is None or isinstance(token, str)) or type(offset) is not int or offset < 0:
            raise _invalid_cursor()
        return cls(token=token, offset=offset)


def _invalid_cursor() -> InvalidInputError:
    return InvalidInputError(
        "the cursor is not one this log query returned; query again without a cursor",
        code="invalid_cursor",
    )


def entry_from_event(event: FilteredLogEventTypeDef) -> LogEntry | None:
    """The entry an event holds; None for a line that is not one of ours."""
    try:
        return LogEntry.model_validate_json(event.get("message", ""))
    except ValidationError:
        return None


def matches(query: LogQuery, job_id: str, stream: str, entry: LogEntry) -> bool:
    """Whether an event of `stream` is one the query returns: CloudWatch filters by the
    millisecond and by stream prefix only."""
    sources = SOURCES if query.source is None else (query.source,)
    moment = _utc(entry.time)
    return (
        any(stream == stream_name(job_id, source) for source in sources)
        and level_at_least(entry.level, query.min_level)
        and (query.start is None or moment >= _utc(query.start))
        and (query.end is None or moment < _utc(query.end))
    )


def ordered_page(
    events: Sequence[FilteredLogEventTypeDef],
) -> list[tuple[str, LogEntry | None]]:
    """A page's events as (stream, entry), by time to the microsecond. The sort is stable,
    so a page read again comes in the same order and a cursor's offset stays valid."""
    rows: list[tuple[int, str, LogEntry | None]] = []
    for event in events:
        entry = entry_from_event(event)
        micros = event.get("timestamp", 0) * 1000 if entry is None else to_micros(entry.time)
        rows.append((micros, event.get("logStreamName", ""), entry))
    rows.sort(key=lambda row: row[0])
    return [(stream, entry) for _, stream, entry in rows]


class CloudWatchLogStore:
    """LogStore on one CloudWatch Logs group (see the module docstring)."""

    def __init__(self, log_group: str, client: CloudWatchLogsClient | None = None) -> None:
        self._group = log_group
        self._client: CloudWatchLogsClient = client or boto3.client("logs")

    def append(self, job_id: str, entries: Sequence[LogEntry]) -> None:
        for source in SOURCES:
            of_source = [entry for entry in entries if entry.source == source]
            for batch in put_batches(of_source):
                self._put(job_id, stream_name(job_id, source), batch)

    def query(self, job_id: str, query: LogQuery) -> tuple[list[LogEntry], str | None]:
        position = LogCursor(None, 0) if query.cursor is None else LogCursor.decode(query.cursor)
        found: list[LogEntry] = []
        token, offset = position.token, position.offset
        for _ in range(MAX_FILTER_CALLS):
            request = filter_request(self._group, job_id, query, token)
            try:
                response = self._client.filter_log_events(**request)
            except self._client.exceptions.ResourceNotFoundException:
                # The source's stream is created by the job's first line of it.
                return found, None
            page = ordered_page(response["events"])
            next_token = response.get("nextToken")
            for index in range(offset, len(page)):
                stream, entry = page[index]
                if entry is None or not matches(query, job_id, stream, entry):
                    continue
                found.append(entry)
                if len(found) == query.limit:
                    if index + 1 < len(page):
                        return found, LogCursor(token, index + 1).encode()
                    return found, None if next_token is None else LogCursor(next_token, 0).encode()
            if next_token is None:
                return found, None
            token, offset = next_token, 0
        # A filter that matches little: a short page, and the cursor where reading stopped.
        return found, LogCursor(token, 0).encode()

    def delete(self, job_id: str) -> None:
        request: DescribeLogStreamsRequestTypeDef = {
            "logGroupName": self._group,
            "logStreamNamePrefix": stream_prefix(job_id),
        }
        names: list[str] = []
        while True:
            response = self._client.describe_log_streams(**request)
            names.extend(stream["logStreamName"] for stream in response["logStreams"])
            token = response.get("nextToken")
            if token is None:
                break
            request["nextToken"] = token
        for name in names:
            try:
                self._client.delete_log_stream(logGroupName=self._group, logStreamName=name)
            except self._client.exceptions.ResourceNotFoundException:
                continue

    def _put(self, job_id: str, stream: str, batch: list[InputLogEventTypeDef]) -> None:
        errors = self._client.exceptions
        try:
            response = self._client.put_log_events(
                logGroupName=self._group, logStreamName=stream, logEvents=batch
            )
        except errors.ResourceNotFoundException:
            try:
                self._client.create_log_stream(logGroupName=self._group, logStreamName=stream)
            except errors.ResourceAlreadyExistsException:
                pass
            response = self._client.put_log_events(
                logGroupName=self._group, logStreamName=stream, logEvents=batch
            )
        rejected = response.get("rejectedLogEventsInfo")
        if rejected:
            logger.warning("log events rejected", job_id=job_id, stream=stream, **rejected)
