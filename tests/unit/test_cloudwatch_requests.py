"""The CloudWatch log store's requests, built without any I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from whetstone.adapters.aws import cloudwatch_logs
from whetstone.adapters.aws.cloudwatch_logs import (
    EVENT_OVERHEAD_BYTES,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    LogCursor,
    event_message,
    filter_request,
    put_batches,
    to_millis,
)
from whetstone.core.errors import InvalidInputError
from whetstone.core.job import LogEntry
from whetstone.core.logs import LogQuery

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def entry(seconds: float, message: str = "line") -> LogEntry:
    return LogEntry(
        time=T0 + timedelta(seconds=seconds), source="training", level="info", message=message
    )


def test_events_are_sorted_by_time_and_carry_the_entry_as_json() -> None:
    (batch,) = put_batches([entry(2), entry(1.0015)])

    assert [event["timestamp"] for event in batch] == [to_millis(T0) + 1001, to_millis(T0) + 2000]
    assert LogEntry.model_validate_json(batch[0]["message"]) == entry(1.0015)


def test_a_batch_holds_at_most_max_batch_events(monkeypatch: pytest.MonkeyPatch) -> None:
    # With the real 10,000 the megabyte binds first: a JSON entry is over 100 bytes.
    monkeypatch.setattr(cloudwatch_logs, "MAX_BATCH_EVENTS", 3)

    batches = put_batches([entry(i) for i in range(7)])

    assert [len(batch) for batch in batches] == [3, 3, 1]


def test_a_batch_stays_under_one_megabyte() -> None:
    big = "x" * 200_000
    batches = put_batches([entry(i, big) for i in range(12)])

    for batch in batches:
        size = sum(len(event["message"].encode()) + EVENT_OVERHEAD_BYTES for event in batch)
        assert size <= MAX_BATCH_BYTES
    assert sum(len(batch) for batch in batches) == 12 and len(batches) > 1


def test_a_batch_spans_less_than_a_day() -> None:
    batches = put_batches([entry(0), entry(3600), entry(86_400), entry(86_401)])

    assert [len(batch) for batch in batches] == [2, 2]


def test_an_oversized_line_is_cut_to_fit_one_event() -> None:
    message = event_message(entry(0, "é" * 300_000))

    assert len(message.encode()) <= MAX_EVENT_BYTES
    assert json.loads(message)["message"].endswith("[truncated]")


def test_a_query_of_all_sources_reads_the_job_prefix() -> None:
    request = filter_request("g", "ftjob-1", LogQuery(start=T0, end=T0 + timedelta(seconds=1)), "t")

    assert request["logStreamNamePrefix"] == "ftjob-1/"
    assert request["startTime"] == to_millis(T0) and request["endTime"] == to_millis(T0) + 1000
    assert request["nextToken"] == "t"


def test_a_query_of_one_source_reads_its_stream() -> None:
    request = filter_request("g", "ftjob-1", LogQuery(source="build"), None)

    assert request["logStreamNames"] == ["ftjob-1/build"]
    assert "startTime" not in request and "nextToken" not in request


def test_a_naive_time_is_taken_as_utc() -> None:
    assert to_millis(datetime(1970, 1, 1, 0, 0, 1, 2500)) == 1002


def test_a_log_cursor_round_trips() -> None:
    for cursor in (LogCursor("token/+=", 3), LogCursor(None, 7)):
        assert LogCursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["%%%", "W10", "eyJ0b2tlbiI6bnVsbCwib2Zmc2V0IjotMX0"])
def test_a_malformed_log_cursor_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInputError):
        LogCursor.decode(text)
